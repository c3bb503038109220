"""The SDK's channel outlives a service restart without a request going astray.

A channel's connection is read only while its thread waits for an answer, so one the
service closed while it sat idle (a restart, or pings left unanswered) is noticed
before the next request is sent on it: the channel opens again and the request goes
over it, not over the HTTP fallback after a failure.
"""

from __future__ import annotations

from typing import Any

import pytest
import reliability_kit as kit
from farcall import Client
from farcall.sdk.session import RequestFallback


def test_a_restarted_service_gets_the_next_request_on_a_new_channel(
        stack: kit.Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = stack.endpoint("reopen").start()
    client = Client(stack.url, token=stack.token)
    fn = kit.register(stack.api(), kit.plus_one)
    over_http: list[str] = []
    ask = RequestFallback.ask

    def counted(self: Any, operation: str, body: dict[str, Any], timeout: float) -> Any:
        over_http.append(operation)
        return ask(self, operation, body, timeout)

    monkeypatch.setattr(RequestFallback, "ask", counted)
    first = client.run(1, endpoint_id=endpoint.endpoint_id, function_id=fn)
    assert client.wait([first], timeout=60, progress=False)[first]["result"] == 2
    channel = client.session.channel()
    before = channel._ws

    stack.restart_service()
    again = client.run(2, endpoint_id=endpoint.endpoint_id, function_id=fn)
    assert client.wait([again], timeout=60, progress=False)[again]["result"] == 3
    assert channel._ws is not before, "the request went on the closed connection"
    assert over_http == [], f"requests went over HTTP after a failure: {over_http}"
