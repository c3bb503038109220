"""The local stack behind ``farcall dev``: a service and an endpoint, as child processes.

Both run as the ordinary ``farcall server start`` and ``farcall endpoint start``
commands, so the development set-up exercises exactly what a deployment runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farcall.private_files import open_private, private_dir, write_private
from farcall.processes import stop_process_group
from farcall.sdk.profile import farcall_home

DEV_USER = "dev"
ENDPOINT_NAME = "local"
FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]


class DevError(Exception):
    """The local stack could not start."""


@dataclass
class DevStack:
    port: int = 5000
    engine: str = "process"
    workers: int | None = None
    #: ``--broker`` of ``farcall server start`` (None: none, results are polled).
    broker: str | None = None
    #: ``--max-result-size`` of ``farcall server start`` (None: its default).
    max_result_size: int | None = None
    home: Path = field(default_factory=farcall_home)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: The write end of the pipe the children's tethers watch (:mod:`farcall_dev.tether`):
    #: held open, never written, closed by the kernel when this process dies.
    _lifeline: int | None = field(default=None, init=False, repr=False)
    _watched: int | None = field(default=None, init=False, repr=False)

    @property
    def directory(self) -> Path:
        return self.home / "dev"

    @property
    def profile_path(self) -> Path:
        return self.home / "dev.json"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.directory / 'farcall.db'}"

    # -- steps --------------------------------------------------------------------------

    def token(self) -> str:
        """The dev user's token: the one in dev.json while it is valid, else a new one."""
        from farcall_service import admin
        from farcall_service.storage import open_store
        from farcall_service.tokens import hash_token

        private_dir(self.directory, home=self.home)
        store = open_store(self.db_url)
        try:
            user = store.get_user(DEV_USER) or admin.add_user(store, DEV_USER)
            previous = _read_json(self.profile_path).get("token")
            if previous:
                owner = store.user_for_token(hash_token(previous))
                if owner is not None and owner.id == user.id:
                    return previous
            return admin.create_token(store, DEV_USER)
        finally:
            store.close()

    def start_service(self, token: str) -> None:
        private_dir(self.directory, home=self.home)
        log = open_private(self.directory / "service.log")
        command = [*FARCALL, "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
                   "--db", self.db_url]
        if self.broker:
            command += ["--broker", self.broker]
        if self.max_result_size is not None:
            command += ["--max-result-size", str(self.max_result_size)]
        self.processes.append(self._spawn(command, log))
        headers = {"Authorization": f"Bearer {token}"}
        self._wait_for(lambda: self._get("/v2/version?service=all", headers) is not None,
                       "the service", self.directory / "service.log")

    def start_endpoint(self, token: str) -> str:
        from farcall_endpoint.configure import configure_endpoint

        engine: dict[str, Any] = {"type": self.engine}
        if self.workers:
            engine["workers"] = self.workers
        config = configure_endpoint(
            ENDPOINT_NAME, home=self.home, overwrite=True, base_url=self.base_url, token=token,
            engine=engine, heartbeat_period=2.0,
        )
        endpoint_id = _endpoint_id(config)
        log_path = config.directory / "dev-endpoint.log"
        log = open_private(log_path)
        self.processes.append(self._spawn([*FARCALL, "endpoint", "start", ENDPOINT_NAME], log))
        headers = {"Authorization": f"Bearer {token}"}
        self._wait_for(
            lambda: (self._get(f"/v2/endpoints/{endpoint_id}/status", headers) or {}).get("status")
            == "online",
            "the endpoint", log_path,
        )
        return endpoint_id

    def write_profile(self, token: str, endpoint_id: str) -> None:
        private_dir(self.profile_path.parent, home=self.home)
        write_private(self.profile_path, json.dumps(
            {"base_url": self.base_url, "token": token, "endpoint_id": endpoint_id}))

    def stop(self) -> None:
        """Stop the endpoint, then the service; forget the profile (the token stays valid)."""
        for process in reversed(self.processes):
            stop_process_group(process)
        self.processes.clear()
        for fd in (self._lifeline, self._watched):
            if fd is not None:
                os.close(fd)
        self._lifeline = self._watched = None
        profile = _read_json(self.profile_path)
        if profile.get("base_url") == self.base_url:
            # keep the token for the next start, but let no Client find a dead service
            write_private(self.profile_path, json.dumps({"token": profile.get("token")}))

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    # -- helpers ------------------------------------------------------------------------

    def _spawn(self, command: list[str], log: Any) -> subprocess.Popen[bytes]:
        """``command`` in a session of its own (Ctrl-C here stops it in order, through
        :meth:`stop`), tethered to this process: it stops if this process dies."""
        if self._watched is None:
            self._watched, self._lifeline = os.pipe()
        watched = self._watched
        tethered = [sys.executable, "-m", "farcall_dev.tether", str(watched), *command]
        return subprocess.Popen(tethered, stdout=log, stderr=subprocess.STDOUT,
                                env=self._env(), start_new_session=True, pass_fds=(watched,))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_SERVICE_")}
        env["FARCALL_HOME"] = str(self.home)
        return env

    def _get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """The JSON of a 200 answer, else None (not up yet, or refused)."""
        import json
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return json.loads(answer.read()) if answer.status == 200 else None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _wait_for(self, ready: Any, what: str, log_path: Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise DevError(f"interrupted while starting {what}")
            if not self.alive():
                raise DevError(f"{what} exited while starting; see {log_path}:\n{_tail(log_path)}")
            if ready():
                return
            time.sleep(0.1)
        raise DevError(f"{what} did not start within {timeout:.0f} s; see {log_path}")


def _endpoint_id(config: Any) -> str:
    from farcall_endpoint.configure import ensure_endpoint_id

    return ensure_endpoint_id(config)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
