"""The contract every execution engine plugin must meet.

Use it from a plugin's tests by subclassing and naming the engine::

    from farcall_endpoint.testing.engine_contract import EngineContract

    class TestMyEngine(EngineContract):
        engine_name = "my-engine"
        engine_options = {"workers": 2}

The engine is built through the installed plugins, exactly as an endpoint builds
it, so the suite also proves that the plugin's entry point is declared and loads.
It follows the numbered lifecycle of :mod:`farcall_endpoint.engines.interface`: one
``start``, batches within ``capacity``, exactly one ``deliver`` per task (from any
thread), a raising function and a task over its time limit as failed outcomes,
``status`` counting workers, ``stop`` last and idempotent, and ``cancel``: a
cancelled task ends in one cancelled outcome, a queued one never runs, a running one
is stopped where the engine says it can (``stops_running_tasks``). Keep
``engine_options`` small: the tests of a class share one started engine, and the
stop test starts one more.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.serialize import Serializer, pack_buffers
from farcall.serialize.registry import StrategyRegistry

from farcall_endpoint.engines.interface import Engine, EngineContext, EngineStatus
from farcall_endpoint.kinds import ENGINES, EngineType
from farcall_endpoint.tasks import Outcome, Task

#: Seconds any single expectation may take (a cluster's workers start slowly).
PATIENCE = 60.0


def echo(value: Any) -> Any:
    return value


def nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def refuse(message: str) -> None:
    raise ValueError(message)


def hold(started: str, done: str, seconds: float) -> float:
    """Writes its process id to ``started``, sleeps, then creates ``done``."""
    import os
    import time

    with open(started + ".part", "w") as file:
        file.write(str(os.getpid()))
    os.replace(started + ".part", started)
    time.sleep(seconds)
    open(done, "w").close()
    return seconds


class Deliveries:
    """What an engine delivered, by task id; ``deliver`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.outcomes: dict[str, list[Outcome]] = {}

    def deliver(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.setdefault(str(outcome["task_id"]), []).append(outcome)
            self._lock.notify_all()

    def wait_for(self, task_ids: list[str], timeout: float = PATIENCE) -> dict[str, Outcome]:
        """The outcome of every task, once each has one; fails on a second one."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not all(t in self.outcomes for t in task_ids):
                left = deadline - time.monotonic()
                missing = [t for t in task_ids if t not in self.outcomes]
                assert left > 0, f"no outcome within {timeout} s for {len(missing)} task(s)"
                self._lock.wait(left)
            return {t: self.single(t) for t in task_ids}

    def single(self, task_id: str) -> Outcome:
        with self._lock:
            got = self.outcomes.get(task_id, [])
            assert len(got) == 1, f"{len(got)} outcomes for task {task_id}, not one"
            return got[0]


class Started:
    """An engine that ``start`` returned from, and what it delivered."""

    def __init__(self, engine: Engine, deliveries: Deliveries) -> None:
        self.engine, self.deliveries = engine, deliveries


class EngineContract:
    """Subclass, set ``engine_name`` and ``engine_options``."""

    engine_name: ClassVar[str]
    #: The ``[engine]`` table without ``type``: keep the engine small.
    engine_options: ClassVar[dict[str, Any]] = {}
    #: The code strategy tasks are serialized with ("sd" is farcall-serializer-dill's
    #: source strategy: workers need not import the test module).
    code_strategy: ClassVar[str] = "sd"
    #: How long past its limit a task may take to be reported failed.
    time_limit_grace: ClassVar[float] = 15.0
    #: Whether the engine stops a cancelled task that already runs (else it says it
    #: could not, in ``cancel``'s answer, and drops the late result). None: the
    #: engine's answer decides, and a task it did not name must have been stopped.
    stops_running_tasks: ClassVar[bool | None] = None
    #: The same for a cancelled task the engine holds but has not started.
    stops_queued_tasks: ClassVar[bool | None] = None

    # -- fixtures a plugin may override ------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture(scope="class")
    @classmethod
    def record(cls, plugin_manager: FarcallPluginManager) -> EngineType:
        return plugin_manager.select(ENGINES, cls.engine_name)

    @pytest.fixture(scope="class")
    @classmethod
    def serializer(cls, plugin_manager: FarcallPluginManager) -> Serializer:
        return Serializer(code_strategy=cls.code_strategy,
                          registry=StrategyRegistry(plugin_manager))

    @pytest.fixture(scope="class")
    @classmethod
    def start_engine(cls, record: EngineType, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Callable[[], Started]]:
        """Builds and starts engines; stops each one that is still running at the end."""
        started: list[Engine] = []

        def start() -> Started:
            deliveries = Deliveries()
            engine = record.factory(dict(cls.engine_options))
            started.append(engine)
            workdir = tmp_path_factory.mktemp(f"engine-{cls.engine_name}")
            engine.start(EngineContext(deliver=deliveries.deliver, execution={},
                                       workdir=Path(workdir)))
            return Started(engine, deliveries)

        yield start
        for engine in started:
            engine.stop()

    @pytest.fixture(scope="class")
    @classmethod
    def started(cls, start_engine: Callable[[], Started]) -> Started:
        """One engine shared by the tests of a class."""
        return start_engine()

    # -- helpers ------------------------------------------------------------------------

    def task(self, serializer: Serializer, fn: Callable[..., Any], *args: Any,
             timeout: float | None = None) -> Task:
        payload = pack_buffers([serializer.serialize(fn), serializer.serialize(args),
                                serializer.serialize({})])
        return Task(task_id=str(uuid.uuid4()), function_id=fn.__name__, payload=payload,
                    timeout=timeout)

    def holding(self, serializer: Serializer, folder: Path, seconds: float
                ) -> tuple[Task, Path, Path]:
        """A task running :func:`hold`, and its ``started`` and ``done`` marker files."""
        name = uuid.uuid4().hex
        started, done = folder / f"{name}.started", folder / f"{name}.done"
        return self.task(serializer, hold, str(started), str(done), seconds), started, done

    def run_until_held(self, own: Started, serializer: Serializer, folder: Path,
                       seconds: float) -> tuple[Task, Path, Path]:
        """Submit a :func:`hold` task and return once it runs."""
        if type(own.engine).cancel is Engine.cancel:
            pytest.skip("the engine does not cancel tasks (Engine.cancel's default)")
        task, started, done = self.holding(serializer, folder, seconds)
        own.engine.submit([task])
        assert _eventually(started.exists), "the task never started"
        return task, started, done

    # -- the contract ---------------------------------------------------------------------

    def test_the_factory_builds_an_engine(self, record: EngineType) -> None:
        engine = record.factory(dict(self.engine_options))
        for method in ("start", "submit", "capacity", "status", "stop"):
            assert callable(getattr(engine, method, None)), f"the engine has no {method}()"

    def test_once_started_it_counts_its_workers(self, started: Started) -> None:
        status = started.engine.status()
        assert isinstance(status, EngineStatus)
        assert status.total_workers >= 1
        assert 0 <= status.idle_workers <= status.total_workers
        assert status.pending_tasks >= 0
        assert started.engine.capacity() >= 1

    def test_every_task_of_a_full_engine_is_delivered_exactly_once(
            self, started: Started, serializer: Serializer) -> None:
        engine, deliveries = started.engine, started.deliveries
        tasks = [self.task(serializer, echo, n) for n in range(engine.capacity())]
        half = len(tasks) // 2
        begun = time.monotonic()
        engine.submit(tasks[:half])
        engine.submit(tasks[half:])
        assert time.monotonic() - begun < 10, "submit blocked until tasks ran"
        got = deliveries.wait_for([t.task_id for t in tasks])
        for n, task in enumerate(tasks):
            outcome = got[task.task_id]
            assert outcome["status"] == "success", outcome.get("exception")
            assert serializer.deserialize(outcome["result"]) == n
            assert "received" in outcome["details"]["task_transitions"]
        time.sleep(0.3)
        for task in tasks:
            deliveries.single(task.task_id)  # still one each

    def test_a_raising_function_is_a_failed_outcome(self, started: Started,
                                                    serializer: Serializer) -> None:
        bad = self.task(serializer, refuse, "no thank you")
        good = self.task(serializer, echo, "after")
        started.engine.submit([bad, good])
        got = started.deliveries.wait_for([bad.task_id, good.task_id])
        assert got[bad.task_id]["status"] == "failed"
        assert "ValueError" in got[bad.task_id]["exception"]
        assert "no thank you" in got[bad.task_id]["exception"]
        assert got[good.task_id]["status"] == "success"  # the worker serves on

    def test_status_counts_busy_workers_then_idle_ones(self, started: Started,
                                                       serializer: Serializer) -> None:
        engine = started.engine
        total = engine.status().total_workers
        tasks = [self.task(serializer, nap, 1.0) for _ in range(total)]
        engine.submit(tasks)
        assert _eventually(lambda: engine.status().idle_workers < total), \
            "no worker counted busy while every worker had a task"
        started.deliveries.wait_for([t.task_id for t in tasks])
        assert _eventually(lambda: engine.status().idle_workers == engine.status().total_workers)

    def test_a_task_over_its_time_limit_fails(self, started: Started,
                                              serializer: Serializer) -> None:
        own = started
        late = self.task(serializer, nap, 2.0, timeout=0.5)
        begun = time.monotonic()
        own.engine.submit([late])
        outcome = own.deliveries.wait_for([late.task_id], 0.5 + self.time_limit_grace)
        assert outcome[late.task_id]["status"] == "failed"
        assert "time limit of 0.5 s" in outcome[late.task_id]["exception"]
        assert time.monotonic() - begun < 2.0, "the failure waited for the task to finish"
        after = self.task(serializer, echo, "next")
        own.engine.submit([after])
        assert own.deliveries.wait_for([after.task_id])[after.task_id]["status"] == "success"
        time.sleep(max(0.0, begun + 2.5 - time.monotonic()))  # the late result, if any
        own.deliveries.single(late.task_id)

    def test_stop_returns_while_a_task_runs_and_is_idempotent(
            self, start_engine: Callable[[], Started], serializer: Serializer) -> None:
        own = start_engine()
        ran = self.task(serializer, echo, 1)
        own.engine.submit([ran])
        own.deliveries.wait_for([ran.task_id])
        own.engine.submit([self.task(serializer, nap, 30.0)])
        begun = time.monotonic()
        own.engine.stop()
        own.engine.stop()
        assert time.monotonic() - begun < 25, "stop waited for the running task"


    def test_a_cancelled_queued_task_ends_cancelled_and_never_runs(
            self, started: Started, serializer: Serializer, tmp_path: Path) -> None:
        engine, deliveries = started.engine, started.deliveries
        busy = [self.run_until_held(started, serializer, tmp_path, 1.5)
                for _ in range(engine.status().total_workers)]
        queued, queued_started, queued_done = self.holding(serializer, tmp_path, 0.0)
        engine.submit([queued])
        unstoppable = engine.cancel([queued.task_id])
        outcome = deliveries.wait_for([queued.task_id])[queued.task_id]
        assert outcome["status"] == "failed"
        assert "cancelled" in outcome["exception"]
        assert {t.task_id for t, _, _ in busy}.isdisjoint(unstoppable)
        got = deliveries.wait_for([t.task_id for t, _, _ in busy])
        assert all(o["status"] == "success" for o in got.values()), got
        after = self.task(serializer, echo, "after")
        engine.submit([after])
        assert deliveries.wait_for([after.task_id])[after.task_id]["status"] == "success"
        stops = _expected(self.stops_queued_tasks, queued.task_id, unstoppable)
        if stops:
            assert not queued_started.exists(), "the cancelled queued task ran"
        time.sleep(0.3)
        deliveries.single(queued.task_id)  # a late result was not delivered too

    def test_a_cancelled_running_task_is_stopped_where_the_engine_can(
            self, started: Started, serializer: Serializer, tmp_path: Path) -> None:
        engine, deliveries = started.engine, started.deliveries
        task, _, done = self.run_until_held(started, serializer, tmp_path, 2.0)
        begun = time.monotonic()
        unstoppable = engine.cancel([task.task_id])
        assert time.monotonic() - begun < 5, "cancel blocked"
        outcome = deliveries.wait_for([task.task_id])[task.task_id]
        assert outcome["status"] == "failed"
        assert "cancelled" in outcome["exception"]
        stops = _expected(self.stops_running_tasks, task.task_id, unstoppable)
        after = self.task(serializer, echo, "after")
        engine.submit([after])
        assert deliveries.wait_for([after.task_id])[after.task_id]["status"] == "success"
        time.sleep(max(0.0, begun + 2.5 - time.monotonic()))
        if stops:
            assert not done.exists(), "the cancelled task ran to its end"
        else:
            assert _eventually(done.exists), "the task the engine could not stop vanished"
            time.sleep(0.3)
        deliveries.single(task.task_id)  # its late result was discarded

    def test_cancelling_a_task_the_engine_does_not_hold_is_ignored(
            self, started: Started, serializer: Serializer) -> None:
        if type(started.engine).cancel is Engine.cancel:
            pytest.skip("the engine does not cancel tasks (Engine.cancel's default)")
        unknown = str(uuid.uuid4())
        assert started.engine.cancel([unknown]) == []
        after = self.task(serializer, echo, "after")
        started.engine.submit([after])
        assert started.deliveries.wait_for([after.task_id])[after.task_id]["status"] == "success"
        assert unknown not in started.deliveries.outcomes


def _expected(declared: bool | None, task_id: str, unstoppable: list[str]) -> bool:
    """Whether the task must have been stopped: as the test class declares, which the
    engine's answer must match, or else as that answer says."""
    stopped = task_id not in unstoppable
    if declared is not None:
        assert stopped == declared, (
            f"cancel answered {unstoppable}: the engine should {'' if declared else 'not '}"
            "have stopped the task")
    return stopped


def _eventually(check: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False
