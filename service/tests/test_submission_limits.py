"""The cap of tasks per submission and the per-user quotas: refused with a clear
4xx, storing nothing, on the REST routes and on the SDK's channel alike."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from farcall_service import admin
from farcall_service.settings import Settings
from farcall_testkit.service import Caller, assert_error, payload

CAP = 10
QUEUED = 15
STORED = 40_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, max_tasks_per_submission=CAP, max_queued_tasks_per_user=QUEUED,
                   max_stored_bytes_per_user=STORED)


def _submit(caller: Caller, ep: str, fn: str, count: int, size: int = 0) -> Any:
    body = {"tasks": {fn: [payload("x" * size)] * count}}
    return caller.post(f"/v3/endpoints/{ep}/submit", json=body)


def _usage(caller: Caller) -> tuple[int, int]:
    return caller.client.app.state.farcall.store.usage(caller.user_id)  # type: ignore[no-any-return]


def _finish_all(caller: Caller, ep: str) -> None:
    """Claim and report every queued task of ``ep``, as its endpoint would."""
    while True:
        answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                             json={"session": "s1", "max_tasks": 100})
        tasks = answer.json()["tasks"]
        if not tasks:
            return
        results = [{"task_id": t["task_id"], "status": "success", "result": "r"} for t in tasks]
        assert caller.post(f"/farcall/v1/endpoints/{ep}/results",
                           json={"session": "s1", "results": results}).status_code == 200


def test_a_submission_over_the_cap_is_413_and_stores_nothing(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    error = assert_error(_submit(alice, ep, fn, CAP + 1), 413, "TOO_MANY_TASKS")
    assert f"at most {CAP} per submission" in error["message"]
    legacy = {"tasks": [[fn, ep, payload(1)]] * (CAP + 1)}
    assert_error(alice.post("/v2/submit", json=legacy), 413, "TOO_MANY_TASKS")
    assert _usage(alice) == (0, 0)
    assert alice.client.app.state.farcall.store.count_outstanding(ep) == 0
    assert _submit(alice, ep, fn, CAP).status_code == 200  # the cap itself is allowed


def test_the_channel_answers_the_cap_as_http_does(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    with alice.client.websocket_connect("/farcall/v1/channel", headers=alice.headers) as ws:
        ws.receive_text()  # the hello
        ws.send_text(json.dumps({"op": "submit", "endpoint_id": ep,
                                 "tasks": {fn: [payload(1)] * (CAP + 1)}}))
        error = json.loads(ws.receive_text())["error"]
    assert (error["status"], error["code"]) == (413, "TOO_MANY_TASKS")
    assert alice.client.app.state.farcall.store.count_outstanding(ep) == 0


def test_the_unfinished_tasks_quota_is_429_until_tasks_finish(
        alice: Caller, make_caller: Any, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    assert _submit(alice, ep, fn, CAP).status_code == 200
    refused = _submit(alice, ep, fn, QUEUED - CAP + 1)
    error = assert_error(refused, 429, "QUOTA_EXCEEDED")
    assert "unfinished tasks" in error["message"] and str(QUEUED) in error["message"]
    assert "wait for some of your tasks to finish" in error["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert _usage(alice)[0] == CAP  # nothing of the refused submission was stored
    bob = make_caller("bob")  # another user's quota is theirs
    assert _submit(bob, bob.register_endpoint(), bob.register_function(), CAP).status_code == 200
    assert _submit(alice, ep, fn, QUEUED - CAP).status_code == 200  # up to the quota
    _finish_all(alice, ep)
    assert _usage(alice)[0] == 0
    assert _submit(alice, ep, fn, CAP).status_code == 200


def test_the_stored_bytes_quota_is_413(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    assert _submit(alice, ep, fn, 1, size=STORED // 2).status_code == 200
    error = assert_error(_submit(alice, ep, fn, 1, size=STORED // 2), 413, "QUOTA_EXCEEDED")
    assert "stored bytes" in error["message"] and str(STORED) in error["message"]
    assert "max_stored_bytes_per_user" in error["message"]
    assert _usage(alice)[0] == 1
    assert "farcall server tasks prune" in error["message"]
    _finish_all(alice, ep)  # finishing frees no stored bytes: results add to them
    assert_error(_submit(alice, ep, fn, 1, size=STORED // 2), 413, "QUOTA_EXCEEDED")
    assert _submit(alice, ep, fn, 1, size=100).status_code == 200
    store = alice.client.app.state.farcall.store
    assert admin.prune_tasks(store, 0, "alice") == 1  # the ended one; not the queued one
    assert _usage(alice)[0] == 1
    assert _submit(alice, ep, fn, 1, size=STORED // 2).status_code == 200
