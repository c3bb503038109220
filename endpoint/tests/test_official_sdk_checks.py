"""What the unmodified official 4.19 SDK checks of a farcall service and endpoint: its
environment check on every result, ``get_worker_hardware_details()``, its refusal of
an unknown task group, and the API version it reads.

The Client runs in ``FARCALL_COMPAT_PYTHON`` against a real service and a real
endpoint process (process engine). For the version mismatch, the same Client runs with
another dill first on its path (installed with pip from the package index into a
folder of the test's): a real difference between the SDK's side and the workers'.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.compat

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")
needs_official = pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
#: A dill other than the one the workers have (the official SDK pins 0.3.9).
OTHER_DILL = "0.4.1"
WORKERS_HAVE_GLOBUS_COMPUTE = importlib.util.find_spec("globus_compute_sdk") is not None

CLIENT = textwrap.dedent(
    '''
    import json, sys, time, uuid, warnings

    import dill, globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token, endpoint_id, mode = sys.argv[1:5]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client
    from globus_compute_sdk.errors import TaskPending

    def double(x):
        return 2 * x

    def result(task_id):
        deadline = time.monotonic() + 120
        while True:
            try:
                return gcc.get_result(task_id)
            except TaskPending:
                assert time.monotonic() < deadline, "the task did not finish"
                time.sleep(0.1)

    out = {"client_dill": dill.__version__}
    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    fn = gcc.register_function(double)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out["result"] = result(gcc.run(21, endpoint_id=endpoint_id, function_id=fn))
    out["warnings"] = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
    if mode == "all":
        out["hardware"] = result(gcc.get_worker_hardware_details(endpoint_id))

        made = gcc.create_batch()
        made.add(fn, (1,))
        group = gcc.batch_run(endpoint_id, made)["task_group_id"]
        again = gcc.create_batch(task_group_id=group)
        again.add(fn, (2,))
        joined = gcc.batch_run(endpoint_id, again)
        out["joined"] = [joined["task_group_id"] == group,
                         result(joined["tasks"][fn][0])]
        unknown = gcc.create_batch(task_group_id=uuid.uuid4())
        unknown.add(fn, (3,))
        try:
            gcc.batch_run(endpoint_id, unknown)
            out["unknown_group"] = None
        except globus_sdk.GlobusAPIError as exc:
            out["unknown_group"] = [exc.http_status, exc.code, exc.message]

        web = gcc._compute_web_client.v2
        out["version"] = web.get_version().data
        out["version_all"] = web.get_version(service="all").data
    print(json.dumps(out), flush=True)
    '''
)


def _run_client(service: Any, endpoint_id: str, workdir: Path, mode: str,
                path: Path | None = None) -> dict[str, Any]:
    script = workdir / "official_checks.py"
    script.write_text(CLIENT)
    env = {**os.environ, "HOME": str(workdir), "GLOBUS_SDK_ENVIRONMENT": "production"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    ran = subprocess.run([COMPAT_PYTHON, str(script), service.url, service.token,
                          endpoint_id, mode],
                         capture_output=True, text=True, env=env, cwd=workdir, timeout=300)
    assert ran.returncode == 0, ran.stderr
    return dict(json.loads(ran.stdout.strip().splitlines()[-1]))


@pytest.fixture
def endpoint(make_endpoint: Any) -> Any:
    return make_endpoint("checks", engine={"type": "process", "workers": 1}).start()


@needs_official
@pytest.mark.skipif(not WORKERS_HAVE_GLOBUS_COMPUTE,
                    reason="get_worker_hardware_details needs the official SDK in the workers: "
                    "pip install 'farcall-endpoint[globus-compute]'")
def test_the_official_client_warns_of_nothing_gets_hardware_details_and_is_refused_an_unknown_group(
        service: Any, endpoint: Any, tmp_path: Path) -> None:
    out = _run_client(service, endpoint.endpoint_id, tmp_path, "all")

    assert out["client_dill"] == importlib.metadata.version("dill")  # the same on both sides
    assert out["result"] == 42
    assert out["warnings"] == []
    # The official report's sections, run by a worker that imported it by reference.
    hardware = out["hardware"]
    assert "== python: python_runtime_host_info ==" in hardware
    assert "== python: psutil.virtual_memory() ==" in hardware
    assert f"Version: {platform.python_version()}" in hardware
    assert out["joined"] == [True, 4]
    status, code, message = out["unknown_group"]
    assert (status, code) == (404, "TASK_GROUP_NOT_FOUND")
    assert "task group" in message
    assert out["version"] == "1.23.0"
    assert out["version_all"]["api"] == "1.23.0"
    assert out["version_all"]["min_sdk_version"] == "2.0.0"


@needs_official
def test_a_different_dill_is_named_with_the_real_versions_and_the_endpoint(
        service: Any, endpoint: Any, tmp_path: Path) -> None:
    other = tmp_path / "other-dill"
    installed = subprocess.run(
        [COMPAT_PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(other),
         f"dill=={OTHER_DILL}"], capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"dill {OTHER_DILL} could not be installed: {installed.stderr[-400:]}")

    out = _run_client(service, endpoint.endpoint_id, tmp_path, "warn", path=other)

    assert out["client_dill"] == OTHER_DILL
    assert out["result"] == 42
    [warning] = out["warnings"]
    python = platform.python_version()
    assert f"endpoint {endpoint.endpoint_id} workers" in warning
    assert f"SDK: Python {python}/Dill {OTHER_DILL}" in warning
    assert f"Workers: Python {python}/Dill {importlib.metadata.version('dill')}" in warning
    assert "Unknown" not in warning and "<unknown>" not in warning


def test_an_endpoint_s_own_failures_carry_its_versions_and_id(
        service: Any, endpoint: Any, api: Any) -> None:
    """A task stopped at its time limit ends in the endpoint process, not in a worker:
    its details still say which endpoint and versions, so the official check never
    reads "UnknownPy" or "<unknown>"."""
    fn = api.register_function(time.sleep)
    [task] = api.submit(endpoint.endpoint_id, fn, [(60,)],
                        resource_specification={"timeout": 0.5})
    doc = api.wait([task])[task]

    assert doc["status"] == "failed" and "time limit" in doc["exception"]
    details = doc["details"]
    assert details["endpoint_id"] == endpoint.endpoint_id
    assert details["python_version"] == platform.python_version()  # the endpoint's own
    assert details["dill_version"] == importlib.metadata.version("dill")
    assert details["os"] == platform.platform()
    assert details["globus_compute_sdk_version"] == (
        importlib.metadata.version("globus-compute-sdk") if WORKERS_HAVE_GLOBUS_COMPUTE
        else "farcall-endpoint-0.1.0")
