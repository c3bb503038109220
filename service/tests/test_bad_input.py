"""Bad input of every kind gets a 4xx ``{"code", "message"}``, never a 500 or a traceback."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
from farcall.serialize import pack_buffers
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.settings import Settings
from farcall_testkit.service import Caller, assert_error, payload
from fastapi.testclient import TestClient


def _limited_client(settings: Settings, **changes: object) -> tuple[TestClient, str]:
    app = create_app(replace(settings, **changes))
    store = app.state.farcall.store
    admin.add_user(store, "limited")
    return TestClient(app, raise_server_exceptions=False), admin.create_token(store, "limited")


def test_oversize_bodies_are_413(settings: Settings) -> None:
    client, token = _limited_client(settings, max_body_bytes=2000)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"function_name": "f", "function_code": "x" * 5000, "serialized": False}
    with client:
        assert_error(client.post("/v3/functions", json=body, headers=headers), 413,
                     "REQUEST_TOO_LARGE")

        def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(10):
                yield b"x" * 500

        answer = client.post("/v3/functions", content=chunks(),
                             headers={**headers, "Content-Type": "application/json"})
        assert_error(answer, 413, "REQUEST_TOO_LARGE")
        small = {"function_name": "f", "function_code": "x", "serialized": False}
        assert client.post("/v3/functions", json=small, headers=headers).status_code == 200


def test_rate_limit_is_429_with_retry_after(settings: Settings) -> None:
    client, token = _limited_client(settings, rate_limit=5, rate_window=60.0)
    headers = {"Authorization": f"Bearer {token}"}
    with client:
        for _ in range(5):
            assert client.get("/v2/version", headers=headers).status_code == 200
        answer = client.get("/v2/version", headers=headers)
        assert_error(answer, 429, "RATE_LIMITED")
        assert int(answer.headers["Retry-After"]) >= 1


def test_malformed_json(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, _fn = ep_fn
    for route in ("/v3/functions", f"/v3/endpoints/{ep}/submit", "/v2/batch_status",
                  f"/farcall/v1/endpoints/{ep}/claim"):
        answer = alice.post(route, content=b'{"function_name": ',
                            headers={"Content-Type": "application/json"})
        assert_error(answer, 400, "MALFORMED_JSON")


@pytest.mark.parametrize(
    "body",
    [
        {"function_name": 5, "function_code": "x"},
        {"function_name": "f"},
        {"function_name": "f", "function_code": ["x"]},
        {"function_name": "f", "function_code": "x", "public": "maybe"},
        {"function_name": "f", "function_code": "x", "group": "not-a-uuid"},
        {"function_name": "", "function_code": "x", "serialized": False},
        {"function_name": "f", "function_code": "bad \ud800 text", "serialized": False},
        [],
        "text",
    ],
)
def test_wrong_types_are_422(alice: Caller, body: object) -> None:
    answer = alice.post("/v3/functions", content=json.dumps(body),
                        headers={"Content-Type": "application/json"})
    assert_error(answer, 422, "INVALID_REQUEST")


@pytest.mark.parametrize(
    "route",
    ["/v2/functions/nope", "/v2/tasks/1234", "/v2/endpoints/x/status", "/v2/taskgroup/abc",
     "/v3/endpoints/zz/allowed_functions"],
)
def test_non_uuid_ids_in_paths_are_400(alice: Caller, route: str) -> None:
    assert_error(alice.get(route), 400, "INVALID_ID")


def test_non_uuid_ids_in_bodies(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, _fn = ep_fn
    answer = alice.post(f"/v3/endpoints/{ep}/submit", json={"tasks": {"nope": [payload(1)]}})
    assert_error(answer, 400, "INVALID_ID")
    assert_error(alice.post("/v2/batch_status", json={"task_ids": ["nope"]}), 422)
    assert_error(alice.post("/v2/submit", json={"tasks": [["a", "b", "c"]]}), 422)


def test_unknown_ids_are_404(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    unknown = str(uuid.uuid4())
    assert_error(alice.get(f"/v2/functions/{unknown}"), 404, "FUNCTION_NOT_FOUND")
    assert_error(alice.get(f"/v2/tasks/{unknown}"), 404, "TASK_NOT_FOUND")
    assert_error(alice.get(f"/v2/endpoints/{unknown}"), 404, "ENDPOINT_NOT_FOUND")
    assert_error(alice.submit(unknown, fn, 1), 404, "ENDPOINT_NOT_FOUND")
    assert_error(alice.submit(ep, unknown, 1), 404, "FUNCTION_NOT_FOUND")
    assert_error(alice.post("/v2/submit", json={"tasks": [[unknown, ep, payload(1)]]}), 404)


@pytest.mark.parametrize(
    "code",
    [
        "hello",                       # not packed at all
        "5\nab",                       # truncated
        "-1\n",                        # negative length
        pack_buffers(["01\nabc", "01\ndef"]),  # two buffers
        pack_buffers(["abc"]),         # no strategy header
        "",                            # nothing
    ],
)
def test_bad_function_code_is_400(alice: Caller, code: str) -> None:
    body = {"function_name": "f", "function_code": code, "serialized": True}
    assert_error(alice.post("/v3/functions", json=body), 400, "INVALID_FUNCTION_CODE")


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "9\n00\nabc",
        pack_buffers(["00\nabc"]),
        pack_buffers(["00\na", "00\nb", "00\nc"]),
        pack_buffers(["00\na", "b"]),
    ],
)
def test_bad_task_payloads_are_400(alice: Caller, ep_fn: tuple[str, str], bad: str) -> None:
    ep, fn = ep_fn
    answer = alice.post(f"/v3/endpoints/{ep}/submit", json={"tasks": {fn: [payload(1), bad]}})
    assert_error(answer, 400, "INVALID_PAYLOAD")
    legacy = alice.post("/v2/submit", json={"tasks": [[fn, ep, bad]]})
    assert_error(legacy, 400, "INVALID_PAYLOAD")
    # All or nothing: the good payload in the same request was not queued either.
    assert alice.get(f"/v2/endpoints/{ep}/status").json()["details"]["outstanding_tasks"] == 0


def test_empty_submission_is_400(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    assert_error(alice.post(f"/v3/endpoints/{ep}/submit", json={"tasks": {}}), 400, "NO_TASKS")
    assert_error(alice.post(f"/v3/endpoints/{ep}/submit", json={"tasks": {fn: []}}), 400)


def test_bad_hand_off_messages(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, _fn = ep_fn
    base = f"/farcall/v1/endpoints/{ep}"
    assert_error(alice.post(f"{base}/claim", json={"session": ""}), 422)
    assert_error(alice.post(f"{base}/claim", json={"session": "s", "max_tasks": -1}), 422)
    assert_error(alice.post(f"{base}/claim", json={"session": "s", "wait": -1}), 422)
    no_result = {"session": "s", "results": [{"task_id": str(uuid.uuid4()), "status": "success"}]}
    assert_error(alice.post(f"{base}/results", json=no_result), 422)
    odd = {"session": "s", "results": [{"task_id": str(uuid.uuid4()), "status": "odd"}]}
    assert_error(alice.post(f"{base}/results", json=odd), 422)
    assert_error(alice.post(f"{base}/heartbeat", json={"session": "s", "total_workers": -1}), 422)


def test_framework_errors_have_the_same_shape(alice: Caller) -> None:
    assert_error(alice.get("/no/such/route"), 404, "NOT_FOUND")
    assert_error(alice.put("/v2/version"), 405, "METHOD_NOT_ALLOWED")
    assert_error(alice.get("/v2/get_amqp_result_connection_url"), 501, "NOT_IMPLEMENTED")
    assert_error(alice.get("/farcall/v1/functions/search", params={"limit": 0}), 422)


def test_unexpected_errors_are_a_generic_500(client: TestClient, alice: Caller) -> None:
    def explode() -> None:
        raise RuntimeError("secret internals")

    client.app.add_api_route("/explode", explode)  # type: ignore[attr-defined]
    body = assert_error(alice.get("/explode"), 500, "INTERNAL_ERROR")
    assert "secret" not in body["message"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"function_name": "f", "function_code": "x", "serialized": false, "meta": {"v": NaN}}',
        '{"function_name": "f", "function_code": "x", "serialized": false,'
        ' "meta": {"v": [Infinity]}}',
        '{"function_name": "f", "function_code": "x", "serialized": false,'
        ' "meta": {"\\ud800": 1}}',
        '{"function_name": "f", "function_code": "x", "serialized": false,'
        ' "meta": {"a": {"b": "\\udfff"}}}',
    ],
)
def test_json_that_cannot_be_sent_back_is_refused(alice: Caller, raw: str) -> None:
    answer = alice.post("/v3/functions", content=raw.encode(),
                        headers={"Content-Type": "application/json"})
    assert_error(answer, 422, "INVALID_REQUEST")


def test_non_finite_submission_options_are_refused(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    raw = json.dumps({"tasks": {fn: [payload(1)]}})[:-1] + ', "resource_specification": {"n": NaN}}'
    answer = alice.post(f"/v3/endpoints/{ep}/submit", content=raw.encode(),
                        headers={"Content-Type": "application/json"})
    assert_error(answer, 422, "INVALID_REQUEST")


def test_endpoint_traffic_has_a_budget_of_its_own(settings: Settings) -> None:
    """An endpoint's hand-off calls never use up its owner's SDK budget."""
    client, token = _limited_client(settings, rate_limit=3, rate_window=60.0)
    headers = {"Authorization": f"Bearer {token}"}
    with client:
        eid = client.post("/v3/endpoints", json={"endpoint_name": "busy"}, headers=headers).json()[
            "endpoint_id"]
        for _ in range(3):
            answer = client.post(f"/farcall/v1/endpoints/{eid}/heartbeat",
                                 json={"session": "s1"}, headers=headers)
            assert answer.status_code == 200, answer.text
        refused = client.post(f"/farcall/v1/endpoints/{eid}/heartbeat", json={"session": "s1"},
                              headers=headers)
        assert refused.status_code == 429
        # The SDK side had spent one request (the registration) and has two left.
        assert client.get("/v2/version", headers=headers).status_code == 200
