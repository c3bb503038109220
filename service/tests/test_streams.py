"""Result streams through the lifecycle and the routes, with a broker made in the test:
the local broker's wake-ups, and result streams that keep what they are told in lists
(the real AMQP half runs in ``tests/test_rabbitmq_streams.py`` at the top)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from farcall.plugins import FarcallPluginManager, get_plugin_manager, hookimpl
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.brokers.interface import BrokerError, StreamAccess
from farcall_service.brokers.local import LocalBroker
from farcall_service.kinds import BrokerType
from farcall_service.settings import Settings
from farcall_service.storage.interface import Task
from farcall_testkit.service import Caller, assert_error, payload
from fastapi.testclient import TestClient


class ListedStreams:
    """Result streams that remember: queues opened, tasks published; ``down`` makes
    every call raise as an unreachable broker does."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, str]] = []
        self.published: list[Task] = []
        self.forgotten: list[str] = []
        self.down = False
        self.lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise BrokerError("the broker is away")

    async def open(self, owner_id: str, task_group_id: str) -> None:
        self._check()
        self.opened.append((owner_id, task_group_id))

    async def access(self, owner_id: str) -> StreamAccess:
        self._check()
        return StreamAccess(f"amqp://farcall-user-{owner_id}:pw@127.0.0.1:5672/v",
                            f"farcall.results.{owner_id}.")

    async def publish(self, tasks: Sequence[Task]) -> None:
        self._check()
        with self.lock:
            self.published.extend(tasks)

    async def forget(self, owner_id: str) -> None:
        self._check()
        self.forgotten.append(owner_id)

    def published_ids(self) -> list[str]:
        with self.lock:
            return [task.id for task in self.published]


class StreamingBroker(LocalBroker):
    def __init__(self, database_url: str, streams: ListedStreams) -> None:
        super().__init__(database_url)
        self.streams = streams  # type: ignore[assignment]


@pytest.fixture
def streams() -> ListedStreams:
    return ListedStreams()


@pytest.fixture
def plugins(streams: ListedStreams) -> FarcallPluginManager:
    """A plugin manager with the ``listed`` broker."""
    class Plugin:
        @hookimpl
        def farcall_brokers(self) -> list[BrokerType]:
            return [BrokerType("listed", lambda s, _store: StreamingBroker(s.database_url,
                                                                           streams))]

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="listed-broker")
    return pm


@pytest.fixture
def client(settings: Settings, plugins: FarcallPluginManager) -> Iterator[TestClient]:
    app = create_app(replace(settings, broker="listed"), plugin_manager=plugins)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def submit(caller: Caller, ep: str, fn: str, count: int = 1, **extra: Any) -> dict[str, Any]:
    body = {"tasks": {fn: [payload(1)] * count}, **extra}
    answer = caller.post(f"/v3/endpoints/{ep}/submit", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_streamed_group_s_results_are_published_once_recorded(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams, ctx: Any) -> None:
    ep, fn = ep_fn
    answer = submit(alice, ep, fn, 2, create_queue=True)
    group = answer["task_group_id"]  # made by the service
    assert streams.opened == [(alice.user_id, group)]  # before the answer
    ids = answer["tasks"][fn]
    alice.claim(ep)
    alice.report(ep, [{"task_id": ids[0], "status": "success", "result": "r"},
                      {"task_id": ids[1], "status": "failed", "exception": "boom"}])
    assert sorted(eventually(streams.published_ids)) == sorted(ids)
    by_id = {task.id: task for task in streams.published}
    assert by_id[ids[0]].result == "r" and by_id[ids[1]].exception == "boom"
    assert ctx.store.drain_outbox(10, lambda _t: None) == 0  # deleted once published
    submit(alice, ep, fn, create_queue=True, task_group_id=group)  # the group again
    assert streams.opened == [(alice.user_id, group)] * 2


def test_groups_without_create_queue_are_not_streamed(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams) -> None:
    ep, fn = ep_fn
    ids = submit(alice, ep, fn)["tasks"][fn]
    alice.claim(ep)
    alice.report(ep, [{"task_id": ids[0], "status": "success", "result": "r"}])
    time.sleep(0.3)
    assert streams.opened == [] and streams.published == []


def test_the_legacy_submission_asks_with_create_websocket_queue(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams) -> None:
    ep, fn = ep_fn
    answer = alice.post("/v2/submit", json={"create_websocket_queue": True,
                                            "tasks": [[fn, ep, payload(1)]]})
    assert answer.status_code == 200, answer.text
    assert streams.opened == [(alice.user_id, answer.json()["task_group_id"])]


def test_the_amqp_route_hands_out_the_caller_s_access(
        alice: Caller, streams: ListedStreams) -> None:
    answer = alice.get("/v2/get_amqp_result_connection_url")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "connection_url": f"amqp://farcall-user-{alice.user_id}:pw@127.0.0.1:5672/v",
        "queue_prefix": f"farcall.results.{alice.user_id}.",
    }
    assert alice.client.get("/v2/get_amqp_result_connection_url").status_code == 401


def test_an_unreachable_broker_is_a_503_and_stores_nothing(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams, ctx: Any) -> None:
    ep, fn = ep_fn
    streams.down = True
    body = assert_error(alice.get("/v2/get_amqp_result_connection_url"), 503,
                        "BROKER_UNAVAILABLE")
    assert "away" not in body["message"]  # the broker's own words stay in the log
    group = str(uuid.uuid4())  # a new group: the legacy route makes it
    answer = alice.post("/v2/submit", json={
        "tasks": [[fn, ep, payload(1)]], "create_websocket_queue": True,
        "task_group_id": group})
    assert_error(answer, 503, "BROKER_UNAVAILABLE")
    assert ctx.store.task_group_tasks(group, alice.user_id) == []


def test_results_wait_in_the_outbox_while_the_broker_is_away(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams,
        caplog: pytest.LogCaptureFixture) -> None:
    ep, fn = ep_fn
    ids = submit(alice, ep, fn, 3, create_queue=True)["tasks"][fn]
    alice.claim(ep)
    streams.down = True
    with caplog.at_level(logging.WARNING, logger="farcall_service.publishing"):
        for task_id in ids:
            alice.report(ep, [{"task_id": task_id, "status": "success", "result": "r"}])
        time.sleep(2.5)  # kicks and sweeps that fail
    warnings = [r for r in caplog.records if r.name == "farcall_service.publishing"]
    assert len(warnings) == 1, warnings  # once per outage
    assert streams.published == []
    streams.down = False  # the sweep publishes what was left
    assert sorted(eventually(streams.published_ids)) == sorted(ids)


def test_a_deleted_endpoint_s_failed_tasks_are_published(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams) -> None:
    ep, fn = ep_fn
    ids = submit(alice, ep, fn, 2, create_queue=True)["tasks"][fn]
    assert alice.delete(f"/v2/endpoints/{ep}").status_code == 200
    assert sorted(eventually(streams.published_ids)) == sorted(ids)
    assert {task.status for task in streams.published} == {"failed"}


def test_a_removed_user_s_failed_tasks_are_published_by_the_sweep(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams, ctx: Any) -> None:
    """Removal is an administrator's command beside the service: the sweep finds them."""
    ep, fn = ep_fn
    ids = submit(alice, ep, fn, 2, create_queue=True)["tasks"][fn]
    admin.remove_user(ctx.store, "alice", force=True)
    assert sorted(eventually(streams.published_ids)) == sorted(ids)


def test_reloading_a_streamed_group_opens_its_queue_again(
        alice: Caller, ep_fn: tuple[str, str], streams: ListedStreams) -> None:
    ep, fn = ep_fn
    group = submit(alice, ep, fn, create_queue=True)["task_group_id"]
    plain = submit(alice, ep, fn)["task_group_id"]
    streams.opened.clear()
    answer = alice.get(f"/v2/taskgroup/{group}")
    assert answer.status_code == 200 and answer.json()["create_websockets_queue"] is True
    assert streams.opened == [(alice.user_id, group)]
    answer = alice.get(f"/v2/taskgroup/{plain}")
    assert answer.status_code == 200 and answer.json()["create_websockets_queue"] is False
    assert streams.opened == [(alice.user_id, group)]


def test_another_user_s_group_cannot_be_streamed(
        alice: Caller, ep_fn: tuple[str, str], make_caller: Callable[..., Caller],
        streams: ListedStreams) -> None:
    ep, fn = ep_fn
    group = submit(alice, ep, fn)["task_group_id"]
    bob = make_caller("bob")
    ep2, fn2 = bob.register_endpoint(), bob.register_function()
    answer = bob.post(f"/v3/endpoints/{ep2}/submit", json={
        "tasks": {fn2: [payload(1)]}, "create_queue": True, "task_group_id": group})
    assert_error(answer, 404, "TASK_GROUP_NOT_FOUND")  # v3 names only one's own groups
    answer = bob.post("/v2/submit", json={
        "tasks": [[fn2, ep2, payload(1)]], "create_websocket_queue": True,
        "task_group_id": group})
    assert_error(answer, 409, "TASK_GROUP_TAKEN")
    assert streams.opened == []


def test_without_streams_create_queue_is_ignored_and_the_amqp_route_is_501(
        settings: Settings) -> None:
    from farcall_testkit.service import Caller as Plain

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        ctx = client.app.state.farcall  # type: ignore[attr-defined]
        user = admin.add_user(ctx.store, "carol")
        carol = Plain(client, user.id, admin.create_token(ctx.store, "carol"))
        ep, fn = carol.register_endpoint(), carol.register_function()
        submit(carol, ep, fn, create_queue=True)
        body = assert_error(carol.get("/v2/get_amqp_result_connection_url"), 501)
        assert "--broker amqp://" in body["message"]


def test_removing_a_user_ends_their_result_streams(
        settings: Settings, plugins: FarcallPluginManager, streams: ListedStreams) -> None:
    from farcall_service.storage import open_store

    store = open_store(settings.database_url)
    try:
        user = admin.add_user(store, "dave")
        admin.create_client(store, "dave", "robot")
        who = admin.identities(store, user)
        assert len(who) == 2 and who[0] == user.id
        admin.remove_user(store, "dave", force=True)
        listed = replace(settings, broker="listed")
        assert admin.forget_result_streams(listed, store, who, plugins)
        assert streams.forgotten == who
        streams.down = True
        with pytest.raises(admin.AdminError, match="could not be ended"):
            admin.forget_result_streams(listed, store, who, plugins)
        assert not admin.forget_result_streams(settings, store, who, plugins)  # local
    finally:
        store.close()
