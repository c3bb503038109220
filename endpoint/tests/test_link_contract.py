"""The built-in ``farcall`` link passes the link contract suite against a real
``farcall server``: over the WebSocket channel, and over plain HTTP through a
transport plugin that opens no channels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, TransportType
from farcall.sdk.http_transport import HttpTransport
from farcall_endpoint.testing.link_contract import LinkContract


class TestFarcallLink(LinkContract):
    link_name = "farcall"


class PlainHttp(HttpTransport):
    """The http transport without channels: every call is a request."""

    def open_channel(self, path: str, fallback: Any, on_push: Any = None) -> None:
        return None


def plain_http(base_url: str, authorizer: Authorizer | None,
               settings: Mapping[str, Any]) -> PlainHttp:
    return PlainHttp(base_url, authorizer, settings)


class PlainHttpPlugin:
    @hookimpl
    def farcall_transports(self) -> Iterable[TransportType]:
        return [TransportType("plain-http", plain_http)]


class TestFarcallLinkWithoutChannels(LinkContract):
    link_name = "farcall"
    transport_name = "plain-http"

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls) -> FarcallPluginManager:
        pm = get_plugin_manager()
        pm.register(PlainHttpPlugin(), name="plain-http")
        return pm
