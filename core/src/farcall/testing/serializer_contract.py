"""The contract every serialization strategy plugin must meet.

Use it from a plugin's tests by subclassing and naming the identifier::

    from farcall.testing.serializer_contract import SerializationStrategyContract

    class TestMyStrategy(SerializationStrategyContract):
        identifier = "x1"

The strategy is looked up through the installed plugins, exactly as users get it, so
the suite also proves that the plugin's entry point is declared and loads.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from farcall.errors import DeserializationError
from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import SerializationStrategyType
from farcall.serialize import Serializer
from farcall.serialize.base import SerializationStrategy
from farcall.serialize.registry import StrategyRegistry
from farcall.testing import samples

JSON_SAFE_SAMPLES: list[Any] = [
    None,
    True,
    0,
    -(2**62),
    3.5,
    "",
    "plain",
    "non-ASCII: héllo wörld ✓ 日本語 🚀",
    "line\nbreaks\tand: colons",
    [],
    [1, "two", [3.0, None]],
    {"nested": {"list": [1, 2, {"deep": "yes"}], "empty": {}}},
    list(range(10_000)),
    "x" * 1_000_000,
]


class SerializationStrategyContract:
    """Subclass, set ``identifier``, and extend the samples where the strategy can."""

    identifier: ClassVar[str]
    #: Objects a data strategy must round-trip to an equal object.
    data_samples: ClassVar[list[Any]] = JSON_SAFE_SAMPLES
    #: (function, args, kwargs, expected result) a code strategy must round-trip.
    code_samples: ClassVar[list[tuple[Any, tuple[Any, ...], dict[str, Any], Any]]] = [
        (samples.add, (1,), {"b": 5, "c": 10}, 16),
        (samples.greet, ("Bob", "Smith"), {}, "Hello Bob Smith"),
    ]
    #: Bodies that are not valid for this strategy.
    garbage_bodies: ClassVar[list[str]] = ["", "!!not a valid body!!", "\x00\x01\x02"]

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture
    def record(self, plugin_manager: FarcallPluginManager) -> SerializationStrategyType:
        return plugin_manager.get_serialization_strategy(self.identifier)

    @pytest.fixture
    def registry(self, plugin_manager: FarcallPluginManager) -> StrategyRegistry:
        return StrategyRegistry(plugin_manager)

    @pytest.fixture
    def serializer(
        self, registry: StrategyRegistry, record: SerializationStrategyType
    ) -> Serializer:
        if record.read_only:
            return Serializer(registry=registry)
        if record.for_code:
            return Serializer(code_strategy=self.identifier, registry=registry)
        return Serializer(data_strategy=self.identifier, registry=registry)

    def test_record_describes_the_strategy(
        self, record: SerializationStrategyType, registry: StrategyRegistry
    ) -> None:
        assert record.identifier == self.identifier
        assert record.name
        strategy = registry.strategy(self.identifier)
        assert isinstance(strategy, SerializationStrategy)
        assert strategy.for_code == record.for_code

    def test_data_round_trip(
        self, record: SerializationStrategyType, serializer: Serializer
    ) -> None:
        if record.for_code or record.read_only:
            pytest.skip("not a writable data strategy")
        for obj in self.data_samples:
            wire = serializer.serialize(obj)
            assert isinstance(wire, str)
            assert wire.startswith(self.identifier + "\n")
            assert serializer.deserialize(wire) == obj

    def test_code_round_trip(
        self, record: SerializationStrategyType, serializer: Serializer
    ) -> None:
        if not record.for_code or record.read_only:
            pytest.skip("not a writable code strategy")
        for fn, args, kwargs, expected in self.code_samples:
            wire = serializer.serialize(fn)
            assert wire.startswith(self.identifier + "\n")
            assert serializer.deserialize(wire)(*args, **kwargs) == expected

    def test_round_trip_inside_packed_buffers(
        self, record: SerializationStrategyType, serializer: Serializer
    ) -> None:
        if record.read_only:
            pytest.skip("read-only strategy")
        first = self.code_samples[0][0] if record.for_code else self.data_samples[-2]
        packed = serializer.pack_buffers([serializer.serialize(first), "11\n[1, 2]"])
        restored, other = serializer.unpack_and_deserialize(packed)
        assert other == [1, 2]
        if record.for_code:
            fn, args, kwargs, expected = self.code_samples[0]
            assert restored(*args, **kwargs) == expected
        else:
            assert restored == first

    def test_garbage_is_a_deserialization_error(self, serializer: Serializer) -> None:
        for body in self.garbage_bodies:
            with pytest.raises(DeserializationError):
                serializer.deserialize(f"{self.identifier}\n{body}")

    def test_allowlist_refuses_the_strategy(
        self, record: SerializationStrategyType, registry: StrategyRegistry
    ) -> None:
        others = [i for i in registry.types if i != self.identifier]
        strict = Serializer(allowed=others, registry=registry)
        with pytest.raises(DeserializationError, match="not allowed"):
            strict.deserialize(f"{self.identifier}\nanything")
