"""How an endpoint stops: Ctrl-C in the foreground, ``stop``, and what the service and
the SDK say afterwards. An endpoint that stops in order says goodbye: the service shows
it offline at once and puts what it held back in the queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from farcall.processes import stop_process_group
from farcall_endpoint.daemon import read_pid_file
from farcall_testkit.waiting import wait_for

#: A hang detector, not a speed requirement: each of these stops in a few seconds.
HANG = 20.0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("engine", ["process", "thread", "parsl", "dask"])
def test_ctrl_c_ends_a_foreground_endpoint_cleanly(cli, service, engine: str) -> None:
    if engine in ("parsl", "dask"):
        pytest.importorskip(engine)
    cli("configure", "fg", "--engine", engine, "--workers", "1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
    env.update(FARCALL_HOME=str(service.home), FARCALL_BASE_URL=service.url,
               FARCALL_TOKEN=service.token)
    # In a session of its own, as a terminal's foreground job: Ctrl-C is SIGINT to the
    # whole process group, the engine's own processes included.
    proc = subprocess.Popen(
        [sys.executable, "-c", "from farcall.cli import main; main()", "endpoint", "start", "fg"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        directory = service.home / "endpoints" / "fg"
        wait_for(lambda: (read_pid_file(directory) or {}).get("state") == "serving",
                 timeout=120, what="the endpoint did not start serving")
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=HANG)
        assert proc.returncode == 0, output
        assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
        assert "endpoint fg stopped" in output
        assert "engine (1 worker)" in output
        if engine == "dask":
            assert "Dask dashboard: http://127.0.0.1:" in output
        if engine == "parsl":
            assert f"Parsl run directory: {directory / 'engine' / 'parsl'}" in output
        # Nothing of the endpoint's process group is left behind.
        wait_for(lambda: not _group_alive(proc.pid), timeout=HANG,
                 what="the endpoint left processes behind")
    finally:
        stop_process_group(proc, signal.SIGKILL, timeout=10)


def _slow(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_stop_shows_the_endpoint_offline_at_once_and_requeues_its_task(cli, api) -> None:
    """Without the goodbye the status would stay online for the offline timeout (3 s
    here, conftest) and the task running for the requeue timeout (60 s)."""
    cli("configure", "bye", "--engine", "process", "--workers", "1")
    cli("start", "bye", "--detach")
    try:
        endpoint_id = cli("status", "bye").stdout.split("id: ")[1].split()[0]
        function_id = api.register_function(_slow)
        [task_id] = api.submit(endpoint_id, function_id, [(600,)])
        wait_for(lambda: api.documents([task_id])[task_id]["status"] == "running", timeout=60,
                 what="the task did not start")
        before_stop = time.time()
        cli("stop", "bye")
        status = api.status(endpoint_id)
        assert status["status"] == "offline"
        assert status["details"]["last_seen"] >= before_stop  # when it said goodbye
        assert api.documents([task_id])[task_id]["status"] == "waiting-for-ep"
    finally:
        cli("stop", "bye", "--timeout", "10", check=False)


def test_wait_on_an_offline_endpoint_says_it_is_offline(cli, service) -> None:
    from farcall.sdk.client import Client

    cli("configure", "gone", "--engine", "thread")
    cli("start", "gone", "--detach")
    endpoint_id = cli("status", "gone").stdout.split("id: ")[1].split()[0]
    cli("stop", "gone")
    client = Client(service.url, token=service.token)
    task_id = client.run(0.0, endpoint_id=endpoint_id, function_id=client.register_function(_slow))
    with pytest.raises(TimeoutError) as raised:
        client.wait([task_id], timeout=1, progress=False)
    message = str(raised.value)
    assert message.startswith("1 of 1 tasks still pending: ")
    assert f"endpoint {endpoint_id} is offline (last seen " in message
    seconds_ago = int(message.rsplit(", ", 1)[1].split(" s ago")[0])
    assert seconds_ago < 60  # when it said goodbye, moments ago


def test_detached_start_with_the_service_down_fails_at_once(cli, service) -> None:
    cli("configure", "lonely", "--base-url", "http://127.0.0.1:9")
    done = cli("start", "lonely", "--detach", check=False)
    assert done.returncode != 0
    assert "the farcall service at http://127.0.0.1:9 cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr
    assert read_pid_file(service.home / "endpoints" / "lonely") is None
    assert "lonely" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                          text=True).stdout


def test_a_second_ctrl_c_stops_at_once(cli, service) -> None:
    """A first Ctrl-C stops in order, which here waits: the service is frozen (SIGSTOP),
    so the goodbye waits for its answer (up to 5 s). A second Ctrl-C does not wait."""
    cli("configure", "twice", "--engine", "process", "--workers", "1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
    env.update(FARCALL_HOME=str(service.home), FARCALL_BASE_URL=service.url,
               FARCALL_TOKEN=service.token)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from farcall.cli import main; main()", "endpoint", "start",
         "twice"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    service_group = service.process.process.pid
    try:
        directory = service.home / "endpoints" / "twice"
        wait_for(lambda: (read_pid_file(directory) or {}).get("state") == "serving",
                 timeout=120, what="the endpoint did not start serving")
        os.killpg(service_group, signal.SIGSTOP)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)  # handled; the stop now waits for the frozen service
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=HANG)
        assert proc.returncode == 130, output
        assert "stopping at once" in output and "Traceback" not in output, output
        assert read_pid_file(directory) is None
        wait_for(lambda: not _group_alive(proc.pid), timeout=HANG,
                 what="the endpoint left processes behind")
    finally:
        os.killpg(service_group, signal.SIGCONT)
        stop_process_group(proc, signal.SIGKILL, timeout=10)
