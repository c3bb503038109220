"""Helpers for tests that run a real service and real endpoint processes.

Every process is started in its own session on 127.0.0.1 and is killed with its
whole process group by ``kill``/``stop``, so tests leave nothing behind. Needs the
``test`` extra (farcall-service, requests).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import requests
from farcall.processes import stop_process_group
from farcall_endpoint.configure import configure_endpoint, ensure_endpoint_id
from farcall_endpoint.daemon import PID_FILE


def create_user(home: Path, name: str = "alice") -> str:
    """Add a user to the service database under ``home``; return a new token."""
    from farcall_service import admin
    from farcall_service.settings import Settings
    from farcall_service.storage import open_store

    store = open_store(Settings(home=home).database_url)
    try:
        admin.add_user(store, name)
        return admin.create_token(store, name)
    finally:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()


def start_service(home: Path, args: Sequence[str] = (), port: int | None = None) -> Any:
    from farcall_testkit.service import ServiceProcess

    return ServiceProcess(home, port=port, args=list(args)).start()


class Api:
    """The few service calls the tests make, with plain requests."""

    def __init__(self, url: str, token: str) -> None:
        from farcall.serialize import Serializer

        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.serializer = Serializer()

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """One request; reads are retried once on a dropped connection (a service that
        was frozen closes its idle keep-alive connections when it resumes)."""
        read_only = method == "GET" or path == "/v2/batch_status"
        try:
            answer = self.http.request(method, self.url + path, timeout=60, **kw)
        except requests.ConnectionError:
            if not read_only:
                raise
            time.sleep(0.2)
            answer = self.http.request(method, self.url + path, timeout=60, **kw)
        assert answer.status_code == 200, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()

    def register_function(self, fn: Callable[..., Any], serializer: Any = None,
                          **extra: Any) -> str:
        from farcall.serialize import pack_buffers

        code = pack_buffers([(serializer or self.serializer).serialize(fn)])
        body = {"function_name": fn.__name__, "function_code": code, "serialized": True, **extra}
        return self.call("POST", "/v3/functions", json=body)["function_uuid"]

    def register_endpoint(self, endpoint_id: str, name: str = "ep") -> None:
        self.call("PUT", f"/v3/endpoints/{endpoint_id}", json={"endpoint_name": name})

    def payload(self, *args: Any, **kwargs: Any) -> str:
        from farcall.serialize import pack_buffers

        return pack_buffers([self.serializer.serialize(args), self.serializer.serialize(kwargs)])

    def submit(self, endpoint_id: str, function_id: str, arg_lists: Iterable[Sequence[Any]],
               **options: Any) -> list[str]:
        payloads = [self.payload(*args) for args in arg_lists]
        ids: list[str] = []
        for start in range(0, len(payloads), 1000):
            body = {"tasks": {function_id: payloads[start:start + 1000]}, **options}
            ids += self.call("POST", f"/v3/endpoints/{endpoint_id}/submit",
                             json=body)["tasks"][function_id]
        return ids

    def documents(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(task_ids), 5000):
            answer = self.call("POST", "/v2/batch_status",
                               json={"task_ids": list(task_ids[start:start + 5000])})
            out.update(answer["results"])
        return out

    def wait(self, task_ids: Sequence[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        """Documents of every task, once all have ended."""
        deadline = time.monotonic() + timeout
        while True:
            docs = self.documents(task_ids)
            if all(d.get("status") in ("success", "failed") for d in docs.values()):
                return docs
            if time.monotonic() > deadline:
                states: dict[str, int] = {}
                for d in docs.values():
                    states[d.get("status", "?")] = states.get(d.get("status", "?"), 0) + 1
                raise AssertionError(f"tasks did not end within {timeout} s: {states}")
            time.sleep(0.2)

    def result(self, doc: dict[str, Any]) -> Any:
        """The deserialized result; a large one (a blob reference) is downloaded."""
        from farcall.blob_refs import parse_reference

        assert doc["status"] == "success", doc.get("exception")
        text = doc["result"]
        if parse_reference(text) is not None:
            answer = self.http.get(f"{self.url}/farcall/v1/tasks/{doc['task_id']}/result",
                                   timeout=600)
            assert answer.status_code == 200, answer.text[:300]
            text = answer.content.decode()
        return self.serializer.deserialize(text)

    def status(self, endpoint_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v2/endpoints/{endpoint_id}/status")

    def close(self) -> None:
        self.http.close()


class EndpointProcess:
    """``python -m farcall_endpoint start NAME`` in its own session, as ``farcall endpoint
    start`` runs it."""

    def __init__(self, home: Path, name: str, url: str, token: str,
                 endpoint_id: str | None = None, **settings: Any) -> None:
        self.home, self.name, self.url, self.token = home, name, url, token
        self.config = configure_endpoint(name, home=home, endpoint_id=endpoint_id,
                                         overwrite=True, **settings)
        self.endpoint_id = ensure_endpoint_id(self.config)
        self.log_path = self.config.directory / "test-endpoint.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
        env.update(FARCALL_HOME=str(self.home), FARCALL_BASE_URL=self.url,
                   FARCALL_TOKEN=self.token)
        return env

    def start(self, timeout: float = 90.0) -> EndpointProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "farcall_endpoint", "start", self.name,
                 "--log-level", "INFO"],
                env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pid_file = self.config.directory / PID_FILE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the endpoint exited at start:\n{self.log()}")
            try:
                info = json.loads(pid_file.read_text())
                if info.get("pid") == self.process.pid and info.get("state") == "serving":
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the endpoint did not start within {timeout} s:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """Pids of the endpoint's worker processes (its children running the worker module)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.pid and b"farcall_endpoint.engines.worker" in cmdline:
                pids.append(int(entry.name))
        return sorted(pids)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the endpoint's whole process group (workers included) and reap it."""
        if self.process is not None:
            stop_process_group(self.process, sig, timeout=30)

    def kill_main(self) -> None:
        """SIGKILL only the endpoint process, as a crash would; workers notice and exit."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (a clean stop), then make sure the group is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        self.kill()
        self.reap_group()

    def reap_group(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> EndpointProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

