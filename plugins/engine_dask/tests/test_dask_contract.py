"""The dask engine passes the engine contract suite on a small LocalCluster."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

pytest.importorskip("distributed")

from farcall_endpoint.testing.engine_contract import EngineContract  # noqa: E402


class TestDaskEngine(EngineContract):
    engine_name = "dask"
    engine_options: ClassVar[dict[str, Any]] = {"workers": 1, "threads_per_worker": 2}
    #: A Dask worker runs tasks in threads: one that runs cannot be interrupted.
    stops_running_tasks = False
    stops_queued_tasks = True
