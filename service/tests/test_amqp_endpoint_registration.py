"""Asking for AMQP task queues at registration, without an AMQP broker (the
rabbitmq plugin's tests register them for real: plugins/broker_rabbitmq)."""

from __future__ import annotations

from farcall_testkit.service import Caller


def test_an_endpoint_asking_for_amqp_tasks_is_refused_without_an_amqp_broker(
        alice: Caller) -> None:
    answer = alice.post("/v3/endpoints", json={"endpoint_name": "ep", "amqp_tasks": True})
    assert answer.status_code == 501, answer.text
    assert answer.json()["code"] == "NOT_IMPLEMENTED" and "--broker amqp://" in answer.text
    assert alice.get("/v2/endpoints").json() == []  # nothing was registered


def test_an_endpoint_registered_without_amqp_gets_no_amqp_creds(alice: Caller) -> None:
    answer = alice.post("/v3/endpoints", json={"endpoint_name": "ep"})
    assert answer.status_code == 200 and "amqp_creds" not in answer.json()
