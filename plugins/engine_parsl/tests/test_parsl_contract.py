"""The parsl engine passes the engine contract suite on a local HighThroughputExecutor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("parsl")

from farcall.serialize import Serializer  # noqa: E402
from farcall_endpoint.testing.engine_contract import EngineContract, Started  # noqa: E402


class TestParslEngine(EngineContract):
    engine_name = "parsl"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2}
    #: Parsl cannot cancel a task it was given (AppFuture.cancel raises NotImplementedError).
    stops_running_tasks = False
    stops_queued_tasks = False

    def test_a_cancelled_task_not_yet_handed_to_parsl_never_runs(
            self, started: Started, serializer: Serializer, tmp_path: Path) -> None:
        engine, deliveries = started.engine, started.deliveries
        handed = [self.holding(serializer, tmp_path, 1.0) for _ in range(engine.capacity())]
        engine.submit([task for task, _, _ in handed])
        waiting, waiting_started, _ = self.holding(serializer, tmp_path, 0.0)
        engine.submit([waiting])
        assert engine.cancel([waiting.task_id]) == []
        outcome = deliveries.wait_for([waiting.task_id])[waiting.task_id]
        assert "the task was cancelled; it had not started" in outcome["exception"]
        got = deliveries.wait_for([task.task_id for task, _, _ in handed])
        assert all(o["status"] == "success" for o in got.values()), got
        assert not waiting_started.exists(), "the cancelled task ran"
