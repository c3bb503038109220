"""Free-form JSON has depth and size limits where it arrives, and whatever is stored
is read back: nested JSON can no longer turn a function's, an endpoint's or a task's
reads into 500s for everyone who may see them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from farcall_service import admin
from farcall_service import settings as settings_module
from farcall_service.app import create_app
from farcall_service.context import ServiceContext
from farcall_service.json_limits import JsonLimits
from farcall_service.settings import Settings
from farcall_service.storage import schema
from farcall_service.storage.interface import Function, Outcome, Report
from farcall_service.storage.json_columns import NOTE, READ_DEPTH, loads_stored
from farcall_testkit.service import Caller, assert_error, payload
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def depth_of(value: Any) -> int:
    depth = 0
    while isinstance(value, dict) and value:
        value = next(iter(value.values()))
        depth += 1
    return depth + (1 if isinstance(value, dict) else 0)


def raw_deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- where JSON arrives ----------------------------------------------------------------


@pytest.mark.parametrize("depth", [40, 300, 900])
def test_deep_function_and_endpoint_metadata_is_refused(alice: Caller, depth: int) -> None:
    deep = nested(depth)
    answer = alice.post("/v3/functions", json={
        "function_name": "f", "function_code": "def f():\n    return 1\n", "serialized": False,
        "meta": deep})
    body = assert_error(answer, 400, "JSON_TOO_DEEP")
    assert "meta" in body["message"] and "32" in body["message"]
    answer = alice.post("/v3/endpoints", json={"endpoint_name": "ep", "metadata": deep})
    assert "metadata" in assert_error(answer, 400, "JSON_TOO_DEEP")["message"]
    ep = alice.register_endpoint()
    assert_error(alice.put(f"/v3/endpoints/{ep}", json={"metadata": deep}), 400, "JSON_TOO_DEEP")
    # As deep as allowed is stored and read back whole.
    fn = alice.register_function(meta=nested(32))
    assert depth_of(alice.get(f"/v2/functions/{fn}").json()["metadata"]) == 32


def test_deep_submission_options_are_refused(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    for field in ("resource_specification", "user_endpoint_config"):
        answer = alice.post(f"/v3/endpoints/{ep}/submit",
                            json={"tasks": {fn: [payload(1)]}, field: nested(300)})
        assert field in assert_error(answer, 400, "JSON_TOO_DEEP")["message"]
    assert alice.get(f"/v2/endpoints/{ep}/status").json()["details"]["outstanding_tasks"] == 0


@pytest.mark.parametrize("depth", [990, 5000, 100_000])
def test_json_too_deep_to_parse_is_400(alice: Caller, ep_fn: tuple[str, str],
                                       depth: int) -> None:
    ep, fn = ep_fn
    deep = raw_deep(depth)
    for route, body in [
        ("/v3/functions", '{"function_name": "f", "function_code": "x", "meta": ' + deep + "}"),
        (f"/v3/endpoints/{ep}/submit", '{"tasks": {"' + fn + '": ' + deep + "}}"),
        ("/v2/batch_status", deep),
        (f"/farcall/v1/endpoints/{ep}/results", deep),
    ]:
        answer = alice.post(route, content=body.encode(), headers=JSON)
        assert_error(answer, 400, "JSON_TOO_DEEP")


@pytest.fixture
def small_limits(settings: Settings) -> Iterator[tuple[TestClient, Caller, ServiceContext]]:
    app = create_app(replace(settings, max_field_bytes=2000, max_json_depth=4,
                             max_body_bytes=200_000))
    ctx: ServiceContext = app.state.farcall
    user = admin.add_user(ctx.store, "small")
    token = admin.create_token(ctx.store, "small")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, Caller(client, user.id, token), ctx


def test_limits_come_from_the_settings(small_limits: tuple[TestClient, Caller, Any]) -> None:
    _client, caller, _ctx = small_limits
    assert_error(caller.post("/v3/endpoints", json={"endpoint_name": "e", "metadata": nested(5)}),
                 400, "JSON_TOO_DEEP")
    caller.register_endpoint(metadata=nested(4))
    big = {"text": "x" * 3000}
    body = assert_error(caller.post("/v3/endpoints", json={"endpoint_name": "e", "metadata": big}),
                        413, "FIELD_TOO_LARGE")
    assert "metadata" in body["message"] and "2000" in body["message"]
    answer = caller.post("/v3/functions", json={
        "function_name": "f", "function_code": "def f():\n    return 1\n", "serialized": False,
        "description": "é" * 1500})  # 3000 bytes in UTF-8
    assert "description" in assert_error(answer, 413, "FIELD_TOO_LARGE")["message"]
    answer = caller.post("/farcall/v1/containers", json={
        "name": "c", "type": "venv", "location": "/opt/v", "description": "d" * 3000})
    assert_error(answer, 413, "FIELD_TOO_LARGE")
    many = [str(uuid.uuid4()) for _ in range(100)]
    answer = caller.post("/v3/endpoints", json={"endpoint_name": "e", "allowed_functions": many})
    assert "allowed_functions" in assert_error(answer, 413, "FIELD_TOO_LARGE")["message"]


def test_options_stored_with_every_task_must_fit_the_body_limit(
        small_limits: tuple[TestClient, Caller, Any]) -> None:
    """1.5 KB of options on 200 tasks would store 300 KB from a body of 30 KB."""
    _client, caller, _ctx = small_limits
    ep, fn = caller.register_endpoint(), caller.register_function()
    options = {"resource_specification": {"k": "v" * 1500}}
    answer = caller.post(f"/v3/endpoints/{ep}/submit",
                         json={"tasks": {fn: [payload(1)] * 200}, **options})
    assert "200 tasks" in assert_error(answer, 413, "FIELD_TOO_LARGE")["message"]
    answer = caller.post(f"/v3/endpoints/{ep}/submit",
                         json={"tasks": {fn: [payload(1)] * 20}, **options})
    assert answer.status_code == 200, answer.text


def test_settings_bound_the_depth(tmp_path: Any) -> None:
    assert settings_module.JSON_DEPTH_CEILING == READ_DEPTH
    with pytest.raises(ValueError, match="max_json_depth"):
        Settings(home=tmp_path, max_json_depth=READ_DEPTH + 1)
    with pytest.raises(ValueError, match="max_field_bytes"):
        Settings(home=tmp_path, max_field_bytes=0)
    env = {"FARCALL_HOME": str(tmp_path), "FARCALL_SERVICE_MAX_JSON_DEPTH": "8",
           "FARCALL_SERVICE_MAX_FIELD_BYTES": "4096"}
    loaded = Settings.from_env(env)
    assert (loaded.max_json_depth, loaded.max_field_bytes) == (8, 4096)


# -- reports: one bad result does not fail the report -----------------------------------


def _claim(caller: Caller, ep: str, count: int) -> list[str]:
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/claim",
                         json={"session": "s1", "max_tasks": count})
    assert answer.status_code == 200, answer.text
    return [task["task_id"] for task in answer.json()["tasks"]]


def test_deep_details_in_a_report_keep_the_result(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    alice.submit(ep, fn, 1, count=3)
    deep, nan, fine = _claim(alice, ep, 3)
    raw = json.dumps({"session": "s1", "results": [
        {"task_id": deep, "status": "success", "result": "11\n1", "details": nested(300)},
        {"task_id": nan, "status": "success", "result": "11\n2", "details": {"t": "NAN_HERE"}},
        {"task_id": fine, "status": "success", "result": "11\n3", "details": {"ok": 1}},
    ]}).replace('"NAN_HERE"', "NaN")
    answer = alice.post(f"/farcall/v1/endpoints/{ep}/results", content=raw, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["acknowledged"]) == sorted([deep, nan, fine])
    for task_id, result in [(deep, "11\n1"), (nan, "11\n2")]:
        doc = alice.get(f"/v2/tasks/{task_id}").json()
        assert doc["status"] == "success" and doc["result"] == result
        assert list(doc["details"]) == [NOTE], doc["details"]
    assert "deeper than 32" in alice.get(f"/v2/tasks/{deep}").json()["details"][NOTE]
    assert alice.get(f"/v2/tasks/{fine}").json()["details"] == {"ok": 1}
    batch = alice.post("/v2/batch_status", json={"task_ids": [deep, nan, fine]})
    assert batch.status_code == 200 and len(batch.json()["results"]) == 3


def test_oversized_exception_data_is_dropped_with_a_note(
        small_limits: tuple[TestClient, Caller, Any]) -> None:
    _client, caller, _ctx = small_limits
    ep, fn = caller.register_endpoint(), caller.register_function()
    caller.submit(ep, fn, 1)
    [task_id] = _claim(caller, ep, 1)
    answer = caller.post(f"/farcall/v1/endpoints/{ep}/results", json={"session": "s1", "results": [
        {"task_id": task_id, "status": "failed", "exception": "Traceback: boom",
         "exception_data": "00\n" + "A" * 5000, "details": {"host": "h"}}]})
    assert answer.json()["acknowledged"] == [task_id], answer.text
    doc = caller.get(f"/v2/tasks/{task_id}").json()
    assert doc["exception"] == "Traceback: boom" and "exception_data" not in doc
    assert doc["details"]["host"] == "h"
    assert "exception_data is larger than 2000 bytes" in doc["details"][NOTE]


# -- the channels answer as HTTP does, and stay open ------------------------------------


@contextmanager
def _channel(caller: Caller, path: str) -> Iterator[Any]:
    with caller.client.websocket_connect(path, headers=caller.headers) as ws:
        assert json.loads(ws.receive_text())["ok"] is True
        yield ws


def _ask(ws: Any, text: str) -> dict[str, Any]:
    ws.send_text(text)
    return json.loads(ws.receive_text())


def test_sdk_channel_refuses_deep_json_and_keeps_answering(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    with _channel(alice, "/farcall/v1/channel") as ws:
        answer = _ask(ws, raw_deep(100_000))
        http = alice.post("/v2/batch_status", content=raw_deep(100_000).encode(), headers=JSON)
        assert answer["error"]["status"] == http.status_code == 400
        assert answer["error"]["code"] == http.json()["code"] == "JSON_TOO_DEEP"
        submit = {"op": "submit", "endpoint_id": ep, "tasks": {fn: [payload(2)]}}
        deep = _ask(ws, json.dumps({**submit, "resource_specification": nested(300)}))
        assert deep["error"]["code"] == "JSON_TOO_DEEP", deep
        assert "resource_specification" in deep["error"]["message"]
        done = _ask(ws, json.dumps(submit))
        assert done["tasks"][fn], done  # still open, still answering


def test_endpoint_channel_refuses_deep_json_and_keeps_answering(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    alice.submit(ep, fn, 1)
    with _channel(alice, f"/farcall/v1/endpoints/{ep}/channel") as ws:
        assert _ask(ws, raw_deep(100_000))["error"]["code"] == "JSON_TOO_DEEP"
        [task] = _ask(ws, json.dumps({"op": "claim", "session": "s1"}))["tasks"]
        report = {"op": "results", "session": "s1", "results": [
            {"task_id": task["task_id"], "status": "success", "result": "11\n1",
             "details": nested(500)}]}
        assert _ask(ws, json.dumps(report))["acknowledged"] == [task["task_id"]]
    assert alice.get(f"/v2/tasks/{task['task_id']}").json()["details"].keys() == {NOTE}


# -- rows stored before the limits are read back ---------------------------------------


def test_over_deep_rows_stored_before_are_read_back(
        alice: Caller, make_caller: Callable[..., Caller], ctx: ServiceContext) -> None:
    """Rows as an older service stored them: 300 levels (the answers' encoder gives up
    at about 255), and one too deep for Python's parser. Every read answers 200."""
    bob = make_caller("bob")
    store = ctx.store
    fn_id = str(uuid.uuid4())
    store.create_function(Function(id=fn_id, owner_id=alice.user_id, name="old", code="00\nx",
                                   metadata=nested(300), public=True))
    ep = alice.register_endpoint(public=True)
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.update(schema.endpoints).where(schema.endpoints.c.id == ep)
                     .values(metadata=nested(300)))
    for caller in (alice, bob):
        answer = caller.get(f"/v2/functions/{fn_id}")
        assert answer.status_code == 200, answer.text
        assert depth_of(answer.json()["metadata"]) == READ_DEPTH
        answer = caller.get(f"/v2/endpoints/{ep}")
        assert answer.status_code == 200, answer.text

    # A task with deep options, claimed; its result with deep details.
    fn = alice.register_function()
    [task_id] = alice.submit(ep, fn, 1).json()["tasks"][fn]
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.update(schema.tasks).where(schema.tasks.c.id == task_id)
                     .values(options={"resource_specification": nested(300)}))
    claim = alice.post(f"/farcall/v1/endpoints/{ep}/claim", json={"session": "s1"})
    assert claim.status_code == 200, claim.text
    # the options column holds it, one level up
    assert depth_of(claim.json()["tasks"][0]["resource_specification"]) == READ_DEPTH - 1
    store.record_reports([Report(ep, "s1", [Outcome(task_id, "success", "11\n1",
                                                    details=nested(300))], 1.0)])
    ctx.lifecycle.memory.forget([task_id])  # read from the database, as after a restart
    assert alice.get(f"/v2/tasks/{task_id}").status_code == 200
    batch = alice.post("/v2/batch_status", json={"task_ids": [task_id]})
    assert batch.status_code == 200, batch.text
    assert depth_of(batch.json()["results"][task_id]["details"]) == READ_DEPTH
    wait = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [task_id], "timeout": 0})
    assert wait.status_code == 200, wait.text

    # Too deep for Python's parser itself (PostgreSQL refuses to store it): a note.
    if store.engine.dialect.name != "sqlite":  # type: ignore[attr-defined]
        return
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(sa.text("UPDATE functions SET metadata = :m WHERE id = :i"),
                     {"m": raw_deep(100_000), "i": fn_id})
    answer = bob.get(f"/v2/functions/{fn_id}")
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["metadata"]) == [NOTE]


def test_loads_stored() -> None:
    assert loads_stored('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    cut = loads_stored(json.dumps(nested(READ_DEPTH + 5)))
    assert depth_of(cut) == READ_DEPTH
    assert loads_stored(raw_deep(100_000)).keys() == {NOTE}


def test_json_limits_walk_iteratively() -> None:
    limits = JsonLimits(max_depth=32, max_bytes=1000)
    deep: list[Any] = []
    for _ in range(100_000):  # deeper than any recursion could follow
        deep = [deep]
    problem = limits.problem("x", deep)
    assert problem is not None and problem.code == "JSON_TOO_DEEP"
    problem = limits.problem("x", {"k": ["v" * 600, "w" * 600]})
    assert problem is not None and problem.status == 413
    assert limits.measure("x", {"a": [1, 2.5, "é"]}) >= len(json.dumps({"a": [1, 2.5, "é"]},
                                                                         ensure_ascii=False)) - 2
