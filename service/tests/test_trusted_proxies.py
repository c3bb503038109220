"""Behind a trusted proxy the client is the address it forwards; from anyone else,
X-Forwarded-For counts for nothing."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from farcall_service.app import create_app
from farcall_service.connection_limits import ForwardedClients, TrustedProxies
from farcall_service.context import UNKNOWN_TOKENS_BURST
from farcall_service.settings import Settings
from fastapi.testclient import TestClient


def _unknown_tokens(client: TestClient, forwarded: str, count: int) -> list[int]:
    return [client.get("/v2/endpoints", headers={
        "Authorization": f"Bearer {secrets.token_urlsafe(32)}",
        "X-Forwarded-For": forwarded}).status_code for _ in range(count)]


def test_a_trusted_proxy_forwards_the_client_address(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, rate_limit=0, trusted_proxies="10.0.0.0/8"))
    with TestClient(app, raise_server_exceptions=False, client=("10.0.0.7", 1)) as proxy:
        codes = _unknown_tokens(proxy, "198.51.100.1", UNKNOWN_TOKENS_BURST + 1)
        assert codes[-1] == 429 and codes[:-1] == [401] * UNKNOWN_TOKENS_BURST
        # Another client behind the same proxy has its own budget; a spoofed hop
        # before the real client's does not matter.
        assert _unknown_tokens(proxy, "1.2.3.4, 198.51.100.2", 1) == [401]
        assert _unknown_tokens(proxy, "1.2.3.4, 198.51.100.1", 1) == [429]


def test_x_forwarded_for_from_anyone_else_is_ignored(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path, rate_limit=0, trusted_proxies="10.0.0.0/8"))
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.5", 1)) as direct:
        codes = [_unknown_tokens(direct, f"198.51.100.{n}", 1)[0]
                 for n in range(UNKNOWN_TOKENS_BURST + 2)]
    assert codes[-2:] == [429, 429], codes


def test_the_client_is_the_last_hop_that_is_not_a_proxy() -> None:
    trusted = TrustedProxies("10.0.0.0/8, 192.0.2.1")
    assert trusted.client(["6.6.6.6, 198.51.100.4", "10.1.1.1"]) == "198.51.100.4"
    assert trusted.client(["10.0.0.2"]) is None
    assert "192.0.2.1" in trusted and "192.0.2.2" not in trusted
    with pytest.raises(ValueError, match="not an address"):
        TrustedProxies("proxy.example")


def test_requests_in_flight_per_forwarded_client_are_capped() -> None:
    release = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = ForwardedClients(app, "10.0.0.1", per_address=2)
    statuses: list[int] = []

    async def one(forwarded: str) -> None:
        scope = {"type": "http", "client": ("10.0.0.1", 1),
                 "headers": [(b"x-forwarded-for", forwarded.encode())]}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await middleware(scope, None, send)

    async def run() -> None:
        tasks = [asyncio.create_task(one("198.51.100.1")) for _ in range(4)]
        tasks.append(asyncio.create_task(one("198.51.100.2")))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*tasks)

    asyncio.run(run())
    assert sorted(statuses) == [200, 200, 200, 429, 429]
    assert middleware.in_flight == {}
