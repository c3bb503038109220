"""The built-in ``farcall`` link passes the link contract suite against a real
``farcall server``: over the WebSocket channel, and over plain HTTP through a
transport plugin that opens no channels. A link that breaks the contract fails it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, TransportType
from farcall.sdk.http_transport import HttpTransport
from farcall_endpoint.testing.link_contract import LinkContract

pytest_plugins = ["pytester"]


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


CARELESS = '''
import contextlib

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall_endpoint.kinds import LinkType
from farcall_endpoint.links.handoff import HandOffLink
from farcall_endpoint.testing.link_contract import LinkContract


class CarelessLink(HandOffLink):
    """Passes the service's refusals on as they come, and never runs ``meanwhile``."""

    def _refusals(self):
        return contextlib.nullcontext()

    def report(self, session, results, timeout, meanwhile=None):
        return super().report(session, results, timeout)


class Plugin:
    @hookimpl
    def farcall_endpoint_links(self):
        return [LinkType("careless", CarelessLink)]


class TestCareless(LinkContract):
    link_name = "careless"

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls):
        pm = get_plugin_manager()
        pm.register(Plugin(), name="careless")
        return pm
'''


def test_a_link_that_breaks_the_contract_fails_the_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_careless=CARELESS)
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "-k", "refused or recorded_once or registering")
    failed = {r.nodeid.rsplit("::", 1)[-1] for r in result.reprec.getreports()
              if r.when == "call" and r.failed}
    assert failed == {"test_a_wrong_token_is_refused_for_good",
                      "test_another_users_endpoint_is_refused_for_good",
                      "test_a_reported_result_is_recorded_once"}
