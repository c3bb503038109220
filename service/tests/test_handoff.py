"""The endpoint hand-off protocol: long-poll claims, sessions, results, heartbeats."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from farcall.serialize import Serializer
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.settings import Settings
from farcall_testkit.service import Caller, assert_error, payload
from fastapi.testclient import TestClient


def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_claimed_payload_is_function_then_args(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    task_id = alice.submit(ep, fn, 7).json()["tasks"][fn][0]
    tasks = alice.claim(ep)
    assert [t["task_id"] for t in tasks] == [task_id]
    assert tasks[0]["function_id"] == fn
    code, args, kwargs = Serializer().unpack_and_deserialize(tasks[0]["payload"])
    assert code(*args, **kwargs) == 49
    assert alice.get(f"/v2/tasks/{task_id}").json()["status"] == "running"
    assert alice.claim(ep) == []


def test_long_poll_returns_when_work_is_committed(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    got: list[list[dict[str, Any]]] = []
    # The service caps the wait at 5 s in these tests; without a wake-up the claim
    # would come back empty, as it does not look again after the wait.
    poller = threading.Thread(target=lambda: got.append(alice.claim(ep, wait=60)))
    poller.start()
    wait_until(lambda: alice.client.app.state.farcall.lifecycle.broker.tasks.has_waiters(ep))
    task_id = alice.submit(ep, fn, 2).json()["tasks"][fn][0]
    poller.join(30)
    assert [t["task_id"] for t in got[0]] == [task_id]


def test_a_waiting_claim_is_handed_new_tasks_directly(
    alice: Caller, ep_fn: tuple[str, str]
) -> None:
    """The submission stores up to max_tasks as claimed by the waiting session and the
    claim answers with them; the rest stay queued."""
    ep, fn = ep_fn
    notifier = alice.client.app.state.farcall.lifecycle.broker.tasks
    alice.claim(ep)  # enter session s1
    got: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: got.append(alice.claim(ep, wait=60, max_tasks=2)))
    poller.start()
    wait_until(lambda: notifier.offering(ep))
    ids = alice.submit(ep, fn, 1, count=3).json()["tasks"][fn]
    poller.join(30)
    assert [t["task_id"] for t in got[0]] == ids[:2]
    assert got[0][0]["payload"].startswith(alice.client.app.state.farcall.function(fn).code)
    assert [t["task_id"] for t in alice.claim(ep)] == ids[2:]
    # Handed over as claimed by s1: a new session takes them all back.
    assert sorted(t["task_id"] for t in alice.claim(ep, "s2")) == sorted(ids)


def test_claims_come_in_batches_in_order(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    ids = alice.submit(ep, fn, 1, count=25).json()["tasks"][fn]
    first = alice.claim(ep, max_tasks=10)
    second = alice.claim(ep, max_tasks=100)
    assert [t["task_id"] for t in first + second] == ids


def test_new_session_requeues_older_claims(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    ids = alice.submit(ep, fn, 1, count=3).json()["tasks"][fn]
    assert len(alice.claim(ep, "old")) == 3
    assert alice.claim(ep, "old") == []
    again = alice.claim(ep, "new")
    assert sorted(t["task_id"] for t in again) == sorted(ids)


def test_results_are_recorded_once(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    ids = alice.submit(ep, fn, 3, count=2).json()["tasks"][fn]
    alice.claim(ep)
    ser = Serializer()
    first = [{"task_id": ids[0], "status": "success", "result": ser.serialize(9)},
             {"task_id": ids[1], "status": "failed", "exception": "Traceback: boom"}]
    unknown = str(uuid.uuid4())
    answer = alice.report(ep, [*first, {"task_id": unknown, "status": "failed",
                                         "exception": "x"}])
    assert answer == {"acknowledged": ids, "rejected": [unknown]}
    before = [alice.get(f"/v2/tasks/{t}").json() for t in ids]
    assert before[0]["status"] == "success" and ser.deserialize(before[0]["result"]) == 9
    assert before[1]["status"] == "failed" and before[1]["exception"] == "Traceback: boom"
    assert isinstance(before[0]["completion_t"], str)
    # Resending, even with other values, is acknowledged and changes nothing.
    changed = [{"task_id": ids[0], "status": "success", "result": ser.serialize(0)},
               {"task_id": ids[1], "status": "success", "result": ser.serialize(0)}]
    assert alice.report(ep, changed, session="other") == {"acknowledged": ids, "rejected": []}
    assert [alice.get(f"/v2/tasks/{t}").json() for t in ids] == before


def test_results_for_another_endpoint_are_rejected(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    other = alice.register_endpoint("other")
    task_id = alice.submit(ep, fn, 3).json()["tasks"][fn][0]
    answer = alice.report(other, [{"task_id": task_id, "status": "failed", "exception": "x"}])
    assert answer == {"acknowledged": [], "rejected": [task_id]}
    assert alice.get(f"/v2/tasks/{task_id}").json()["status"] == "waiting-for-ep"


def test_heartbeat_drives_status(settings: Settings) -> None:
    app = create_app(replace(settings, offline_timeout=0.5))
    admin.add_user(app.state.farcall.store, "a")
    with TestClient(app) as client:
        alice = Caller(client, "", admin.create_token(app.state.farcall.store, "a"))
        ep = alice.register_endpoint()
        status = alice.get(f"/v2/endpoints/{ep}/status").json()
        assert status["status"] == "offline"
        beat = {"session": "s", "total_workers": 4, "idle_workers": 3, "pending_tasks": 1}
        answer = alice.post(f"/farcall/v1/endpoints/{ep}/heartbeat", json=beat)
        assert answer.json()["status"] == "online"
        status = alice.get(f"/v2/endpoints/{ep}/status").json()
        assert status["status"] == "online"
        assert {k: status["details"][k] for k in ("total_workers", "idle_workers")} == {
            "total_workers": 4, "idle_workers": 3}
        wait_until(lambda: alice.get(f"/v2/endpoints/{ep}/status").json()["status"] == "offline")


def test_silent_endpoints_lose_their_claims(settings: Settings) -> None:
    app = create_app(replace(settings, requeue_timeout=0.5))
    admin.add_user(app.state.farcall.store, "a")
    with TestClient(app) as client:
        alice = Caller(client, "", admin.create_token(app.state.farcall.store, "a"))
        ep, fn = alice.register_endpoint(), alice.register_function()
        task_id = alice.submit(ep, fn, 1).json()["tasks"][fn][0]
        assert len(alice.claim(ep)) == 1

        def requeued() -> bool:
            return alice.get(f"/v2/tasks/{task_id}").json()["status"] == "waiting-for-ep"

        wait_until(requeued)
        assert [t["task_id"] for t in alice.claim(ep)] == [task_id]


def test_lock_stops_an_endpoint(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    alice.submit(ep, fn, 1)
    assert len(alice.claim(ep)) == 1
    answer = alice.post(f"/v3/endpoints/{ep}/lock").json()
    assert answer["endpoint_id"] == ep and answer["lock_expiration_timestamp"]
    locked = alice.post(f"/farcall/v1/endpoints/{ep}/claim", json={"session": "s1"})
    assert_error(locked, 409, "ENDPOINT_LOCKED")
    assert int(locked.headers["Retry-After"]) > 0
    assert alice.get(f"/v2/endpoints/{ep}/status").json()["details"]["outstanding_tasks"] == 1


def test_lock_reaches_claims_through_the_lookup_cache(settings: Settings) -> None:
    """Claims check a cached endpoint on the event loop; locking invalidates it."""
    app = create_app(replace(settings, cache_ttl=60.0))
    admin.add_user(app.state.farcall.store, "cached")
    headers = {"Authorization": f"Bearer {admin.create_token(app.state.farcall.store, 'cached')}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        ep = client.post("/v3/endpoints", json={"endpoint_name": "c"}, headers=headers).json()[
            "endpoint_id"]
        claim_body = {"session": "s1", "wait": 0}
        route = f"/farcall/v1/endpoints/{ep}/claim"
        assert client.post(route, json=claim_body, headers=headers).status_code == 200
        assert client.post(route, json=claim_body, headers=headers).status_code == 200  # cached
        assert client.post(f"/v3/endpoints/{ep}/lock", headers=headers).status_code == 200
        assert_error(client.post(route, json=claim_body, headers=headers), 409,
                     "ENDPOINT_LOCKED")


def test_containers_travel_with_their_tasks(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, _ = ep_fn
    container = alice.post("/farcall/v1/containers", json={
        "name": "sci", "type": "apptainer", "location": "/images/sci.sif",
        "description": "numpy and friends"}).json()
    cid = container["container_id"]
    assert alice.get(f"/farcall/v1/containers/{cid}").json() == container
    fn = alice.register_function(container_uuid=cid)
    plain = alice.register_function()
    alice.submit(ep, fn, 1)
    alice.submit(ep, plain, 1)
    tasks = alice.claim(ep)
    assert tasks[0]["container"] == container and tasks[1]["container"] is None
    assert alice.get(f"/v2/functions/{fn}").json()["container_uuid"] == cid
    attached = alice.put(f"/farcall/v1/functions/{plain}/container", json={"container_id": cid})
    assert attached.json() == {"function_uuid": plain, "container_uuid": cid}
    bad = alice.post("/farcall/v1/containers", json={"name": "x", "type": "vm", "location": "/"})
    assert_error(bad, 422)
    unknown = {"function_name": "f", "function_code": "x", "serialized": False,
               "container_uuid": str(uuid.uuid4())}
    assert_error(alice.post("/v3/functions", json=unknown), 404, "CONTAINER_NOT_FOUND")


@pytest.mark.parametrize(("kind", "location"), [
    ("docker", "--privileged"), ("podman", "-v/:/host"), ("apptainer", "--fakeroot"),
    ("venv", "-c"), ("docker", "ubuntu --privileged"), ("docker", "ubuntu\n"),
    ("docker", "Ubuntu"), ("docker", "ubuntu:22.04\u00a0"), ("venv", "relative/python"),
    ("apptainer", "image.sif\x00"),
])
def test_container_locations_that_are_not_plain_are_refused(
        alice: Caller, kind: str, location: str) -> None:
    """An endpoint puts the location in a command line: ``docker run ... {location}``."""
    answer = alice.post("/farcall/v1/containers",
                        json={"name": "x", "type": kind, "location": location})
    assert_error(answer, 400, "INVALID_LOCATION")


@pytest.mark.parametrize(("kind", "location"), [
    ("docker", "ubuntu"), ("docker", "example.org/tools:1.0"),
    ("podman", "localhost:5000/team/img:v1.2-rc"),
    ("docker", "ghcr.io/a/b@sha256:" + "0" * 64), ("apptainer", "/images/sci.sif"),
    ("apptainer", "docker://ubuntu:22.04"), ("apptainer", "images/sci.sif"),
    ("venv", "/opt/envs/science/bin/python"),
])
def test_plain_container_locations_are_accepted(alice: Caller, kind: str, location: str) -> None:
    answer = alice.post("/farcall/v1/containers",
                        json={"name": "x", "type": kind, "location": location})
    assert answer.status_code == 200, answer.text


def test_a_shared_functions_environment_cannot_change_under_queued_tasks(
        alice: Caller, make_caller: Any) -> None:
    """Bob queues a task on alice's public function; the environment is read when the
    task is claimed, so alice switching it would run bob's task somewhere he never saw."""
    bob = make_caller("bob")
    ep = alice.register_endpoint(public=True)
    public = alice.register_function(public=True)
    [task] = bob.submit(ep, public, 1).json()["tasks"][public]
    image = alice.post("/farcall/v1/containers", json={
        "name": "other", "type": "docker", "location": "example.org/other:1"}).json()
    switched = alice.put(f"/farcall/v1/functions/{public}/container",
                         json={"container_id": image["container_id"]})
    assert_error(switched, 409, "FUNCTION_SHARED")
    same = alice.put(f"/farcall/v1/functions/{public}/container", json={"container_id": None})
    assert same.status_code == 200, same.text  # no change: nothing to refuse
    [claimed] = alice.claim(ep)
    assert claimed["task_id"] == task and claimed["container"] is None
    private = alice.register_function()
    attached = alice.put(f"/farcall/v1/functions/{private}/container",
                         json={"container_id": image["container_id"]})
    assert attached.status_code == 200, attached.text


def test_legacy_submit_and_task_groups(alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    group = str(uuid.uuid4())
    body = {"task_group_id": group, "create_websocket_queue": False,
            "tasks": [[fn, ep, payload(2)], [fn, ep, payload(3)]]}
    answer = alice.post("/v2/submit", json=body).json()
    assert answer["response"] == "success" and answer["task_group_id"] == group
    ids = [r["task_uuid"] for r in answer["results"]]
    assert all(r["http_status_code"] == 200 for r in answer["results"])
    more = alice.post(f"/v3/endpoints/{ep}/submit",
                      json={"tasks": {fn: [payload(4)]}, "task_group_id": group}).json()
    assert more["task_group_id"] == group
    doc = alice.get(f"/v2/taskgroup/{group}").json()
    assert doc["taskgroup_id"] == group
    assert [t["id"] for t in doc["tasks"]] == [*ids, *more["tasks"][fn]]
    claimed = alice.claim(ep)
    assert [t["task_id"] for t in claimed] == [*ids, *more["tasks"][fn]]
