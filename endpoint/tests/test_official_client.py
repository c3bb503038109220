"""The unmodified official globus-compute-sdk 4.19 Client, served by a real farcall
endpoint process (``python -m farcall_endpoint start``) on each engine.

The Client runs in ``FARCALL_COMPAT_PYTHON``, registers an endpoint and functions,
prints the endpoint id and waits; the test configures a farcall endpoint with that id,
starts it, and lets the Client run its scenario.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path

import pytest
from farcall_testkit.official_scenario import ScenarioFailed, run_official_client

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")

ENGINES = [
    pytest.param("process", 2, id="process"),
    pytest.param("thread", 2, id="thread"),
    pytest.param("parsl", 1, id="parsl", marks=pytest.mark.skipif(
        importlib.util.find_spec("farcall_engine_parsl") is None,
        reason="farcall-engine-parsl is not installed")),
    pytest.param("dask", 1, id="dask", marks=pytest.mark.skipif(
        importlib.util.find_spec("farcall_engine_dask") is None,
        reason="farcall-engine-dask is not installed")),
]


@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
@pytest.mark.parametrize(("engine", "workers"), ENGINES)
def test_official_client_against_endpoint(service, make_endpoint, tmp_path: Path,
                                          engine: str, workers: int) -> None:
    endpoints = []

    def serve(endpoint_id: str) -> None:
        endpoints.append(make_endpoint("e2e-endpoint", endpoint_id=endpoint_id,
                                       engine={"type": engine, "workers": workers}))
        endpoints[0].start()

    try:
        out = run_official_client(COMPAT_PYTHON, service.url, service.token, tmp_path, serve)
    except ScenarioFailed as exc:
        raise AssertionError(f"{exc}\n{endpoints[0].log() if endpoints else ''}") from None
    endpoint = endpoints[0]

    assert str(uuid.UUID(out["endpoint_id"])) == out["endpoint_id"] == endpoint.endpoint_id
    assert out["status_before_serving"] == "offline"
    assert out["pending_first"] is True
    assert out["run_result"] == 42
    assert out["source_result"] == "hello farcall"
    assert "ValueError: kaboom from the remote side" in out["failure"]
    assert "Traceback" in out["failure_remote"]
    assert out["batch_double"] == [0, 2, 4, 6, 8]
    assert out["batch_add"] == [10, 11, 12, 13, 14]
    assert out["task"] == {"pending": False, "status": "success", "result": 42}
    assert out["after_delete"] == [404, "FUNCTION_NOT_FOUND"]
    assert [e["uuid"] for e in out["endpoints"]] == [endpoint.endpoint_id]
    assert out["endpoints"][0]["name"] == "e2e-endpoint"
    status = out["endpoint_status"]
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == workers
