"""``farcall dev`` end to end: the service, the endpoint, the profile, a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

from farcall_testkit.dev import start_dev, stop_dev
from farcall_testkit.service import free_port


def client_script(script: str, home) -> str:
    env = {**os.environ, "FARCALL_HOME": str(home)}
    env.pop("FARCALL_BASE_URL", None)
    env.pop("FARCALL_TOKEN", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


RUN = """
from farcall import Client
gcc = Client()
def square(x):
    return x * x
fid = gcc.register_function(square)
tid = gcc.run(7, endpoint_id=gcc.profile.endpoint_id, function_id=fid)
print(gcc.wait([tid], timeout=60, progress=False)[tid]["result"])
"""


def test_dev_serves_client_with_no_arguments_and_stops_cleanly(tmp_path):
    port = free_port()
    process, profile = start_dev(tmp_path, "--port", str(port), "--workers", "1")
    try:
        assert profile["base_url"] == f"http://127.0.0.1:{port}"
        assert profile["token"].startswith("fc_")
        assert oct((tmp_path / "dev.json").stat().st_mode & 0o777) == "0o600"
        assert client_script(RUN, tmp_path) == "49"
    finally:
        out = stop_dev(process)
    assert process.returncode == 0, out
    assert "ready:" in out and "stopped." in out
    assert "endpoint_id" not in json.loads((tmp_path / "dev.json").read_text())
    try:  # the service is gone: nothing answers on its port
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        raise AssertionError("the service still answers after farcall dev stopped")
    except ConnectionRefusedError:
        pass

    # a second start reuses the user, the token and the endpoint id
    process, again = start_dev(tmp_path, "--port", str(port), "--workers", "1")
    try:
        assert again["token"] == profile["token"]
        assert again["endpoint_id"] == profile["endpoint_id"]
    finally:
        stop_dev(process)


def _descendants(pid: int) -> set[int]:
    """Every process under ``pid``, from /proc (Linux: where this test runs)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _started_here(pid: int, home) -> bool:
    """Whether ``pid`` runs with this test's FARCALL_HOME (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return f"FARCALL_HOME={home}".encode() in environ.read().split(b"\0")
    except OSError:
        return False


def test_a_killed_dev_takes_its_service_endpoint_and_workers_with_it(tmp_path):
    port = free_port()
    process, _profile = start_dev(tmp_path, "--port", str(port), "--workers", "1")
    children: set[int] = set()
    try:
        children = _descendants(process.pid)
        assert len(children) >= 3, children  # the service, the endpoint and its worker
        process.kill()  # SIGKILL: farcall dev cleans nothing up itself
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in children):
            time.sleep(0.1)
        assert [pid for pid in children if _alive(pid)] == []
        with socket.socket() as sock:  # the port is free again, for a server
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        for pid in children | _descendants(process.pid):  # whatever the test left
            if _alive(pid) and _started_here(pid, tmp_path):
                os.kill(pid, signal.SIGKILL)

    # A second farcall dev starts (the killed one left its profile: start_dev would
    # take it for the new one's).
    profile = json.loads((tmp_path / "dev.json").read_text())
    (tmp_path / "dev.json").write_text(json.dumps({"token": profile["token"]}))
    process, _profile = start_dev(tmp_path, "--port", str(port), "--workers", "1")
    try:
        assert client_script(RUN, tmp_path) == "49"
    finally:
        out = stop_dev(process)
    assert process.returncode == 0, out
