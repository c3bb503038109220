"""The endpoint channel: claims and results over one WebSocket, as over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from farcall_service.storage import schema
from farcall_service.testing import Caller
from starlette.websockets import WebSocketDisconnect


@contextmanager
def channel(caller: Caller, ep: str, token: str | None = None) -> Iterator[Any]:
    headers = {"Authorization": f"Bearer {token or caller.token}"}
    with caller.client.websocket_connect(f"/farcall/v1/endpoints/{ep}/channel",
                                         headers=headers) as ws:
        yield ws


def ask(ws: Any, message: Any) -> dict[str, Any]:
    ws.send_text(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.receive_text())


@pytest.fixture
def ep_fn(alice: Caller) -> tuple[str, str]:
    return alice.register_endpoint(), alice.register_function()


def test_claims_and_results_travel_over_the_channel(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task_id = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    with channel(alice, ep) as ws:
        assert json.loads(ws.receive_text()) == {"ok": True}
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
    with channel(alice, ep) as ws:
        ws.receive_text()
        cases = [
            ("{not json", 400, "MALFORMED_JSON"),
            (json.dumps([1, 2]), 400, "UNKNOWN_OPERATION"),
            (json.dumps({"op": "delete", "session": "s1"}), 400, "UNKNOWN_OPERATION"),
            (json.dumps({"op": "claim", "max_tasks": 10}), 422, "INVALID_REQUEST"),
            (json.dumps({"op": "claim", "session": "s1", "max_tasks": 0}), 422,
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
    with channel(alice, ep) as ws:
        ws.receive_text()
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
    with channel(alice, ep) as ws:
        ws.receive_text()
        assert ask(ws, {"op": "claim", "session": "s1"}) == {"tasks": []}
        with store.engine.begin() as conn:
            conn.execute(sa.delete(schema.tokens))
        assert ask(ws, {"op": "claim", "session": "s1"})["error"]["status"] == 401
