"""What a process remembers, when another process may change it (``single_process``
False): the answers that must come from the database do."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall_service import admin, dispatching
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


class _Forgetful(dict):  # type: ignore[type-arg]
    """A ``submissions_in_flight`` that keeps nothing: this process then records
    reports as another process would, knowing nothing of the submission."""

    def __setitem__(self, _key: object, _value: object) -> None:
        pass


def test_a_result_reported_through_another_process_before_its_submission_commits_waits(
        alice: Caller, ep_fn: tuple[str, str], ctx: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A waiting claim is handed its task before the submission commits; the
    endpoint's report of it, through a process that cannot see the task yet, is
    recorded once the commit is through, not refused (which would cost a requeue and
    a second run)."""
    import threading

    from farcall_testkit.service import hold_next_call

    ep, fn = ep_fn
    lc = ctx.lifecycle  # type: ignore[attr-defined]
    monkeypatch.setattr(lc, "submissions_in_flight", _Forgetful())
    alice.claim(ep)  # enter session s1
    got: list[list[dict[str, object]]] = []
    poller = threading.Thread(target=lambda: got.append(alice.claim(ep, wait=60)))
    poller.start()
    deadline = time.monotonic() + 20
    while not lc.broker.tasks.offering(ep):
        assert time.monotonic() < deadline, "the claim never waited"
        time.sleep(0.01)
    begun, release = hold_next_call(monkeypatch, ctx.store, "submit")  # type: ignore[attr-defined]
    submitting = threading.Thread(target=lambda: alice.submit(ep, fn, 1))
    submitting.start()
    assert begun.wait(20)
    poller.join(20)
    [handed] = got  # handed over before the commit
    task_id = str(handed[0]["task_id"])
    assert ctx.store.get_task(task_id) is None  # type: ignore[attr-defined]
    answers: list[dict[str, object]] = []
    reporter = threading.Thread(target=lambda: answers.append(alice.report(
        ep, [{"task_id": task_id, "status": "success", "result": "11\n9"}])))
    reporter.start()
    time.sleep(0.3)
    assert not answers, "the report was answered before its task was committed"
    release.set()
    submitting.join(20)
    reporter.join(20)
    [answer] = answers
    assert answer == {"acknowledged": [task_id], "rejected": []}
    assert ctx.store.get_task(task_id).status == "success"  # type: ignore[attr-defined]


def test_a_result_for_an_unknown_old_task_is_refused_at_once(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    """Only ids young enough to be on their way to the database are waited for."""
    ep, _fn = ep_fn
    alice.claim(ep)
    made_long_ago = str(uuid.UUID(int=(1 << 80) | 0x7 << 76 | 0b10 << 62))
    started = time.monotonic()
    answer = alice.report(ep, [{"task_id": made_long_ago, "status": "success", "result": "x"}])
    assert answer["rejected"] == [made_long_ago]
    assert time.monotonic() - started < dispatching.COMMIT_WINDOW



def test_a_result_from_the_shared_results_queue_is_told_only_once_recorded(
        alice: Caller, ep_fn: tuple[str, str], ctx: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every process consumes the AMQP results queue, so a second report of a task (a
    re-run's) may reach another process and commit first: a result from that queue is
    told to the waits only once it is recorded, and they hear what the database kept."""
    from farcall_service.forwarding import AMQP_SESSION
    from farcall_service.storage.interface import Outcome, Report
    from farcall_testkit.service import hold_next_call

    ep, fn = ep_fn
    lc, store = ctx.lifecycle, ctx.store  # type: ignore[attr-defined]
    (task_id,) = alice.submit(ep, fn, 1).json()["tasks"][fn]  # remembered here
    store.claim(ep, AMQP_SESSION, 1, time.time())  # forwarded to the endpoint's queue
    begun, release = hold_next_call(monkeypatch, store, "record_reports")
    mine = [Outcome(task_id, "success", "11\n1")]
    reporting = alice.client.portal.start_task_soon(  # type: ignore[attr-defined]
        lc.report, ep, AMQP_SESSION, mine, True)
    assert begun.wait(20)
    store.record_reports([Report(ep, AMQP_SESSION, [Outcome(task_id, "success", "11\n2")],
                                 time.time())])  # another process's, first
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task_id], "timeout": 0.3})
    assert waited.json()["results"].get(task_id, {}).get("result") in (None, "11\n2")
    release.set()
    reporting.result(20)  # acknowledged: the task had ended
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task_id], "timeout": 5})
    assert waited.json()["results"][task_id]["result"] == "11\n2"
    assert alice.get(f"/v2/tasks/{task_id}").json()["result"] == "11\n2"
