"""Endpoint processes: the pid file, running in the background, stopping, state.

The running endpoint writes ``endpoint.pid`` (JSON: pid, endpoint id, state) in
its directory whether it runs in the foreground or detached, so ``stop``, ``list``
and ``status`` work either way. A pid file whose process is gone is stale and
ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farcall.private_files import open_private, private_dir, write_private

from farcall_endpoint.config import ConfigError, EndpointConfig, endpoint_dir, load_config

PID_FILE = "endpoint.pid"
LOG_FILE = "endpoint.log"
#: Seconds a detached endpoint that failed to start is given to stop before it is killed.
STOP_GRACE = 10.0


def read_pid_file(directory: Path) -> dict[str, Any] | None:
    """The pid file of a live endpoint process, or None."""
    try:
        info = json.loads((directory / PID_FILE).read_text())
        pid = int(info["pid"])
        started = float(info.get("started", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(pid, started) else None


def _alive(pid: int, written_at: float) -> bool:
    """Whether ``pid`` is the process that wrote the pid file at ``written_at``: alive,
    not a zombie, and started before the file was written (a pid reused since belongs
    to a process started after). Not by its command line: a process may retitle itself
    (Dask's scheduler does, inside the endpoint, when a Dask parent set
    ``__DASK_PARENT_PID``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return False
        return _started_at(int(fields[19])) <= written_at + START_SLACK
    except (OSError, IndexError, ValueError):
        return True


#: Seconds of rounding between the kernel's start time of a process and the clock.
START_SLACK = 2.0


def _started_at(ticks_since_boot: int) -> float:
    """A process's start time (``/proc/PID/stat`` field 22) as a Unix time."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) + ticks_since_boot / os.sysconf("SC_CLK_TCK")
    raise ValueError("no btime in /proc/stat")


def write_pid_file(directory: Path, endpoint_id: str, state: str) -> None:
    private_dir(directory)
    body = {"pid": os.getpid(), "endpoint_id": endpoint_id, "state": state,
            "started": time.time()}
    write_private(directory / PID_FILE, json.dumps(body) + "\n")


def remove_pid_file(directory: Path) -> None:
    path = directory / PID_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def state_of(name: str, home: Path | None = None) -> str:
    """``serving``, ``starting`` or ``stopped``."""
    info = read_pid_file(endpoint_dir(name, home))
    return str(info.get("state", "running")) if info else "stopped"


def start_detached(
    name: str,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
    timeout: float = 60.0,
) -> int:
    """Start ``farcall endpoint start NAME`` in its own session; return its pid once serving.

    Output goes to ``endpoint.log`` in the endpoint's directory. A service that cannot
    be reached fails at once, before anything starts; an endpoint that does not serve
    within ``timeout`` is stopped, so a failed start leaves no process behind.
    """
    directory = endpoint_dir(name, home)
    if read_pid_file(directory):
        raise ConfigError(f"endpoint {name!r} is already running")
    if env is None and home is None:  # else the service is found from another environment
        check_reachable(load_config(name))
    environ = dict(os.environ if env is None else env)
    if home is not None:
        environ["FARCALL_HOME"] = str(home)
    private_dir(directory, home=home)
    log_path = directory / LOG_FILE
    with open_private(log_path) as log:
        proc = subprocess.Popen(
            [python, "-m", "farcall_endpoint", "start", name],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=environ, start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"endpoint {name!r} exited at start (exit code {proc.returncode}):"
                              f"\n{_tail(log_path)}")
        info = read_pid_file(directory)
        if info and info.get("pid") == proc.pid and info.get("state") == "serving":
            return proc.pid
        time.sleep(0.05)
    _stop_process(proc.pid, STOP_GRACE)
    proc.wait()
    raise ConfigError(f"endpoint {name!r} did not start serving within {timeout:g} s and was "
                      f"stopped:\n{_tail(log_path)}")


def check_reachable(config: EndpointConfig, timeout: float = 5.0) -> None:
    """Raise unless the endpoint's service answers HTTP at all (any status will do)."""
    import urllib.error
    import urllib.request

    from farcall.sdk.profile import load_profile

    base_url = load_profile(config.base_url).base_url
    try:
        urllib.request.urlopen(base_url.rstrip("/") + "/v2/version", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return  # it answered; whether its certificate is trusted is the endpoint's to say
        raise ConfigError(f"the farcall service at {base_url} cannot be reached ({reason}); "
                          f"start it, or set the endpoint's base_url in {config.config_path}"
                          ) from None


def stop_endpoint(name: str, *, home: Path | None = None, timeout: float = 30.0) -> bool:
    """SIGTERM the endpoint, SIGKILL its process group after ``timeout``; False if not running."""
    info = read_pid_file(endpoint_dir(name, home))
    if info is None:
        return False
    _stop_process(int(info["pid"]), timeout)
    return True


def _stop_process(pid: int, timeout: float) -> None:
    signalled = time.time()  # a process started after it is not ours
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, signalled):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)


def kill_descendants(pid: int) -> None:
    """SIGKILL every process descended from ``pid`` (Linux ``/proc``; elsewhere nothing):
    not its process group, which in a script without job control is the script's."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    for child in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
