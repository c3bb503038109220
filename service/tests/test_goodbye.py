"""``POST /farcall/v1/endpoints/{id}/goodbye``: a stopping endpoint's last word, proven by
its current session (no token: its credentials may be what failed)."""

from __future__ import annotations

import uuid

from farcall_testkit.service import Caller, assert_error
from fastapi.testclient import TestClient


def test_goodbye_shows_offline_and_requeues_what_the_session_held(
        alice: Caller, ep_fn: tuple[str, str], client: TestClient) -> None:
    endpoint_id, function_id = ep_fn
    assert alice.submit(endpoint_id, function_id, 1, count=2).status_code == 200
    session = str(uuid.uuid4())
    assert len(alice.claim(endpoint_id, session, max_tasks=2)) == 2
    assert alice.get(f"/v2/endpoints/{endpoint_id}/status").json()["status"] == "online"

    answer = client.post(f"/farcall/v1/endpoints/{endpoint_id}/goodbye",
                         json={"session": session})  # no Authorization header
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "offline", "requeued": 2}
    assert alice.get(f"/v2/endpoints/{endpoint_id}/status").json()["status"] == "offline"
    assert len(alice.claim(endpoint_id, str(uuid.uuid4()), max_tasks=2)) == 2


def test_goodbye_needs_the_current_session(alice: Caller, ep_fn: tuple[str, str],
                                           client: TestClient) -> None:
    endpoint_id, function_id = ep_fn
    alice.submit(endpoint_id, function_id, 1)
    session = str(uuid.uuid4())
    [_task] = alice.claim(endpoint_id, session)
    for wrong in (str(uuid.uuid4()), session.upper()):
        answer = client.post(f"/farcall/v1/endpoints/{endpoint_id}/goodbye",
                             json={"session": wrong})
        assert_error(answer, 403, "NOT_CURRENT_SESSION")
    assert alice.get(f"/v2/endpoints/{endpoint_id}/status").json()["status"] == "online"
    # Once said, the session is over: a second goodbye with it is refused too.
    assert client.post(f"/farcall/v1/endpoints/{endpoint_id}/goodbye",
                       json={"session": session}).status_code == 200
    assert_error(client.post(f"/farcall/v1/endpoints/{endpoint_id}/goodbye",
                             json={"session": session}), 403, "NOT_CURRENT_SESSION")


def test_goodbye_needs_a_random_session(alice: Caller, ep_fn: tuple[str, str],
                                        client: TestClient) -> None:
    """A session an endpoint chose as a plain word ("s1", or the service's own "amqp")
    could be guessed: it cannot say goodbye for the endpoint."""
    endpoint_id, function_id = ep_fn
    alice.submit(endpoint_id, function_id, 1)
    [_task] = alice.claim(endpoint_id, "s1")
    assert_error(client.post(f"/farcall/v1/endpoints/{endpoint_id}/goodbye",
                             json={"session": "s1"}), 400, "INVALID_SESSION")
    assert alice.get(f"/v2/endpoints/{endpoint_id}/status").json()["status"] == "online"


def test_goodbye_to_an_unknown_endpoint_or_without_a_session(client: TestClient) -> None:
    unknown = str(uuid.uuid4())
    assert_error(client.post(f"/farcall/v1/endpoints/{unknown}/goodbye",
                             json={"session": str(uuid.uuid4())}), 404, "ENDPOINT_NOT_FOUND")
    answer = client.post(f"/farcall/v1/endpoints/{unknown}/goodbye", json={})
    assert answer.status_code == 422 and {"code", "message"} <= set(answer.json())
