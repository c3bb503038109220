"""Limits before authentication, against a real ``farcall server start``: head size, slow
heads and bodies, half-open connections, connections per client address."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from farcall_testkit.service import ServiceProcess

TIMEOUT = 2.0
PER_ADDRESS = 16
LIMITS = {
    "FARCALL_SERVICE_HEADER_TIMEOUT": str(TIMEOUT),
    "FARCALL_SERVICE_BODY_TIMEOUT": str(TIMEOUT),
    "FARCALL_SERVICE_KEEP_ALIVE_TIMEOUT": "2",
    "FARCALL_SERVICE_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
}
SIMPLE = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home: Path = tmp_path_factory.mktemp("limits")
    with ServiceProcess(home, env=LIMITS) as started:
        yield started


def _connect(service: ServiceProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10,
                                    source_address=(source, 0))
    return sock


def _read_all(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything until the server closes (or resets), and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    answer = b""
    try:
        while time.monotonic() - started < limit:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except (ConnectionResetError, TimeoutError):
        pass
    return answer, time.monotonic() - started


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_20_kib_head_gets_431(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000
                     + b"\r\n\r\n")
        answer, _ = _read_all(sock)
    assert _status(answer) == 431, answer[:200]
    assert b'"REQUEST_HEADER_FIELDS_TOO_LARGE"' in answer


def test_a_1_mib_head_is_refused_before_it_is_read(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sent = 0
        head = b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: "
        try:
            sock.sendall(head)
            for _ in range(64):  # 1 MiB in 16 KiB pieces
                sock.sendall(b"a" * 16384)
                sent += 16384
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer, _ = _read_all(sock)
    assert sent < 1024 * 1024 or _status(answer) == 431, (sent, answer[:200])
    assert _status(answer) in (0, 431), answer[:200]
    assert b" 200 " not in answer[:20]
    assert requests.get(service.url + "/openapi.json", timeout=10).status_code == 200


def test_a_silent_connection_is_closed_within_the_head_timeout(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        answer, took = _read_all(sock, limit=TIMEOUT + 5)
    assert answer == b"" and took < TIMEOUT + 1.5, (answer, took)


def test_a_head_that_trickles_in_is_closed_with_408(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\n")
        answer = b""
        for n in range(40):  # one header byte every 0.1 s, far longer than the timeout
            try:
                sock.sendall(b"X-Slow: a\r\n"[n % 11:n % 11 + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if time.monotonic() - started > TIMEOUT + 0.5:
                break
        answer, _ = _read_all(sock)
        took = time.monotonic() - started
    assert _status(answer) == 408, answer[:200]
    assert took < TIMEOUT + 2, took


def test_a_body_that_trickles_in_is_closed_with_408(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /auth/v2/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(int(TIMEOUT * 10) + 20):
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            if time.monotonic() - started > TIMEOUT + 1:
                break
        answer, _ = _read_all(sock)
        took = time.monotonic() - started
    assert _status(answer) == 408, answer[:200]
    assert took < TIMEOUT + 3, took


def test_keep_alive_connections_keep_working(service: ServiceProcess) -> None:
    with requests.Session() as http:
        for _ in range(50):
            assert http.get(service.url + "/openapi.json", timeout=10).status_code == 200
        time.sleep(0.5)
        assert http.get(service.url + "/openapi.json", timeout=10).status_code == 200


def test_half_open_connections_beyond_the_cap_are_refused_per_address(
        service: ServiceProcess) -> None:
    held = [_connect(service) for _ in range(PER_ADDRESS)]
    try:
        time.sleep(0.2)
        refused: list[int] = []
        for _ in range(5):
            with _connect(service) as extra:
                extra.sendall(SIMPLE)
                answer, took = _read_all(extra)
                refused.append(_status(answer))
                assert took < 3, took
        assert refused == [429] * 5, refused
        # Another address is not held up by the first one's connections.
        with _connect(service, "127.0.0.2") as other:
            other.sendall(SIMPLE)
            answer, _ = _read_all(other)
        assert _status(answer) == 200, answer[:200]
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while True:  # the slots come back as the held connections close
        with _connect(service) as again:
            again.sendall(SIMPLE)
            answer, _ = _read_all(again)
        if _status(answer) == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert _status(answer) == 200, answer[:200]


def test_many_half_open_connections_are_all_closed(service: ServiceProcess) -> None:
    """More half-open connections than the cap, from several addresses: none outlives
    the head timeout by much, and the service answers throughout."""
    sockets: list[socket.socket] = []
    for n in range(4):
        for _ in range(PER_ADDRESS + 8):
            sockets.append(_connect(service, f"127.0.0.{10 + n}"))
    closed_by = [0.0] * len(sockets)
    started = time.monotonic()

    def watch(i: int) -> None:
        _read_all(sockets[i], limit=TIMEOUT + 6)
        closed_by[i] = time.monotonic() - started

    watchers = [threading.Thread(target=watch, args=(i,)) for i in range(len(sockets))]
    for thread in watchers:
        thread.start()
    assert requests.get(service.url + "/openapi.json", timeout=10).status_code == 200
    for thread in watchers:
        thread.join(TIMEOUT + 10)
    for sock in sockets:
        sock.close()
    assert max(closed_by) < TIMEOUT + 2, max(closed_by)


def test_blank_lines_after_a_response_do_not_hold_the_connection(
        service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(SIMPLE.replace(b"Connection: close\r\n", b""))
        started = time.monotonic()
        sock.settimeout(0.2)
        closed = False
        while time.monotonic() - started < TIMEOUT + 6:
            try:
                sock.sendall(b"\r\n")  # never a request: should not count as activity
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.3)
        took = time.monotonic() - started
    assert closed and took < TIMEOUT + 3, took


def test_websocket_channels_give_their_slot_back(service: ServiceProcess) -> None:
    from websockets.sync.client import connect

    url = service.url.replace("http://", "ws://") + "/farcall/v1/channel"
    for _ in range(PER_ADDRESS * 2):
        with connect(url, additional_headers={"Authorization": "Bearer fc_not-a-token"},
                     open_timeout=10) as channel:
            assert "UNAUTHORIZED" in str(channel.recv(timeout=10))
    with _connect(service) as sock:
        sock.sendall(SIMPLE)
        answer, _ = _read_all(sock)
    assert _status(answer) == 200, answer[:200]


def test_an_idle_keep_alive_connection_is_closed(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(SIMPLE.replace(b"Connection: close\r\n", b""))
        answer, took = _read_all(sock, limit=10)
    assert _status(answer) == 200 and 1.5 < took < 2 + 1.5, took  # keep-alive timeout: 2 s
