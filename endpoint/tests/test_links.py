"""Which link and transport an endpoint serves through: the config's, or the link the
service names when the endpoint registers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from farcall.errors import UnknownPluginError
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, TransportType
from farcall.sdk.http_transport import HttpTransport
from farcall_endpoint.configure import configure_endpoint
from farcall_endpoint.kinds import LinkType
from farcall_endpoint.links.handoff import HandOffLink
from farcall_endpoint.links.interface import Link, LinkContext, Receipt, Registration
from farcall_endpoint.runner import EndpointRunner


def triple(x):
    return 3 * x


class PlainHttp(HttpTransport):
    """The http transport without channels, counting the connections it opens."""

    opened = 0

    def __init__(self, base_url: str, authorizer: Authorizer | None,
                 settings: Mapping[str, Any]) -> None:
        super().__init__(base_url, authorizer, settings)
        type(self).opened += 1

    def open_channel(self, path: str, fallback: Any, on_push: Any = None) -> None:
        return None


class CountingLink(HandOffLink):
    """The built-in link, keeping what it was built with and how often it was used."""

    built: list[CountingLink] = []

    def __init__(self, context: LinkContext) -> None:
        super().__init__(context)
        self.context = context
        self.claims = self.reports = 0
        self.closed = False
        self.built.append(self)

    def claim(self, session: str, max_tasks: int, wait: float) -> list[dict[str, Any]]:
        self.claims += 1
        return super().claim(session, max_tasks, wait)

    def report(self, session: str, results: list[dict[str, Any]], timeout: float,
               meanwhile: Callable[[], None] | None = None) -> Receipt:
        self.reports += 1
        return super().report(session, results, timeout, meanwhile)

    def close(self) -> None:
        self.closed = True
        super().close()


class AnnouncingLink(CountingLink):
    """Registers as the built-in link does, with an answer that names ``counting``, as
    a service with a broker would name its own link."""

    def register(self, registration: Registration) -> Mapping[str, Any]:
        return {**super().register(registration), "link": "counting", "queue": "q1"}


class Plugin:
    @hookimpl
    def farcall_endpoint_links(self) -> Iterable[LinkType]:
        return [LinkType("counting", CountingLink), LinkType("announcing", AnnouncingLink)]

    @hookimpl
    def farcall_transports(self) -> Iterable[TransportType]:
        return [TransportType("plain-http", PlainHttp)]


def plugin_manager() -> FarcallPluginManager:
    pm = get_plugin_manager()
    pm.register(Plugin(), name="test-links")
    CountingLink.built.clear()
    PlainHttp.opened = 0
    return pm


def serve(service: Any, api: Any, home: Path, **settings: Any) -> Link:
    """Run an endpoint in a thread with ``settings`` until it has run a few tasks."""
    config = configure_endpoint("ep", home=home, base_url=service.url, token=service.token,
                                engine={"type": "thread", "workers": 2}, claim_wait=1.0,
                                **settings)
    runner = EndpointRunner(config, plugin_manager=plugin_manager())
    runner.start()
    try:
        assert runner.ready.wait(60) and runner.error is None, runner.error
        fn = api.register_function(triple)
        ids = api.submit(runner.endpoint_id, fn, [(i,) for i in range(5)])
        docs = api.wait(ids)
        assert [api.result(docs[t]) for t in ids] == [3 * i for i in range(5)]
    finally:
        runner.stop(timeout=60)
    assert runner.error is None
    return CountingLink.built[-1]


def test_the_endpoint_serves_through_the_link_and_transport_its_config_names(
        service: Any, api: Any, tmp_path: Path) -> None:
    link = serve(service, api, tmp_path, link="counting", transport="plain-http")
    assert len(CountingLink.built) == 1 and link.context.registration == {}
    assert link.claims > 0 and link.reports > 0 and link.closed
    assert PlainHttp.opened >= 3  # registration, claims, reports, heartbeats: one per thread


def test_the_endpoint_serves_through_the_link_the_service_names(
        service: Any, api: Any, tmp_path: Path) -> None:
    link = serve(service, api, tmp_path, link="announcing")
    announcing, counting = CountingLink.built
    assert type(announcing) is AnnouncingLink and announcing.closed
    assert announcing.claims == announcing.reports == 0
    assert type(counting) is CountingLink and counting is link
    assert counting.context.registration["queue"] == "q1"
    assert counting.claims > 0 and counting.reports > 0 and counting.closed


def test_an_unknown_link_is_named_with_the_choices(service: Any, tmp_path: Path) -> None:
    config = configure_endpoint("ep", home=tmp_path, base_url=service.url, token=service.token,
                                engine={"type": "thread", "workers": 1}, link="carrier-pigeon")
    runner = EndpointRunner(config, plugin_manager=plugin_manager())
    runner.start().join(60)
    assert isinstance(runner.error, UnknownPluginError)
    assert "carrier-pigeon" in str(runner.error) and "farcall" in str(runner.error)
