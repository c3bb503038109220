"""The channels: claims and results (an endpoint's), submissions and result waits (the
SDK's), each over one WebSocket and answered as over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from farcall_service.storage import schema
from farcall_testkit.service import CHANNEL_HELLO, Caller, payload, sdk_channel
from starlette.websockets import WebSocketDisconnect


@contextmanager
def channel(caller: Caller, ep: str, token: str | None = None) -> Iterator[Any]:
    headers = {"Authorization": f"Bearer {token or caller.token}"}
    with caller.client.websocket_connect(f"/farcall/v1/endpoints/{ep}/channel",
                                         headers=headers) as ws:
        yield ws


@contextmanager
def open_channel(caller: Caller, ep: str) -> Iterator[Any]:
    """An endpoint channel past its handshake."""
    with channel(caller, ep) as ws:
        assert json.loads(ws.receive_text()) == CHANNEL_HELLO
        yield ws


def ask(ws: Any, message: Any) -> dict[str, Any]:
    ws.send_text(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.receive_text())


def test_claims_and_results_travel_over_the_channel(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task_id = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    with open_channel(alice, ep) as ws:
        tasks = ask(ws, {"op": "claim", "session": "s1", "max_tasks": 10})["tasks"]
        assert [t["task_id"] for t in tasks] == [task_id]
        assert tasks[0]["function_id"] == fn
        answer = ask(ws, {"op": "results", "session": "s1", "results": [
            {"task_id": task_id, "status": "success", "result": "11\n9"}]})
        assert answer == {"acknowledged": [task_id], "rejected": []}
        again = ask(ws, {"op": "results", "session": "s1", "results": [
            {"task_id": task_id, "status": "success", "result": "11\n9"}]})
        assert again == {"acknowledged": [task_id], "rejected": []}  # recorded once
        assert ask(ws, {"op": "claim", "session": "s1"}) == {"tasks": []}
    doc = alice.get(f"/v2/tasks/{task_id}").json()
    assert doc["status"] == "success" and doc["result"] == "11\n9"


def test_bad_messages_get_clear_errors_and_the_channel_stays_open(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, _fn = ep_fn
    with open_channel(alice, ep) as ws:
        cases = [
            ("{not json", 400, "MALFORMED_JSON"),
            (json.dumps([1, 2]), 400, "UNKNOWN_OPERATION"),
            (json.dumps({"op": "delete", "session": "s1"}), 400, "UNKNOWN_OPERATION"),
            (json.dumps({"op": "claim", "max_tasks": 10}), 422, "INVALID_REQUEST"),
            (json.dumps({"op": "claim", "session": "s1", "max_tasks": -1}), 422,
             "INVALID_REQUEST"),
            (json.dumps({"op": "results", "session": "s1", "results": [{"task_id": "x"}]}),
             422, "INVALID_REQUEST"),
        ]
        for message, status, code in cases:
            error = ask(ws, message)["error"]
            assert (error["status"], error["code"]) == (status, code), message
            assert error["message"]
        assert ask(ws, {"op": "claim", "session": "s1"}) == {"tasks": []}


def test_the_handshake_checks_the_token_and_the_owner(
    alice: Caller, make_caller: Any, ep_fn: tuple[str, str]
) -> None:
    ep, _fn = ep_fn
    mallory = make_caller("mallory")
    for caller, token, status in ((alice, "not-a-valid-token", 401), (mallory, None, 404)):
        with channel(caller, ep, token) as ws:
            error = json.loads(ws.receive_text())["error"]
            assert error["status"] == status
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 1008
    with alice.client.websocket_connect(f"/farcall/v1/endpoints/{ep}/channel") as ws:
        assert json.loads(ws.receive_text())["error"]["status"] == 401  # no header at all


def test_a_locked_endpoint_is_told_when_to_come_back(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, _fn = ep_fn
    with open_channel(alice, ep) as ws:
        assert alice.post(f"/v3/endpoints/{ep}/lock").status_code == 200
        error = ask(ws, {"op": "claim", "session": "s1"})["error"]
        assert (error["status"], error["code"]) == (409, "ENDPOINT_LOCKED")
        assert error["retry_after"] >= 1


def test_a_removed_token_stops_working_on_an_open_channel(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    """Every message is authenticated again (the tests' caches expire at once)."""
    ep, _fn = ep_fn
    store = alice.client.app.state.farcall.store
    with open_channel(alice, ep) as ws:
        assert ask(ws, {"op": "claim", "session": "s1"}) == {"tasks": []}
        with store.engine.begin() as conn:
            conn.execute(sa.delete(schema.tokens))
        assert ask(ws, {"op": "claim", "session": "s1"})["error"]["status"] == 401


def test_submissions_and_waits_travel_over_the_sdk_channel(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        answer = ask(ws, {"op": "submit", "endpoint_id": ep,
                          "tasks": {fn: [payload(3), payload(4)]}})
        first, second = answer["tasks"][fn]
        assert answer["endpoint_id"] == ep and answer["task_group_id"]
        assert ask(ws, {"op": "wait", "task_ids": [first], "timeout": 0}) == {
            "response": "batch", "results": {}}
        claim_and_report(alice, ep, first, "11\n9")
        done = ask(ws, {"op": "wait", "task_ids": [first, second], "timeout": 30})["results"]
        assert list(done) == [first] and done[first]["result"] == "11\n9"
    assert alice.get(f"/v2/tasks/{second}").json()["status"] == "waiting-for-ep"


def test_the_sdk_channel_refuses_what_the_routes_refuse(
    alice: Caller, make_caller: Any, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    mallory = make_caller("mallory")
    with sdk_channel(mallory) as ws:
        error = ask(ws, {"op": "submit", "endpoint_id": ep, "tasks": {fn: [payload(1)]}})
        assert (error["error"]["status"], error["error"]["code"]) == (404, "ENDPOINT_NOT_FOUND")
    with sdk_channel(alice) as ws:
        cases = [
            ({"op": "submit", "tasks": {fn: [payload(1)]}}, 422),  # no endpoint_id
            ({"op": "submit", "endpoint_id": ep, "tasks": {fn: ["not a payload"]}}, 400),
            ({"op": "wait", "task_ids": []}, 422),
            ({"op": "claim", "session": "s1"}, 400),  # an endpoint's operation
        ]
        for message, status in cases:
            assert ask(ws, message)["error"]["status"] == status, message
    with alice.client.websocket_connect("/farcall/v1/channel") as ws:
        assert json.loads(ws.receive_text())["error"]["status"] == 401


def claim_and_report(caller: Caller, ep: str, task_id: str, result: str) -> None:
    with open_channel(caller, ep) as ws:
        tasks = ask(ws, {"op": "claim", "session": "s1", "max_tasks": 1})["tasks"]
        assert [t["task_id"] for t in tasks] == [task_id]
        ask(ws, {"op": "results", "session": "s1", "results": [
            {"task_id": task_id, "status": "success", "result": result}]})
