"""Helpers for tests of the service, shared by ``service/tests`` and the repository's tests.

``Caller`` acts as one user against an in-process test client; ``ServiceProcess`` runs
``farcall server start`` in its own process group on 127.0.0.1 and always cleans up;
``MiniWorker`` serves one endpoint through the hand-off routes with ``requests`` and
the farcall serializer, the smallest thing that behaves like an endpoint. Needs the
``test`` extra (``requests``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from farcall.processes import stop_process_group
from farcall.sdk.client import COMPUTE_SCOPE

CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
#: A function registered as source text (``serialized: false``).
SOURCE = "def square(x):\n    return x * x\n"


@dataclass
class Caller:
    """One user of the service: an id, a token, and request helpers on a test client."""

    client: Any
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, url: str, **kw: Any) -> Any:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Any:
        return self.request("PUT", url, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.request("DELETE", url, **kw)

    # common operations ------------------------------------------------------------

    def register_function(self, **extra: Any) -> str:
        body = {"function_name": "square", "function_code": SOURCE, "serialized": False, **extra}
        answer = self.post("/v3/functions", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["function_uuid"]

    def register_endpoint(self, name: str = "ep", **extra: Any) -> str:
        answer = self.post("/v3/endpoints", json={"endpoint_name": name, **extra})
        assert answer.status_code == 200, answer.text
        return answer.json()["endpoint_id"]

    def submit(self, endpoint_id: str, function_id: str, *args: Any, count: int = 1) -> Any:
        body = {"tasks": {function_id: [payload(*args)] * count}}
        return self.post(f"/v3/endpoints/{endpoint_id}/submit", json=body)

    def claim(self, endpoint_id: str, session: str = "s1", **extra: Any) -> list[dict[str, Any]]:
        """Claim ``endpoint_id``'s tasks as its endpoint would; the task documents."""
        answer = self.post(f"/farcall/v1/endpoints/{endpoint_id}/claim",
                           json={"session": session, **extra})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["tasks"])

    def report(self, endpoint_id: str, results: list[dict[str, Any]],
               session: str = "s1") -> Any:
        """Report results as ``endpoint_id``'s endpoint would; the service's answer."""
        answer = self.post(f"/farcall/v1/endpoints/{endpoint_id}/results",
                           json={"session": session, "results": results})
        assert answer.status_code == 200, answer.text
        return answer.json()


#: The first message of an SDK channel (``/farcall/v1/channel``).
CHANNEL_HELLO = {"ok": True, "max_message": 10 * 1024 * 1024, "frames": ["json", "msgpack"]}


@contextlib.contextmanager
def sdk_channel(caller: Caller) -> Iterator[Any]:
    """The caller's SDK channel on an in-process app, its greeting checked."""
    with caller.client.websocket_connect("/farcall/v1/channel", headers=caller.headers) as ws:
        assert json.loads(ws.receive_text()) == CHANNEL_HELLO
        yield ws


def receive(ws: Any, timeout: float = 20.0) -> dict[str, Any]:
    """The next message of a test client's WebSocket, failing (rather than hanging)
    when none comes in time; a closed socket's error is raised."""
    box: list[Any] = []

    def read() -> None:
        try:
            box.append(json.loads(ws.receive_text()))
        except BaseException as exc:  # handed to the caller below
            box.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert box, f"nothing came within {timeout} s"
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def payload(*args: Any, **kwargs: Any) -> str:
    """A task payload as the SDK builds it: packed (args, kwargs)."""
    from farcall.serialize import Serializer, pack_buffers

    serializer = Serializer()
    return pack_buffers([serializer.serialize(args), serializer.serialize(kwargs)])


def hold_next_call(monkeypatch: Any, target: Any, name: str) -> tuple[threading.Event,
                                                                    threading.Event]:
    """Hold the next call of ``target.name`` back until the test lets it go: returns
    (the call has begun, let it go). Calls after it go straight through."""
    begun, release = threading.Event(), threading.Event()
    call = getattr(target, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        if not begun.is_set():
            begun.set()
            assert release.wait(60), f"the test never let {name} go"
        return call(*args, **kwargs)

    monkeypatch.setattr(target, name, held)
    return begun, release


def assert_error(answer: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An error answer: the right status and exactly the documented JSON shape."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"code", "message"}, body
    assert CODE_RE.match(body["code"]), body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux's default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A free loopback port outside the ephemeral range.

    A port the kernel hands out for ``bind(0)`` is an ephemeral one: between this call
    and the server's own bind, any outgoing connection (to PostgreSQL, RabbitMQ, another
    test's service) may take it as its local port. Ports outside that range are never
    given to outgoing connections, so only another listener can take one.
    """
    ephemeral = _ephemeral_ports()
    pool = [port for port in range(20000, 65536) if port not in ephemeral]
    for _ in range(200):
        port = random.choice(pool)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found outside the ephemeral range")


def service_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_SERVICE_")}
    env["FARCALL_HOME"] = str(home)
    env.update(extra or {})
    return env


def admin(home: Path, *args: str, env: Mapping[str, str] | None = None,
          stdin: str | None = None) -> str:
    """Run ``farcall server ARGS...`` against ``home``'s database (``stdin`` on its
    standard input, as ``--password-stdin`` reads it); return its output."""
    done = subprocess.run(
        [*FARCALL, "server", *args],
        input=stdin,
        env=service_env(home, env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"farcall server {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class ServiceProcess:
    """``farcall server start`` in a subprocess; use as a context manager."""

    def __init__(
        self,
        home: Path,
        port: int | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        self.args = list(args)
        self.env = dict(env or {})
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / f"service-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        command = [*FARCALL, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.args],
                env=service_env(self.home, self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited at start:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/openapi.json", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the service did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group and wait for it to go."""
        if self.process is not None:
            stop_process_group(self.process, sig, timeout=15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> ServiceProcess:
        if self.process is not None and self.process.poll() is None:
            return self  # started already (``start_service``): a second one would leak
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class AppServer:
    """An application served by uvicorn in a thread on a free loopback port; use as a
    context manager. For a service changed in process (``without_channels``)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def without_channels(app: Any) -> Any:
    """The service as a release before the channels would serve it: no WebSocket routes."""
    from starlette.routing import WebSocketRoute

    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, WebSocketRoute)]
    return app


class MiniWorker(threading.Thread):
    """Serves one endpoint: claim, run, report, and survive the service restarting.

    After any failed claim it starts a new session, so tasks it was handed in a lost
    answer go back to the queue. Results are resent until acknowledged.
    """

    def __init__(
        self,
        url: str,
        token: str,
        endpoint_id: str,
        *,
        max_tasks: int = 100,
        wait: float = 2.0,
        heartbeat_every: float = 2.0,
    ) -> None:
        super().__init__(daemon=True, name=f"mini-worker-{endpoint_id[:8]}")
        from farcall.serialize import Serializer

        self.base = f"{url}/farcall/v1/endpoints/{endpoint_id}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.max_tasks = max_tasks
        self.wait = wait
        self.heartbeat_every = heartbeat_every
        self.serializer = Serializer()
        self.session = str(uuid.uuid4())
        self.executions: collections.Counter[str] = collections.Counter()
        self.acknowledged: set[str] = set()
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._http = requests.Session()

    def stop(self, timeout: float = 30.0) -> None:
        self._halt.set()
        self.join(timeout)
        self._http.close()

    def _post(self, route: str, body: dict[str, Any], timeout: float) -> requests.Response:
        return self._http.post(f"{self.base}/{route}", json=body, headers=self.headers,
                               timeout=timeout)

    def run(self) -> None:
        last_beat = 0.0
        while not self._halt.is_set():
            if time.monotonic() - last_beat > self.heartbeat_every:
                try:
                    self._post("heartbeat", {"session": self.session, "total_workers": 1,
                                             "idle_workers": 1, "pending_tasks": 0}, 10)
                    last_beat = time.monotonic()
                except requests.RequestException:
                    pass
            try:
                answer = self._post(
                    "claim",
                    {"session": self.session, "max_tasks": self.max_tasks, "wait": self.wait},
                    self.wait + 30,
                )
            except requests.RequestException:
                self.session = str(uuid.uuid4())
                self._halt.wait(0.1)
                continue
            if answer.status_code != 200:
                self.errors.append(f"claim: {answer.status_code} {answer.text[:200]}")
                self._halt.wait(0.2)
                continue
            results = [self._execute(task) for task in answer.json()["tasks"]]
            if results:
                self._report(results)

    def _execute(self, task: dict[str, Any]) -> dict[str, Any]:
        task_id = task["task_id"]
        self.executions[task_id] += 1
        try:
            fn, args, kwargs = self.serializer.unpack_and_deserialize(task["payload"])
            value = fn(*args, **kwargs)
            return {"task_id": task_id, "status": "success",
                    "result": self.serializer.serialize(value)}
        except Exception:
            return {"task_id": task_id, "status": "failed", "exception": traceback.format_exc()}

    def _report(self, results: list[dict[str, Any]]) -> None:
        while not self._halt.is_set():
            try:
                answer = self._post("results", {"session": self.session, "results": results}, 30)
            except requests.RequestException:
                self._halt.wait(0.1)
                continue
            if answer.status_code == 200:
                self.acknowledged.update(answer.json()["acknowledged"])
                return
            self.errors.append(f"results: {answer.status_code} {answer.text[:200]}")
            self._halt.wait(0.2)


# -- OAuth helpers ----------------------------------------------------------------------

def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_in(http: Any, auth_url: str, username: str, password: str, *, challenge: str,
            scope: str = COMPUTE_SCOPE, offline: bool = True) -> Any:
    """Drive the login form over HTTP as a browser would; returns the final POST answer
    (a 303 to the code page on success). ``http`` is a requests.Session or TestClient."""
    from farcall_service.oauth import NATIVE_CLIENT_ID

    params = {
        "client_id": NATIVE_CLIENT_ID,
        "redirect_uri": auth_url.rstrip("/") + "/v2/web/auth-code",
        "scope": scope,
        "state": "_default",
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline" if offline else "online",
    }
    page = http.get(auth_url.rstrip("/") + "/v2/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    found = re.search(r"name='csrf_token' value='([^']+)'", page.text)
    assert found is not None, f"no CSRF token on the sign-in page:\n{page.text[:500]}"
    csrf = found.group(1)
    form = {**params, "csrf_token": csrf, "username": username, "password": password}
    kwargs = {"allow_redirects": False} if isinstance(http, requests.Session) else {
        "follow_redirects": False}
    return http.post(auth_url.rstrip("/") + "/v2/oauth2/authorize", data=form, **kwargs)


def code_from(answer: Any) -> str:
    """The authorization code from a successful sign-in's redirect."""
    from urllib.parse import parse_qs, urlsplit

    assert answer.status_code == 303, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
