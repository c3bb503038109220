"""The parsl engine passes the engine contract suite on a local HighThroughputExecutor."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

pytest.importorskip("parsl")

from farcall_endpoint.testing.engine_contract import EngineContract  # noqa: E402


class TestParslEngine(EngineContract):
    engine_name = "parsl"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 2}
    #: Parsl cannot cancel a task it was given (AppFuture.cancel raises NotImplementedError).
    stops_running_tasks = False
    stops_queued_tasks = False
