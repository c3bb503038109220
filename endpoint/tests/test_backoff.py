"""The one-line reasons the endpoint logs when it backs off, and the names in them."""

from __future__ import annotations

from farcall_endpoint.backoff import short


def test_a_long_reason_keeps_its_end_where_the_cause_is_named() -> None:
    """A cut line read "... failed (ConnectionRefus": the cause is at the end."""
    first = ("/farcall/v1/endpoints/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/channel claim: the "
             "channel to ws://127.0.0.1:54321/farcall/v1/endpoints/0f1e2d3c-4b5a-6978-8796-"
             "a5b4c3d2e1f0/channel failed (ConnectionRefusedError: [Errno 111] refused)")
    assert short(OSError(first + "\nmore detail")) == first
    assert short(ConnectionRefusedError()) == "ConnectionRefusedError"


def test_an_unreachable_service_is_named_by_the_root_cause() -> None:
    """Not urllib3's wrapper (MaxRetryError) but what happened underneath."""
    import pytest
    from farcall.plugins import get_plugin_manager
    from farcall.sdk.errors import ServiceUnreachable

    transport = get_plugin_manager().get_transport("http").factory(
        "http://127.0.0.1:9", None, {"retries": 0, "timeout": 5})
    with pytest.raises(ServiceUnreachable) as raised:
        transport.request("GET", "/v2/version")
    assert "did not answer (ConnectionRefusedError). Is it running?" in str(raised.value)
    assert short(raised.value).endswith("(ConnectionRefusedError). Is it running?")
