"""The dashboard's server-sent events: a page hears of its viewer's results (and of
no one else's), a burst of wake-ups is one event, and a revoked session's stream ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import requests
from farcall.serialize import Serializer
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.context import ServiceContext
from farcall_service.dashboard.live import PageFeed
from farcall_service.settings import Settings
from farcall_service.storage.interface import Task
from farcall_testkit.service import AppServer, Caller


@pytest.fixture
def server(settings: Settings) -> Iterator[AppServer]:
    with AppServer(create_app(settings)) as running:
        yield running


def _events(server: AppServer, token: str, silence: float = 60) -> requests.Response:
    stream = requests.get(f"{server.url}/dashboard/events", stream=True, timeout=(10, silence),
                          cookies={"farcall_session": token})
    assert stream.status_code == 200, stream.text
    assert stream.headers["content-type"].startswith("text/event-stream")
    return stream


def _next(lines: Iterator[str]) -> str:
    """The next line that says something (not a blank line or a comment)."""
    for line in lines:
        if line and not line.startswith(":"):
            return line
    raise AssertionError("the stream ended")


def test_a_page_hears_its_viewers_results_and_not_anothers(server: AppServer) -> None:
    ctx: ServiceContext = server.server.config.app.state.farcall
    http = requests.Session()
    callers = {}
    for name in ("alice", "bob"):
        user = admin.add_user(ctx.store, name)
        token = admin.create_token(ctx.store, name)
        callers[name] = Caller(_Client(http, server.url), user.id, token)
    alice, bob = callers["alice"], callers["bob"]
    streams = {"alice": _events(server, alice.token), "bob": _events(server, bob.token, 3)}
    try:
        lines = {name: stream.iter_lines(decode_unicode=True) for name, stream in streams.items()}
        assert _next(lines["alice"]).startswith("retry:")
        assert _next(lines["bob"]).startswith("retry:")
        ep, fn = alice.register_endpoint(), alice.register_function()
        alice.submit(ep, fn, 2, count=3)
        claimed = alice.claim(ep)
        result = Serializer().serialize(4)
        alice.report(ep, [{"task_id": t["task_id"], "status": "success", "result": result}
                          for t in claimed])
        heard = [_next(lines["alice"]) for _ in range(2)]
        assert heard[0] == "event: changed" and heard[1].startswith("data: ")
        # Bob's page would have heard within the same throttle: his stream stays silent.
        with pytest.raises(requests.exceptions.ConnectionError):
            _next(lines["bob"])
    finally:
        for stream in streams.values():
            stream.close()


class _Client:
    """``Caller``'s client interface over plain HTTP."""

    def __init__(self, http: requests.Session, url: str) -> None:
        self.http, self.url = http, url

    def request(self, method: str, path: str, **kw: object) -> requests.Response:
        return self.http.request(method, self.url + path, timeout=60, **kw)  # type: ignore[arg-type]


def test_a_burst_of_wakeups_is_one_event(ctx: ServiceContext) -> None:
    async def run() -> list[str]:
        user = admin.add_user(ctx.store, "carol")
        token = admin.create_token(ctx.store, "carol")
        feed = PageFeed(ctx, user.id)
        events = feed.events(token, throttle=0.05)
        assert (await anext(events)).startswith("retry:")
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)  # the feed listens now
        task = Task("t", user.id, "f", "e", "g", "success", 0.0)
        for _ in range(500):
            ctx.lifecycle.broker.results.notify(user.id, [task])
        first = await pending
        await events.aclose()
        return [first]

    assert asyncio.run(run()) == ['event: changed\ndata: {"wakeups": 500}\n\n']


def test_a_revoked_sessions_stream_ends(ctx: ServiceContext) -> None:
    async def run() -> list[str]:
        user = admin.add_user(ctx.store, "dave")
        token = admin.create_token(ctx.store, "dave")
        events = PageFeed(ctx, user.id).events(token, throttle=0.01)
        assert (await anext(events)).startswith("retry:")
        pending = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        admin.revoke_token(ctx.store, token)
        ctx.tokens.clear()
        ctx.lifecycle.broker.results.notify(user.id, None)
        try:
            return [await pending]
        except StopAsyncIteration:
            return []

    assert asyncio.run(run()) == []
