"""The channels in msgpack: binary requests get binary answers and pushes, text stays JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
from farcall_testkit.service import CHANNEL_HELLO, Caller, payload, sdk_channel


@contextmanager
def open_channel(caller: Caller, ep: str) -> Iterator[Any]:
    """An endpoint channel past its greeting, which offers msgpack."""
    with caller.client.websocket_connect(
        f"/farcall/v1/endpoints/{ep}/channel", headers=caller.headers
    ) as ws:
        hello = json.loads(ws.receive_text())
        assert hello == CHANNEL_HELLO and "msgpack" in hello["frames"]
        yield ws


def claim_and_report(caller: Caller, ep: str, task_id: str, result: str) -> None:
    """The endpoint's side, in JSON text as an older endpoint sends it."""
    with open_channel(caller, ep) as ws:
        ws.send_text(json.dumps({"op": "claim", "session": "s1", "max_tasks": 1}))
        assert [t["task_id"] for t in json.loads(ws.receive_text())["tasks"]] == [task_id]
        ws.send_text(
            json.dumps(
                {
                    "op": "results",
                    "session": "s1",
                    "results": [{"task_id": task_id, "status": "success", "result": result}],
                }
            )
        )
        assert json.loads(ws.receive_text())["acknowledged"] == [task_id]


def ask_binary(ws: Any, message: Any) -> Any:
    ws.send_bytes(message if isinstance(message, bytes) else msgpack.packb(message))
    frame = ws.receive()
    assert "bytes" in frame and frame.get("text") is None, frame  # answered in kind
    return msgpack.unpackb(frame["bytes"])


def test_msgpack_requests_are_answered_and_pushed_in_msgpack(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, fn = ep_fn
    with sdk_channel(alice) as ws:
        answer = ask_binary(
            ws, {"op": "submit", "endpoint_id": ep, "follow": True, "tasks": {fn: [payload(3)]}}
        )
        (task_id,) = answer["tasks"][fn]
        claim_and_report(alice, ep, task_id, "11\n9")
        push = ws.receive()  # the followed result, in the form of the last request
        assert push.get("text") is None
        pushed = msgpack.unpackb(push["bytes"])
        assert pushed["push"] == "results" and pushed["results"][task_id]["result"] == "11\n9"
        # A text request on the same channel is answered in JSON.
        ws.send_text(json.dumps({"op": "wait", "task_ids": [task_id], "timeout": 0}))
        assert json.loads(ws.receive_text())["results"][task_id]["result"] == "11\n9"


def test_an_endpoint_claims_and_reports_in_msgpack(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task_id = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    with open_channel(alice, ep) as ws:
        (task,) = ask_binary(ws, {"op": "claim", "session": "s1", "max_tasks": 5})["tasks"]
        assert task["task_id"] == task_id
        answer = ask_binary(
            ws,
            {
                "op": "results",
                "session": "s1",
                "results": [{"task_id": task_id, "status": "success", "result": "mp\nCQ=="}],
            },
        )
        assert answer == {"acknowledged": [task_id], "rejected": []}
    assert alice.get(f"/v2/tasks/{task_id}").json()["result"] == "mp\nCQ=="


def test_bad_msgpack_gets_clear_errors_and_the_channel_stays_open(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    ep, _fn = ep_fn
    with open_channel(alice, ep) as ws:
        cases = [
            (b"\x92\xc1", 400, "MALFORMED_JSON", "not valid msgpack"),
            (b"\x91" * 100_000 + b"\xc0", 400, None, None),  # deeper than the reader goes
            (
                msgpack.packb({"op": "claim", "session": msgpack.ExtType(5, b"x")}),
                400,
                "MALFORMED_JSON",
                None,
            ),
            (b"\xdd\xff\xff\xff\xff", 400, "MALFORMED_JSON", None),  # 4 Gi items declared
            (b"\x81\xa2op\xa5claim\xc0", 400, "MALFORMED_JSON", None),  # data after it
            (msgpack.packb([1, 2]), 400, "UNKNOWN_OPERATION", None),
            (msgpack.packb({"op": "claim", "max_tasks": 10}), 422, "INVALID_REQUEST", None),
        ]
        for message, status, code, text in cases:
            error = ask_binary(ws, message)["error"]
            assert error["status"] == status, (message[:20], error)
            assert code is None or error["code"] == code, (message[:20], error)
            assert text is None or text in error["message"]
        assert ask_binary(ws, {"op": "claim", "session": "s1"}) == {"tasks": []}
