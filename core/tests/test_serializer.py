"""The Serializer facade: headers, choosing strategies, the allowlist, and its errors.

Each test builds its own registry from a fresh plugin manager, so environment
variables set with monkeypatch take effect (the default registry is built once).
"""

from __future__ import annotations

import pytest
from farcall.errors import DeserializationError, SerializationError, UnknownPluginError
from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import ENV_BLOCK_PLUGINS, ENV_DISABLE_AUTOLOAD
from farcall.serialize import Serializer, pack_buffers
from farcall.serialize.registry import StrategyRegistry, default_registry
from farcall.testing import samples


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BLOCK_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_DISABLE_AUTOLOAD, raising=False)


def fresh_registry(
    monkeypatch: pytest.MonkeyPatch, blocked: str = "", load_entrypoints: bool = True
) -> StrategyRegistry:
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, blocked)
    return StrategyRegistry(get_plugin_manager(load_entrypoints=load_entrypoints))


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> StrategyRegistry:
    return fresh_registry(monkeypatch)


@pytest.fixture
def serializer(registry: StrategyRegistry) -> Serializer:
    return Serializer(registry=registry)


# -- headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ("[1, 2]", "does not start with a strategy header: '[1, 2]'"),
        ("11", "does not start with a strategy header: '11'"),
        ("", "does not start with a strategy header: ''"),
        ("11 [1, 2]", "does not start with a strategy header"),
        ("\n11\n[]", "does not start with a strategy header"),
    ],
)
def test_payload_without_a_header_is_refused(
    serializer: Serializer, payload: str, fragment: str
) -> None:
    with pytest.raises(DeserializationError) as excinfo:
        serializer.deserialize(payload)
    assert fragment in str(excinfo.value)


@pytest.mark.parametrize("payload", [b"11\n[1]", None, ["11\n[1]"]])
def test_payload_must_be_a_str(serializer: Serializer, payload: object) -> None:
    with pytest.raises(DeserializationError, match=f"str, not {type(payload).__name__}"):
        serializer.deserialize(payload)  # type: ignore[arg-type]


def test_unknown_header_lists_what_is_installed(serializer: Serializer) -> None:
    with pytest.raises(DeserializationError) as excinfo:
        serializer.deserialize("zz\nanything")
    message = str(excinfo.value)
    assert "unknown strategy header 'zz'" in message
    assert "'11'" in message and "'13'" in message
    assert "provided by" not in message


@pytest.mark.parametrize(
    ("blocked", "payload", "distribution"),
    [
        ("serializer_source", "st\nf:def f(): pass\n", "farcall-serializer-source"),
        ("serializer_dill", "00\ngASVBQAAAAAAAACMAXiULg==\n", "farcall-serializer-dill"),
        ("serializer_cloudpickle", "c1\nabc", "farcall-serializer-cloudpickle"),
    ],
)
def test_unknown_header_names_the_distribution_to_install(
    monkeypatch: pytest.MonkeyPatch, blocked: str, payload: str, distribution: str
) -> None:
    serializer = Serializer(registry=fresh_registry(monkeypatch, blocked))
    with pytest.raises(DeserializationError) as excinfo:
        serializer.deserialize(payload)
    message = str(excinfo.value)
    assert f"unknown strategy header {payload[:2]!r}" in message
    assert f"is {distribution} installed?" in message


def test_a_strategy_that_cannot_read_the_body_is_a_deserialization_error(
    serializer: Serializer,
) -> None:
    with pytest.raises(DeserializationError, match=r"JSONData \(11\) could not read") as excinfo:
        serializer.deserialize("11\n{not json")
    assert excinfo.value.__cause__ is not None


def test_a_strategy_that_cannot_write_is_a_serialization_error(registry: StrategyRegistry) -> None:
    serializer = Serializer(data_strategy="11", registry=registry)
    with pytest.raises(SerializationError, match=r"JSONData \(11\) could not serialize set"):
        serializer.serialize({1, 2})


def test_non_ascii_survives_the_json_strategy_and_packed_members(serializer: Serializer) -> None:
    text = "héllo 日本語 🚀"
    json_serializer = Serializer(data_strategy="11", registry=serializer.registry)
    assert json_serializer.deserialize(json_serializer.serialize([text])) == [text]
    # A member holding raw non-ASCII JSON, framed by its length in code points.
    member = f'11\n"{text}"'
    packed = pack_buffers([member])
    assert packed.startswith(f"{len(member)}\n") and len(member) != len(member.encode())
    assert serializer.deserialize("13\n" + packed) == text


# -- the allowlist ----------------------------------------------------------------------


def test_allowlist_by_identifier(registry: StrategyRegistry) -> None:
    writer = Serializer(registry=registry)
    dill_payload = writer.serialize("data")
    assert dill_payload.startswith("00\n")

    strict = Serializer(allowed=["11"], registry=registry)
    assert strict.allowed == frozenset({"11"})
    assert strict.deserialize('11\n["ok"]') == ["ok"]
    refused = r"strategy '00' is not allowed here \(allowed: 11\)"
    with pytest.raises(DeserializationError, match=refused):
        strict.deserialize(dill_payload)
    # The same payload is readable without an allowlist.
    assert writer.deserialize(dill_payload) == "data"


def test_allowlist_by_strategy_name(registry: StrategyRegistry) -> None:
    strict = Serializer(allowed=["JSONData", "DillDataBase64"], registry=registry)
    assert strict.allowed == frozenset({"11", "00"})
    assert strict.deserialize(Serializer(registry=registry).serialize((1, 2))) == (1, 2)
    with pytest.raises(DeserializationError, match="strategy '01' is not allowed here"):
        strict.deserialize(Serializer(registry=registry).serialize(samples.add))


def test_allowlist_applies_to_members_of_combined_data(registry: StrategyRegistry) -> None:
    writer = Serializer(registry=registry)
    # The dill member comes first and says something else than the JSON member.
    payload = "13\n" + pack_buffers([writer.serialize("from dill"), '11\n"from json"'])
    assert writer.deserialize(payload) == "from dill"

    strict = Serializer(allowed=["11", "13"], registry=registry)
    assert strict.deserialize(payload) == "from json"

    dill_only = "13\n" + pack_buffers([writer.serialize("from dill")])
    with pytest.raises(DeserializationError) as excinfo:
        strict.deserialize(dill_only)
    message = str(excinfo.value)
    assert "no member of the combined payload could be read" in message
    assert "'00' is not allowed" in message


def test_allowlist_applies_to_the_combined_strategy_itself(registry: StrategyRegistry) -> None:
    payload = "13\n" + pack_buffers(['11\n"x"'])
    with pytest.raises(DeserializationError, match="strategy '13' is not allowed"):
        Serializer(allowed=["11"], registry=registry).deserialize(payload)


def test_allowlist_applies_to_members_of_combined_code(registry: StrategyRegistry) -> None:
    writer = Serializer(registry=registry)
    st = Serializer(code_strategy="st", registry=registry)
    # The 01 member is add(), the st member is greet(): which one comes back tells who read it.
    payload = "12\n" + pack_buffers([writer.serialize(samples.add), st.serialize(samples.greet)])
    assert writer.deserialize(payload)(1) == 6
    strict = Serializer(allowed=["12", "st"], registry=registry)
    assert strict.deserialize(payload)("Ada", "Lovelace") == "Hello Ada Lovelace"


def test_combined_payloads_round_trip(registry: StrategyRegistry) -> None:
    data = Serializer(data_strategy="13", code_strategy="12", registry=registry)
    wire = data.serialize({"a": [1, 2]})
    assert wire.startswith("13\n")
    assert data.deserialize(wire) == {"a": [1, 2]}
    code = data.serialize(samples.add)
    assert code.startswith("12\n")
    assert data.deserialize(code)(1) == 6


# -- choosing strategies ----------------------------------------------------------------


@pytest.mark.parametrize("spec", ["04", "DillCodeSource", "02", "PickleCode", "10"])
def test_a_read_only_strategy_cannot_be_chosen_to_serialize(
    registry: StrategyRegistry, spec: str
) -> None:
    with pytest.raises(SerializationError, match="can only read old payloads"):
        Serializer(code_strategy=spec, registry=registry)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"data_strategy": "01"}, "DillCode (01) is not a data strategy"),
        ({"data_strategy": "DillCode"}, "DillCode (01) is not a data strategy"),
        ({"data_strategy": "12"}, "AllCodeStrategies (12) is not a data strategy"),
        ({"code_strategy": "11"}, "JSONData (11) is not a code strategy"),
        ({"code_strategy": "AllDataStrategies"}, "AllDataStrategies (13) is not a code strategy"),
    ],
)
def test_a_strategy_of_the_wrong_kind_cannot_be_chosen(
    registry: StrategyRegistry, kwargs: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SerializationError) as excinfo:
        Serializer(registry=registry, **kwargs)
    assert fragment in str(excinfo.value)


def test_strategies_chosen_by_name_or_identifier(registry: StrategyRegistry) -> None:
    by_name = Serializer(code_strategy="PureSourceTextInspect", data_strategy="JSONData",
                         registry=registry)
    assert (by_name.code_strategy, by_name.data_strategy) == ("st", "11")
    assert by_name.serialize(samples.add).startswith("st\nadd:def add(")
    assert by_name.serialize([1]) == "11\n[1]"


def test_an_unknown_strategy_cannot_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = fresh_registry(monkeypatch, "serializer_dill")
    with pytest.raises(UnknownPluginError, match="farcall-serializer-dill"):
        Serializer(data_strategy="00", registry=registry)
    with pytest.raises(UnknownPluginError, match="'nope'"):
        Serializer(code_strategy="nope", registry=registry)


def test_defaults_are_the_official_dill_strategies(serializer: Serializer) -> None:
    assert (serializer.code_strategy, serializer.data_strategy) == ("01", "00")
    assert serializer.serialize(samples.add).startswith("01\n")
    assert serializer.serialize({"a": 1}).startswith("00\n")


def test_defaults_fall_back_without_the_dill_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    serializer = Serializer(registry=fresh_registry(monkeypatch, "serializer_dill"))
    assert (serializer.code_strategy, serializer.data_strategy) == ("st", "11")
    wire = serializer.serialize(samples.greet)
    assert wire.startswith("st\ngreet:")
    assert serializer.deserialize(wire)("Bob", "Smith") == "Hello Bob Smith"
    assert serializer.serialize({"a": 1}) == '11\n{"a": 1}'


def test_function_without_a_code_strategy_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serializer = Serializer(registry=fresh_registry(monkeypatch, load_entrypoints=False))
    assert serializer.code_strategy is None
    assert serializer.data_strategy == "11"
    with pytest.raises(SerializationError) as excinfo:
        serializer.serialize(samples.add)
    message = str(excinfo.value)
    assert "no code serialization strategy" in message
    assert "pip install farcall-serializer-dill" in message
    # Data still works with the core alone.
    assert serializer.deserialize(serializer.serialize([1, "a"])) == [1, "a"]


def test_data_without_a_data_strategy_says_data(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = fresh_registry(
        monkeypatch, "farcall.serialize.builtin_plugin", load_entrypoints=False
    )
    serializer = Serializer(registry=registry)
    assert (serializer.code_strategy, serializer.data_strategy) == (None, None)
    with pytest.raises(SerializationError, match="no data serialization strategy is installed"):
        serializer.serialize({"a": 1})


def test_default_registry_is_built_once() -> None:
    assert default_registry() is default_registry()
    assert Serializer().registry is Serializer().registry
