"""The endpoint's channel to a real service: answers, limits, restarts, and HTTP for a
service without one."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from farcall.sdk.channel import Channel
from farcall.sdk.errors import FarcallAPIError
from farcall.sdk.http_transport import HttpTransport
from farcall_endpoint.links.handoff import HandOffOverHttp
from farcall_testkit.endpoint import Api, create_user, start_service


class Bearer:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_authorization_header(self) -> str:
        return f"Bearer {self.token}"


def open_channel(url: str, token: str, endpoint_id: str) -> Channel:
    auth = Bearer(token)
    prefix = f"/farcall/v1/endpoints/{endpoint_id}"
    return Channel(url, f"{prefix}/channel", auth,
                   HandOffOverHttp(HttpTransport(url, auth, {"retries": 0}), prefix))


def new_endpoint(api: Api) -> str:
    return api.call("POST", "/v3/endpoints", json={"endpoint_name": "channel"})["endpoint_id"]


def identity(x):
    return x


def test_a_message_over_the_size_limit_is_refused_as_a_body_would_be(tmp_path: Path) -> None:
    token = create_user(tmp_path)
    service = start_service(tmp_path, ["--rate-limit", "0", "--max-body-bytes", "100000"])
    try:
        channel = open_channel(service.url, token, new_endpoint(Api(service.url, token)))
        huge = {"session": "s1", "results": [
            {"task_id": str(uuid.uuid4()), "status": "success", "result": "x" * 200_000}]}
        with pytest.raises(FarcallAPIError) as refused:
            channel.ask("results", huge, timeout=30)
        assert refused.value.http_status == 413  # what the runner splits a report on
        # The service closed that connection; the next request opens a new one.
        assert channel.ask("claim", {"session": "s1", "wait": 0}, timeout=30) == {"tasks": []}
        channel.close()
    finally:
        service.stop()


def test_the_channel_reconnects_after_the_service_restarts(service: Any, api: Api) -> None:
    channel = open_channel(service.url, service.token, new_endpoint(api))
    assert channel.ask("claim", {"session": "s1", "wait": 0}, timeout=30) == {"tasks": []}
    port = service.process.port
    service.process.stop()
    service.process = start_service(service.home, service.process.args, port=port)
    # The old connection was closed while idle: noticed before sending, not after.
    assert channel.ask("claim", {"session": "s1", "wait": 0}, timeout=30) == {"tasks": []}
    channel.close()


def test_a_service_without_the_channel_is_asked_over_http(tmp_path: Path) -> None:
    from farcall_service.app import create_app
    from farcall_service.settings import Settings
    from farcall_testkit.service import AppServer, without_channels

    app = without_channels(create_app(Settings(home=tmp_path, rate_limit=0)))
    with AppServer(app) as server:
        token = create_user(tmp_path)
        api = Api(server.url, token)
        endpoint_id = new_endpoint(api)
        fn = api.register_function(identity)
        task_id = api.submit(endpoint_id, fn, [(7,)])[0]
        channel = open_channel(server.url, token, endpoint_id)
        tasks = channel.ask("claim", {"session": "s1", "max_tasks": 5}, timeout=30)["tasks"]
        assert [t["task_id"] for t in tasks] == [task_id]
        ran: list[str] = []
        answer = channel.ask("results", {"session": "s1", "results": [
            {"task_id": task_id, "status": "success", "result": "11\n7"}]}, timeout=30,
            meanwhile=lambda: ran.append(api.call("GET", f"/v2/tasks/{task_id}")["status"]))
        assert answer == {"acknowledged": [task_id], "rejected": []}
        assert ran == ["running"]  # before the request, over HTTP
        assert channel.over_http
        channel.close()


def test_meanwhile_runs_once_the_request_is_on_its_way(service: Any, api: Api) -> None:
    endpoint_id = new_endpoint(api)
    task_id = api.submit(endpoint_id, api.register_function(identity), [(7,)])[0]
    channel = open_channel(service.url, service.token, endpoint_id)
    assert channel.ask("claim", {"session": "s1", "max_tasks": 5}, timeout=30)["tasks"]
    statuses: list[str] = []

    def watch() -> None:  # the service records the result while this waits for it
        for _ in range(300):
            statuses.append(api.call("GET", f"/v2/tasks/{task_id}")["status"])
            if statuses[-1] != "running":
                return
            time.sleep(0.02)

    answer = channel.ask("results", {"session": "s1", "results": [
        {"task_id": task_id, "status": "success", "result": "11\n7"}]}, timeout=30,
        meanwhile=watch)
    assert answer == {"acknowledged": [task_id], "rejected": []}
    assert statuses[-1] == "success"
    channel.close()


def test_a_failing_meanwhile_drops_the_connection_and_its_answer(service: Any,
                                                                 api: Api) -> None:
    endpoint_id = new_endpoint(api)
    api.submit(endpoint_id, api.register_function(identity), [(7,)])
    channel = open_channel(service.url, service.token, endpoint_id)

    def fail() -> None:
        time.sleep(0.5)  # the service claims the task and answers meanwhile
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        channel.ask("claim", {"session": "s1", "max_tasks": 5}, timeout=30, meanwhile=fail)
    # The claim's answer (the task) was never read: it must not answer the next request.
    assert channel.ask("claim", {"session": "s1", "wait": 0}, timeout=30) == {"tasks": []}
    channel.close()
