"""The contract every result cache plugin must meet.

Use it from a plugin's tests by subclassing and naming the cache::

    from farcall.testing.result_cache_contract import ResultCacheContract

    class TestMyCache(ResultCacheContract):
        name = "mine"
        persistent = True   # a new instance with the same settings sees what was put

The cache is built through the installed plugins, exactly as ``Client(result_cache=
"mine")`` builds it, so the suite also proves that the plugin's entry point loads.
Override the ``settings`` fixture to give the cache what it reads (by default the
Client's ``base_url``, with ``FARCALL_HOME`` in a temporary directory).

A Client puts only terminal task documents (``success`` or ``failed``): they never
change, so a cache never has to expire them. It uses the cache from several threads.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import ResultCache, ResultCacheType

#: Task documents as the service answers them, a success and a failure.
SUCCESS: dict[str, Any] = {
    "task_id": "0f4c9c2e-7a4c-4d0e-9a63-0d8f2f1b6a01",
    "status": "success",
    "result": "11\n[1, \"two\", {\"three\": 3.0}]",
    "completion_t": "1733476543.25",
    "details": {
        "task_transitions": {"received": 1733476543.0, "running": 1733476543.1,
                             "success": 1733476543.2},
        "hostname": "worker-1",
        "worker_pid": 4242,
    },
}
FAILED: dict[str, Any] = {
    "task_id": "0f4c9c2e-7a4c-4d0e-9a63-0d8f2f1b6a02",
    "status": "failed",
    "exception": "Traceback (most recent call last):\n  ...\nKeyError: 'héllo ✓'",
    "exception_data": "11\n\"not rebuilt here\"",
    "completion_t": "1733476544.5",
    "details": {"task_transitions": {"received": 1733476544.0, "failed": 1733476544.4}},
}


class ResultCacheContract:
    """Subclass, set ``name``, and ``persistent`` when the cache outlives its object."""

    name: ClassVar[str]
    #: True when a new instance built with the same settings sees what was put.
    persistent: ClassVar[bool] = False

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture
    def settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("FARCALL_HOME", str(tmp_path / "farcall-home"))
        return {"base_url": "http://127.0.0.1:9"}

    @pytest.fixture
    def record(self, plugin_manager: FarcallPluginManager) -> ResultCacheType:
        return plugin_manager.get_result_cache(self.name)

    @pytest.fixture
    def cache(self, record: ResultCacheType, settings: dict[str, Any]) -> Iterator[ResultCache]:
        cache = record.factory(settings)
        yield cache
        cache.clear()

    def test_record_builds_a_cache(self, record: ResultCacheType, cache: ResultCache) -> None:
        assert record.name == self.name
        assert isinstance(cache, ResultCache)

    def test_a_miss_is_none(self, cache: ResultCache) -> None:
        assert cache.get(SUCCESS["task_id"]) is None

    def test_documents_round_trip(self, cache: ResultCache) -> None:
        for document in (SUCCESS, FAILED):
            cache.put(document["task_id"], copy.deepcopy(document))
        for document in (SUCCESS, FAILED):
            assert cache.get(document["task_id"]) == document
        assert cache.get("0f4c9c2e-7a4c-4d0e-9a63-0d8f2f1b6a03") is None

    def test_putting_again_keeps_the_latest(self, cache: ResultCache) -> None:
        cache.put(SUCCESS["task_id"], {**SUCCESS, "completion_t": "1"})
        cache.put(SUCCESS["task_id"], SUCCESS)
        assert cache.get(SUCCESS["task_id"]) == SUCCESS

    def test_clear_forgets_everything(self, cache: ResultCache) -> None:
        for document in (SUCCESS, FAILED):
            cache.put(document["task_id"], document)
        cache.clear()
        assert cache.get(SUCCESS["task_id"]) is None
        assert cache.get(FAILED["task_id"]) is None

    def test_a_new_instance_sees_it_when_persistent(
        self, record: ResultCacheType, settings: dict[str, Any], cache: ResultCache
    ) -> None:
        cache.put(SUCCESS["task_id"], SUCCESS)
        again = record.factory(settings)
        if self.persistent:
            assert again.get(SUCCESS["task_id"]) == SUCCESS
        else:
            assert again.get(SUCCESS["task_id"]) is None

    def test_threads_share_it(self, cache: ResultCache) -> None:
        errors: list[BaseException] = []

        def put_and_get(worker: int) -> None:
            try:
                for n in range(50):
                    tid = f"{worker:08d}-0000-4000-8000-{n:012d}"
                    cache.put(tid, {**SUCCESS, "task_id": tid})
                    assert cache.get(tid) == {**SUCCESS, "task_id": tid}
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=put_and_get, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert cache.get(f"{7:08d}-0000-4000-8000-{49:012d}") is not None
