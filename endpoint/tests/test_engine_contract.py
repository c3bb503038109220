"""The engines farcall-endpoint ships pass the engine contract suite, and the suite
fails an engine that breaks the contract."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from farcall.serialize import Serializer
from farcall_endpoint.testing.engine_contract import EngineContract, Started, echo

pytest_plugins = ["pytester"]


class TestProcessEngine(EngineContract):
    engine_name = "process"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2, "worker_prefetch": 2}
    stops_running_tasks = True
    stops_queued_tasks = True

    def test_cancelling_a_running_task_ends_its_worker_process(
            self, started: Started, serializer: Serializer, tmp_path: Path) -> None:
        task, started_file, _ = self.run_until_held(started, serializer, tmp_path, 30.0)
        pid = int(started_file.read_text())
        assert started.engine.cancel([task.task_id]) == []
        outcome = started.deliveries.wait_for([task.task_id])[task.task_id]
        assert "the task was cancelled; its worker process was stopped" in outcome["exception"]
        assert outcome["details"]["worker_pid"] == pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        after = self.task(serializer, echo, "after")
        started.engine.submit([after])
        assert started.deliveries.wait_for([after.task_id])[after.task_id]["status"] == "success"


class TestThreadEngine(EngineContract):
    engine_name = "thread"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2}
    stops_running_tasks = False
    stops_queued_tasks = True

    def test_cancelling_a_running_task_says_the_thread_engine_cannot_stop_it(
            self, started: Started, serializer: Serializer, tmp_path: Path,
            caplog: pytest.LogCaptureFixture) -> None:
        task, _, done = self.run_until_held(started, serializer, tmp_path, 0.5)
        with caplog.at_level(logging.WARNING, logger="farcall_endpoint.engines.thread"):
            assert started.engine.cancel([task.task_id]) == [task.task_id]
        (warning,) = [r.getMessage() for r in caplog.records if task.task_id in r.getMessage()]
        assert "the thread engine cannot stop running tasks (use the process engine)" in warning
        outcome = started.deliveries.wait_for([task.task_id])[task.task_id]
        assert "the thread engine cannot stop a running task" in outcome["exception"]
        assert outcome["details"]["task_transitions"]["running"] > 0


TWICE = '''
import dataclasses

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall_endpoint.engines.thread import ThreadEngine
from farcall_endpoint.kinds import EngineType
from farcall_endpoint.testing.engine_contract import EngineContract


class TwiceEngine(ThreadEngine):
    """Delivers every outcome twice."""

    def start(self, context):
        once = context.deliver
        super().start(dataclasses.replace(context, deliver=lambda o: (once(o), once(o))))


class Plugin:
    @hookimpl
    def farcall_engines(self):
        return [EngineType("twice", TwiceEngine)]


class TestTwice(EngineContract):
    engine_name = "twice"
    engine_options = {"workers": 1}

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls):
        pm = get_plugin_manager()
        pm.register(Plugin(), name="twice")
        return pm
'''


def test_an_engine_that_delivers_twice_fails_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_twice=TWICE)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = {r.nodeid.rsplit("::", 1)[-1] for r in result.reprec.getreports()
              if r.when == "call" and r.failed}
    assert "test_every_task_of_a_full_engine_is_delivered_exactly_once" in failed
    assert "test_a_raising_function_is_a_failed_outcome" in failed
    assert "test_the_factory_builds_an_engine" not in failed
