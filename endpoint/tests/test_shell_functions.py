"""Shell and MPI functions through a real service and a real endpoint process (process
engine): the farcall SDK's, and the official 4.19 SDK's ``ShellFunction`` submitted by the
official Client.

The MPI test needs ``mpiexec`` (Debian's ``mpich``, which .ci/run installs: Open MPI
refuses to run as root); it skips without it, or fails where ``FARCALL_REQUIRE_MPI=1``.
The official test needs the official SDK importable by the endpoint's workers (the
``farcall-endpoint[globus-compute]`` extra) and ``FARCALL_COMPAT_PYTHON`` for the Client.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from farcall import Client, Executor, MPIFunction, ShellFunction, ShellResult

COMPAT_PYTHON = os.environ.get("FARCALL_COMPAT_PYTHON", "")
PROCESS_ENGINE = {"type": "process", "workers": 2}


def _have_mpiexec() -> bool:
    """Whether mpiexec is here; fails the test where it must be (FARCALL_REQUIRE_MPI=1)."""
    if shutil.which("mpiexec"):
        return True
    if os.environ.get("FARCALL_REQUIRE_MPI", "") == "1":
        pytest.fail(
            "mpiexec is not installed (Debian: apt-get install mpich), and FARCALL_REQUIRE_MPI=1",
            pytrace=False,
        )
    return False


def _require_mpiexec() -> None:
    if not _have_mpiexec():
        pytest.skip("mpiexec is not installed (Debian: apt-get install mpich)")


def _results(client: Client, task_ids: list[str]) -> list[Any]:
    client.wait(task_ids, timeout=120, progress=False)
    return [client.get_result(t) for t in task_ids]


def test_shell_functions_run_on_an_endpoint(service, make_endpoint) -> None:
    endpoint = make_endpoint("shell", engine=PROCESS_ENGINE).start()
    client = Client(service.url, token=service.token)
    echo = client.register_function(ShellFunction("echo {x}"))
    fails = client.register_function(ShellFunction("echo no >&2; exit 4", name="fails"))
    as_dict = client.register_function(ShellFunction("echo {x}", return_dict=True))
    tasks = [
        client.run(endpoint_id=endpoint.endpoint_id, function_id=echo, x="hello"),
        client.run(endpoint_id=endpoint.endpoint_id, function_id=fails),
        client.run(endpoint_id=endpoint.endpoint_id, function_id=as_dict, x=7),
    ]
    hello, failed, plain = _results(client, tasks)

    assert isinstance(hello, ShellResult)
    assert (hello.cmd, hello.stdout, hello.stderr) == ("echo hello", "hello\n", "")
    assert (hello.returncode, hello.exception_name) == (0, None)
    # A non-zero exit is a result, as the official SDK returns it, not a failed task.
    assert (failed.returncode, failed.stderr) == (4, "no\n")
    assert failed.exception_name == "subprocess.CalledProcessError"
    assert plain == {
        "cmd": "echo 7",
        "stdout": "7\n",
        "stderr": "",
        "returncode": 0,
        "exception_name": None,
    }
    assert client.get_function(echo)["function_name"] == "ShellFunction"

    # The official SDK's own example: a ShellFunction submitted to an Executor.
    with Executor(endpoint.endpoint_id, client=client) as ex:
        future = ex.submit(ShellFunction("echo {x} from the executor"), x="hi")
        assert future.result(timeout=120).stdout == "hi from the executor\n"


@pytest.mark.parametrize("engine", ["process", "thread"])
def test_an_mpi_function_runs_two_ranks_with_the_endpoint_prefix(
    service, make_endpoint, engine: str
) -> None:
    _require_mpiexec()
    endpoint = make_endpoint("mpi", engine={"type": engine, "workers": 2}).start()
    client = Client(service.url, token=service.token)
    ranks = client.register_function(MPIFunction("bash -c 'echo {word} $PMI_RANK of $PMI_SIZE'"))
    batch = client.create_batch(resource_specification={"num_nodes": 1, "ranks_per_node": 2})
    batch.add(endpoint_id=endpoint.endpoint_id, function_id=ranks, word="rank")
    too_wide = client.create_batch(resource_specification={"num_nodes": 2, "ranks_per_node": 2})
    too_wide.add(endpoint_id=endpoint.endpoint_id, function_id=ranks, word="rank")
    plain = client.create_batch()
    plain.add(endpoint_id=endpoint.endpoint_id, function_id=ranks, word="alone")
    [mpi_task] = client.batch_run(batch)
    [wide_task] = client.batch_run(too_wide)
    [plain_task] = client.batch_run(plain)
    client.wait([mpi_task, wide_task, plain_task], timeout=120, progress=False)

    result = client.get_result(mpi_task)
    assert isinstance(result, ShellResult)
    assert result.cmd == "$PARSL_MPI_PREFIX bash -c 'echo rank $PMI_RANK of $PMI_SIZE'"
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["rank 0 of 2", "rank 1 of 2"]
    # Without MPI in the specification there is no prefix: the command runs once.
    assert client.get_result(plain_task).stdout == "alone of\n"
    wide = client.get_task(wide_task)
    assert wide["status"] == "failed"
    assert "resource_specification['num_nodes'] must be 1, not 2" in str(wide["exception"])


OFFICIAL_CLIENT = textwrap.dedent(
    """
    import json, sys, time

    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token, endpoint_id = sys.argv[1:4]
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client, MPIFunction, ShellFunction, ShellResult
    from globus_compute_sdk.errors import TaskPending

    gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    echo = gcc.register_function(ShellFunction("echo {x}"))
    fails = gcc.register_function(ShellFunction("exit 5"))
    tasks = [gcc.run(endpoint_id=endpoint_id, function_id=echo, x="official"),
             gcc.run(endpoint_id=endpoint_id, function_id=fails)]
    if sys.argv[4:] == ["mpi"]:
        ranks = gcc.register_function(MPIFunction("bash -c 'echo $PMI_RANK of $PMI_SIZE'"))
        batch = gcc.create_batch(resource_specification={"num_nodes": 1, "ranks_per_node": 2})
        batch.add(ranks)
        tasks += gcc.batch_run(endpoint_id, batch)["tasks"][ranks]
    out = []
    deadline = time.monotonic() + 120
    for task in tasks:
        while True:
            try:
                result = gcc.get_result(task)
                break
            except TaskPending:
                assert time.monotonic() < deadline, "the task did not finish"
                time.sleep(0.2)
        out.append({"task_id": task,
                    "type": f"{type(result).__module__}.{type(result).__name__}",
                    "is_shell_result": isinstance(result, ShellResult),
                    **vars(result)})
    print(json.dumps(out))
    """
)


@pytest.mark.compat
@pytest.mark.skipif(not COMPAT_PYTHON, reason="FARCALL_COMPAT_PYTHON is not set")
@pytest.mark.skipif(
    importlib.util.find_spec("globus_compute_sdk") is None,
    reason="the endpoint's workers need the official SDK to run its "
    "ShellFunction: pip install 'farcall-endpoint[globus-compute]'",
)
def test_the_official_shell_function_runs_on_a_farcall_endpoint(
    service, make_endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The official ShellFunction leaves <task id>.*.stdout/.stderr files in the worker's
    # directory, which is the one the endpoint was started in: here, the test's.
    workdir = tmp_path / "endpoint-cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    endpoint = make_endpoint("official-shell", engine=PROCESS_ENGINE).start()
    script = tmp_path / "official_shell.py"
    script.write_text(OFFICIAL_CLIENT)
    env = {**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"}
    mpi = ["mpi"] if _have_mpiexec() else []
    ran = subprocess.run(
        [COMPAT_PYTHON, str(script), service.url, service.token, endpoint.endpoint_id, *mpi],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert ran.returncode == 0, f"{ran.stderr}\n{endpoint.log()}"
    echo, fails, *ranks = json.loads(ran.stdout.strip().splitlines()[-1])

    assert echo["type"] == "globus_compute_sdk.sdk.shell_function.ShellResult"
    assert echo["is_shell_result"] is True
    assert (echo["cmd"], echo["stdout"], echo["returncode"]) == ("echo official", "official\n", 0)
    assert echo["exception_name"] is None
    assert (fails["returncode"], fails["exception_name"]) == (5, "subprocess.CalledProcessError")
    if mpi:  # the official Client's resource_specification reached the worker
        [mpi_result] = ranks
        assert mpi_result["is_shell_result"] and mpi_result["returncode"] == 0, mpi_result
        assert sorted(mpi_result["stdout"].splitlines()) == ["0 of 2", "1 of 2"]
    # ... named after GC_TASK_UUID, which the endpoint set to each task's id.
    left = sorted(p.name.split(".", 1)[0] + p.suffix for p in workdir.iterdir())
    ids = [task["task_id"] for task in (echo, fails, *ranks)]
    assert left == sorted(
        f"{task_id}{suffix}" for task_id in ids for suffix in (".stderr", ".stdout")
    )
