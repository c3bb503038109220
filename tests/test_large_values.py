"""Large results and arguments, end to end: ``farcall server start``, a real endpoint
process and the farcall Client. Values over the blob threshold travel through the
blob store; messages carry references; over the limit, MaxResultSizeExceeded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")

import requests  # noqa: E402
from farcall import Client, TaskExecutionFailed, TaskPending  # noqa: E402
from farcall.blob_refs import parse_reference  # noqa: E402
from farcall.sdk.errors import FarcallAPIError  # noqa: E402
from farcall.serialize import Serializer  # noqa: E402
from farcall_testkit.endpoint import EndpointProcess  # noqa: E402
from farcall_testkit.service import ServiceProcess, admin  # noqa: E402

MB = 1024 * 1024
#: The service's limit in these tests: above 20 MB (serialized), below 40 MB.
LIMIT = 32 * MB
#: The service's blob threshold in these tests, which its clients adopt.
THRESHOLD = 256 * 1024


def text_of(n):
    return "r" * n


def length(value):
    return len(value)


class Stack:
    def __init__(self, service: ServiceProcess, tokens: dict[str, str], endpoint_id: str):
        self.service, self.tokens, self.endpoint_id = service, tokens, endpoint_id
        self.url = service.url

    def client(self, name: str = "alice") -> Client:
        return Client(self.url, token=self.tokens[name])

    def http(self, name: str, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[name]}", **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=120, **kw)

    @property
    def blobs(self) -> Path:
        return self.service.home / "service" / "blobs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home: Path = tmp_path_factory.mktemp("large-values")
    env = {"FARCALL_SERVICE_MAX_RESULT_SIZE": str(LIMIT),
           "FARCALL_SERVICE_BLOB_THRESHOLD": str(THRESHOLD)}
    with ServiceProcess(home, env=env) as service:
        tokens = {}
        for name in ("alice", "bob"):
            admin(home, "user", "add", name)
            tokens[name] = admin(home, "token", "create", name).splitlines()[-1].strip()
        endpoint = EndpointProcess(home, "big", service.url, tokens["alice"],
                                   engine={"type": "thread", "workers": 2},
                                   heartbeat_period=1.0, claim_wait=2.0, max_backoff=1.0)
        endpoint.start()
        try:
            yield Stack(service, tokens, endpoint.endpoint_id)
        finally:
            endpoint.stop()


def result_of(client: Client, task_id: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.get_result(task_id)
        except TaskPending:
            assert time.monotonic() < deadline, f"task {task_id} did not end in {timeout} s"
            time.sleep(0.2)


def stored_document(stack: Stack, task_id: str) -> dict[str, Any]:
    answer = stack.http("alice", "POST", "/v2/batch_status", json={"task_ids": [task_id]})
    return answer.json()["results"][task_id]


def test_a_20_mb_result_comes_back_whole_while_its_task_document_carries_a_reference(
        stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(text_of)
    tid = client.run(20 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    assert result_of(client, tid) == "r" * 20 * MB
    document = stored_document(stack, tid)
    ref = parse_reference(document["result"])
    assert ref is not None and ref.size > 20 * MB
    assert (stack.blobs / ref.key).stat().st_size == ref.size
    # Read again (a new Client, no cache): the blob is still there.
    assert result_of(stack.client(), tid) == "r" * 20 * MB


def test_a_20_mb_argument_is_uploaded_first_and_fetched_by_the_endpoint(stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(length)
    before = {p.name for p in stack.blobs.iterdir()}
    tid = client.run("a" * 20 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    assert result_of(client, tid) == 20 * MB
    made = [stack.blobs / name for name in {p.name for p in stack.blobs.iterdir()} - before]
    assert [p.stat().st_size > 20 * MB for p in made] == [True]


def test_official_clients_read_a_large_result_inline_from_v2_tasks(stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(text_of)
    tid = client.run(3 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    result_of(client, tid)
    answer = stack.http("alice", "GET", f"/v2/tasks/{tid}", stream=True)
    assert answer.status_code == 200
    assert "content-length" not in answer.headers  # streamed, not built in memory
    document = json.loads(answer.content)
    assert document["status"] == "success" and document["task_id"] == tid
    assert Serializer().deserialize(document["result"]) == "r" * 3 * MB
    farcall_view = stack.http("alice", "GET", f"/v2/tasks/{tid}?result=reference").json()
    assert parse_reference(farcall_view["result"]) is not None


def test_a_result_over_the_service_limit_fails_with_max_result_size_exceeded(
        stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(text_of)
    tid = client.run(40 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    with pytest.raises(TaskExecutionFailed) as failed:
        result_of(client, tid)
    text = str(failed.value)
    assert "MaxResultSizeExceeded: Task result of " in text
    assert f"exceeded current limit of {LIMIT}B" in text


def test_an_argument_over_the_limit_is_refused_before_it_is_sent(stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(length)
    with pytest.raises(FarcallAPIError) as refused:
        client.run("a" * 40 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    assert refused.value.code == "MaxResultSizeExceeded"
    assert f"exceeded current limit of {LIMIT}B" in refused.value.message


def test_another_user_finds_none_of_the_blob_routes(stack: Stack) -> None:
    client = stack.client()
    fid = client.register_function(text_of)
    tid = client.run(2 * MB, endpoint_id=stack.endpoint_id, function_id=fid)
    result_of(client, tid)
    ref = parse_reference(stored_document(stack, tid)["result"])
    assert ref is not None
    assert stack.http("alice", "GET", f"/farcall/v1/tasks/{tid}/result").status_code == 200
    theirs = stack.http("bob", "GET", f"/farcall/v1/tasks/{tid}/result")
    assert theirs.status_code == 404 and theirs.json()["code"] == "TASK_NOT_FOUND"
    assert stack.http("bob", "GET", f"/v2/tasks/{tid}").status_code == 404
    for method, path in (("PUT", f"/farcall/v1/tasks/{tid}/result-blob"),
                         ("GET", f"/farcall/v1/tasks/{tid}/payload-blob?key={ref.key}")):
        answer = stack.http("bob", method, path, data=b"x")
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["code"] == "TASK_NOT_FOUND"
    # A payload blob of alice's cannot be submitted by bob.
    upload = stack.http("alice", "POST", "/farcall/v1/blobs", data=b"2\n00x\n2\n00y")
    assert upload.status_code == 201
    bobs_fid = stack.client("bob").register_function(length)
    bobs_ep = stack.http("bob", "POST", "/v3/endpoints", json={"endpoint_name": "b"}).json()
    submit = stack.http("bob", "POST", f"/v3/endpoints/{bobs_ep['endpoint_id']}/submit",
                        json={"tasks": {bobs_fid: [upload.json()["payload"]]}})
    assert submit.status_code == 404 and submit.json()["code"] == "BLOB_NOT_FOUND"


OFFICIAL_SCRIPT = """
import json, sys, time
import globus_sdk
from globus_compute_sdk.sdk import client as client_module

url, token, endpoint_id = sys.argv[1:4]
client_module.get_web_service_url = lambda *_args, **_kwargs: url
from globus_compute_sdk import Client
from globus_compute_sdk.errors import TaskPending

def text_of(n):
    return "o" * n

gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
fid = gcc.register_function(text_of)
tid = gcc.run(5 * 1024 * 1024, endpoint_id=endpoint_id, function_id=fid)
deadline = time.monotonic() + 120
while True:
    try:
        result = gcc.get_result(tid)
        break
    except TaskPending:
        assert time.monotonic() < deadline
        time.sleep(0.2)
print(json.dumps({"task_id": tid, "length": len(result), "same": result == "o" * 5 * 1024 * 1024}))
"""


@pytest.mark.compat
def test_the_official_client_reads_a_large_result_through_v2_tasks(
        stack: Stack, tmp_path: Path) -> None:
    import os
    import subprocess

    python = os.environ.get("FARCALL_COMPAT_PYTHON", "")
    if not python:
        pytest.skip("FARCALL_COMPAT_PYTHON is not set")
    script = tmp_path / "official_large.py"
    script.write_text(OFFICIAL_SCRIPT)
    done = subprocess.run(
        [python, str(script), stack.url, stack.tokens["alice"], stack.endpoint_id],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "GLOBUS_SDK_ENVIRONMENT": "production"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["length"] == 5 * MB and out["same"] is True
    assert parse_reference(stored_document(stack, out["task_id"])["result"]) is not None


def test_an_executor_future_resolves_to_a_large_result(stack: Stack) -> None:
    from farcall import Executor

    with Executor(endpoint_id=stack.endpoint_id, client=stack.client()) as executor:
        future = executor.submit(text_of, 4 * MB)
        assert future.result(timeout=120) == "r" * 4 * MB


def test_the_client_and_the_endpoint_adopt_the_services_blob_threshold(stack: Stack) -> None:
    client = stack.client()
    fn_text, fn_length = client.register_function(text_of), client.register_function(length)
    before = {p.name for p in stack.blobs.iterdir()}
    small = client.run(THRESHOLD // 2, endpoint_id=stack.endpoint_id, function_id=fn_text)
    over = client.run(2 * THRESHOLD, endpoint_id=stack.endpoint_id, function_id=fn_text)
    assert result_of(client, small) == "r" * (THRESHOLD // 2)
    assert result_of(client, over) == "r" * 2 * THRESHOLD
    assert parse_reference(stored_document(stack, small)["result"]) is None
    assert parse_reference(stored_document(stack, over)["result"]) is not None
    assert client.blob_threshold is None  # no payload yet could be over any threshold
    argument = client.run("a" * 2 * THRESHOLD, endpoint_id=stack.endpoint_id,
                          function_id=fn_length)
    assert client.blob_threshold == THRESHOLD  # asked once, then
    assert result_of(client, argument) == 2 * THRESHOLD
    assert len({p.name for p in stack.blobs.iterdir()} - before) == 2  # a result, an argument
