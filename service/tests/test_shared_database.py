"""What a process remembers, when another process may change it (``single_process``
False): the answers that must come from the database do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.brokers.local import LocalBroker
from farcall_service.kinds import BrokerType
from farcall_service.settings import Settings
from farcall_testkit.service import Caller
from fastapi.testclient import TestClient


class SharedBroker(LocalBroker):
    """The local broker's wake-ups, saying that other processes serve the database."""

    single_process = False


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    class Plugin:
        @hookimpl
        def farcall_brokers(self) -> list[BrokerType]:
            return [BrokerType("shared", lambda s, _store: SharedBroker(s.database_url))]

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="shared-broker")
    # Long-lived caches: what this test checks must not depend on them.
    app = create_app(replace(settings, broker="shared", cache_ttl=300.0), plugin_manager=pm)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_a_submission_sees_an_endpoint_deleted_by_another_process(
        alice: Caller, ep_fn: tuple[str, str], ctx: object) -> None:
    ep, fn = ep_fn
    assert alice.submit(ep, fn, 1).status_code == 200  # the endpoint is cached now
    store = ctx.store  # type: ignore[attr-defined]
    store.delete_endpoint(ep, time.time(), "deleted elsewhere")  # as another process
    answer = alice.submit(ep, fn, 1)
    assert answer.status_code == 404, answer.text
    assert store.count_outstanding(ep) == 0


def test_a_wait_sees_a_result_recorded_by_another_process(
        alice: Caller, ep_fn: tuple[str, str], ctx: object) -> None:
    """The memory of unfinished tasks stands aside: the store answers."""
    from farcall_service.storage.interface import Outcome, Report

    ep, fn = ep_fn
    (task_id,) = alice.submit(ep, fn, 1).json()["tasks"][fn]
    store = ctx.store  # type: ignore[attr-defined]
    store.claim(ep, "elsewhere", 1, time.time())
    store.record_reports([Report(ep, "elsewhere", [Outcome(task_id, "success", "r")],
                                 time.time())])
    answer = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task_id], "timeout": 5})
    assert answer.status_code == 200
    assert answer.json()["results"][task_id]["status"] == "success"
    admin.remove_user(store, "alice", force=True)


def test_a_followed_result_recorded_elsewhere_without_a_wake_up_is_pushed(
        alice: Caller, ep_fn: tuple[str, str], ctx: object) -> None:
    """A wake-up between processes may be lost (a broker connection dropped): a
    channel that follows tasks looks in the database once it has heard nothing for
    ``following.RECHECK`` seconds, so the SDK still has every result pushed."""
    import json

    from farcall_service import following
    from farcall_service.storage.interface import Outcome, Report
    from farcall_testkit.service import payload, receive, sdk_channel

    ep, fn = ep_fn
    store = ctx.store  # type: ignore[attr-defined]
    with sdk_channel(alice) as ws:
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep, "follow": True,
                                 "tasks": {fn: [payload(3)]}}))
        answer = receive(ws)
        assert answer["following"] is True
        [task_id] = answer["tasks"][fn]
        # Another process runs and records it, and its wake-up never comes.
        store.claim(ep, "elsewhere", 1, time.time())
        store.record_reports([Report(ep, "elsewhere", [Outcome(task_id, "success", "9")],
                                     time.time())])
        started = time.monotonic()
        push = receive(ws, timeout=following.RECHECK * 5)
        assert push["push"] == "results"
        assert push["results"][task_id]["result"] == "9"
        assert time.monotonic() - started < following.RECHECK * 3
