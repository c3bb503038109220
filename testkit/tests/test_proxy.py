"""The round-robin proxy of the scaled-stack tests, against plain loopback servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from farcall_testkit.proxy import RoundRobinProxy


class Named(BaseHTTPRequestHandler):
    """Answers every GET with its server's port; ``/hang`` closes without answering
    (once ``release`` is set), as a process killed under a request does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path == "/hang":
            self.server.hung.set()  # type: ignore[attr-defined]
            self.server.release.wait(10)  # type: ignore[attr-defined]
            self.close_connection = True
            return
        body = str(self.server.server_port).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def upstreams() -> Iterator[list[ThreadingHTTPServer]]:
    servers = []
    for _ in range(3):
        server = ThreadingHTTPServer(("127.0.0.1", 0), Named)
        server.hung, server.release = threading.Event(), threading.Event()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield servers
    for server in servers:
        server.release.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


def ports(servers: list[ThreadingHTTPServer]) -> list[tuple[str, int]]:
    return [("127.0.0.1", s.server_port) for s in servers]


def fresh_get(url: str) -> requests.Response:
    """A GET on a connection of its own (each new connection takes the next turn)."""
    return requests.get(url, headers={"Connection": "close"}, timeout=10)


def test_new_connections_go_round_robin(upstreams: list[ThreadingHTTPServer]) -> None:
    with RoundRobinProxy(ports(upstreams)) as proxy:
        seen = [int(fresh_get(proxy.url + "/").text) for _ in range(6)]
    expected = [s.server_port for s in upstreams]
    assert seen == expected * 2
    assert proxy.counts["connections"] == 6


def test_a_connection_stays_with_its_upstream(upstreams: list[ThreadingHTTPServer]) -> None:
    with RoundRobinProxy(ports(upstreams)) as proxy, requests.Session() as http:
        seen = {http.get(proxy.url + "/", timeout=10).text for _ in range(5)}
    assert len(seen) == 1


def test_a_dead_upstream_is_skipped(upstreams: list[ThreadingHTTPServer]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]  # nothing listens once closed
    with RoundRobinProxy([("127.0.0.1", dead), *ports(upstreams[:1])]) as proxy:
        seen = {fresh_get(proxy.url + "/").text for _ in range(4)}
    assert seen == {str(upstreams[0].server_port)}
    assert proxy.counts["refused"] >= 2 and proxy.counts["bad_gateway"] == 0


def test_no_upstream_answers_502() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
    with RoundRobinProxy([("127.0.0.1", dead)]) as proxy:
        answer = fresh_get(proxy.url + "/v2/version")
    assert answer.status_code == 502 and answer.json()["code"] == "BAD_GATEWAY"
    assert proxy.counts["bad_gateway"] == 1


def test_an_upstream_closing_under_a_request_counts_as_cut(
        upstreams: list[ThreadingHTTPServer]) -> None:
    upstreams[0].release.set()  # type: ignore[attr-defined]  # /hang closes at once
    with RoundRobinProxy(ports(upstreams[:1])) as proxy:
        with pytest.raises(requests.ConnectionError):
            fresh_get(proxy.url + "/hang")
        assert proxy.snapshot().get("cut") == 1
        assert fresh_get(proxy.url + "/").status_code == 200  # the proxy goes on


def test_an_idle_keep_alive_connection_is_closed_by_the_proxy_first(
        upstreams: list[ThreadingHTTPServer]) -> None:
    with RoundRobinProxy(ports(upstreams), idle_timeout=0.3) as proxy, \
            requests.Session() as http:
        first = http.get(proxy.url + "/", timeout=10).text
        time.sleep(1.0)
        second = http.get(proxy.url + "/", timeout=10).text  # the pool saw it closed
    assert proxy.counts["connections"] == 2 and first != second
    assert proxy.counts.get("cut", 0) == 0
