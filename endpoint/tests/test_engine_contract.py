"""The engines farcall-endpoint ships pass the engine contract suite, and the suite
fails an engine that breaks the contract."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from farcall_endpoint.testing.engine_contract import EngineContract

pytest_plugins = ["pytester"]


class TestProcessEngine(EngineContract):
    engine_name = "process"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2, "worker_prefetch": 2}


class TestThreadEngine(EngineContract):
    engine_name = "thread"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2}


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
