"""No bearer token leaves this machine over plain http unless the user opts in.

A listener on a loopback address is reached through this machine's host name, which is
not a loopback name or address: the SDK and ``farcall endpoint start`` refuse to send it
anything, naming FARCALL_ALLOW_INSECURE_HTTP; with that set, the token arrives (so the
test can fail). Loopback URLs need no opt-in.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from farcall import Client
from farcall.processes import stop_process_group
from farcall.sdk.plain_http import ALLOW_INSECURE_HTTP, InsecureURLError, check_url, is_loopback

FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]
TOKEN = "fc_secret-that-must-not-travel"


class Listener(ThreadingHTTPServer):
    """Records the Authorization header of every request; answers ``{}``."""

    daemon_threads = True

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.seen: list[str] = []
        super().__init__((address, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.server.seen.append(self.headers.get("Authorization", ""))  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def host_address() -> tuple[str, str]:
    """This machine's host name, not loopback by name, and the loopback address it
    resolves to (127.0.0.1 here; 127.0.1.1 on many Debian machines)."""
    host = socket.gethostname()
    try:
        address = socket.gethostbyname(host)
    except OSError:
        pytest.skip(f"host name {host!r} does not resolve")
    if is_loopback(host) or not is_loopback(address):
        pytest.skip(f"host name {host!r} does not resolve to a loopback address here")
    return host, address


@pytest.fixture
def listener(host_address: tuple[str, str]) -> Iterator[Listener]:
    server = Listener(host_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def remote_url(host_address: tuple[str, str], listener: Listener) -> str:
    """The listener under a name that is not loopback but resolves to it here."""
    return f"http://{host_address[0]}:{listener.server_address[1]}"


def test_loopback_and_https_need_no_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_INSECURE_HTTP, raising=False)
    for url in ("http://127.0.0.1:5000", "http://127.8.9.1", "http://[::1]:80/x",
                "http://localhost:1", "http://LOCALHOST.", "https://compute.example.org"):
        assert check_url(url) == url
    for url in ("http://10.0.0.1:5000", "http://compute.example.org", "http://[::2]",
                "http://127.0.0.1.example.org", "http://0.0.0.0:5000"):
        with pytest.raises(InsecureURLError, match=ALLOW_INSECURE_HTTP):
            check_url(url)
        assert check_url(url, environ={ALLOW_INSECURE_HTTP: "1"}) == url


def test_the_sdk_sends_no_token_over_plain_http(remote_url: str, listener: Listener,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_INSECURE_HTTP, raising=False)
    with pytest.raises(InsecureURLError) as refused:
        Client(remote_url, token=TOKEN).version()
    assert ALLOW_INSECURE_HTTP in str(refused.value) and remote_url in str(refused.value)
    assert listener.seen == []

    monkeypatch.setenv(ALLOW_INSECURE_HTTP, "1")
    Client(remote_url, token=TOKEN).version()
    assert listener.seen == [f"Bearer {TOKEN}"]


def _endpoint(home: Path, url: str, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARCALL_")}
    env.update(FARCALL_HOME=str(home), FARCALL_BASE_URL=url, FARCALL_TOKEN=TOKEN, **extra)
    subprocess.run([*FARCALL, "endpoint", "configure", "ep", "--engine", "thread"], env=env,
                   check=True, capture_output=True, timeout=120)
    return subprocess.Popen([*FARCALL, "endpoint", "start", "ep"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def test_the_endpoint_sends_no_token_over_plain_http(remote_url: str, listener: Listener,
                                                     tmp_path: Path) -> None:
    pytest.importorskip("farcall_endpoint")
    refused = _endpoint(tmp_path / "a", remote_url)
    _out, err = refused.communicate(timeout=120)
    assert refused.returncode != 0
    assert ALLOW_INSECURE_HTTP in err and "plain http" in err
    assert listener.seen == []

    allowed = _endpoint(tmp_path / "b", remote_url, **{ALLOW_INSECURE_HTTP: "1"})
    try:
        deadline = time.monotonic() + 60
        while not listener.seen and time.monotonic() < deadline and allowed.poll() is None:
            time.sleep(0.05)
        assert f"Bearer {TOKEN}" in listener.seen
    finally:
        stop_process_group(allowed, signal.SIGKILL, timeout=15)
        allowed.communicate(timeout=30)
