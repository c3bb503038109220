"""The one-line reasons the endpoint logs when it backs off."""

from __future__ import annotations

from farcall_endpoint.backoff import short


def test_a_long_reason_keeps_its_end_where_the_cause_is_named() -> None:
    """A cut line read "... failed (ConnectionRefus": the cause is at the end."""
    first = ("/farcall/v1/endpoints/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/channel claim: the "
             "channel to ws://127.0.0.1:54321/farcall/v1/endpoints/0f1e2d3c-4b5a-6978-8796-"
             "a5b4c3d2e1f0/channel failed (ConnectionRefusedError: [Errno 111] refused)")
    assert short(OSError(first + "\nmore detail")) == first
    assert short(ConnectionRefusedError()) == "ConnectionRefusedError"
