"""The blob routes in-process, on each database with its default blob store: a
payload uploaded, submitted by reference and fetched by the endpoint holding its
task; a result uploaded by that endpoint and downloaded by the task's owner; what
another user and a task not held are told; the sweep after a task is gone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from farcall.blob_refs import parse_reference
from farcall_service.blobs.sweeping import sweep_once
from farcall_service.context import ServiceContext
from farcall_service.settings import Settings
from farcall_testkit.service import Caller, payload

#: Small limits, so the tests show that uploads pass the body limit and stop at theirs.
MAX_BODY = 4096
MAX_VALUE = 64 * 1024
#: Stored bytes per user: blobs count in them.
QUOTA = 150_000


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings(home=tmp_path, db_url=database, cache_ttl=0.0, rate_limit=0,
                    max_claim_wait=5.0, max_body_bytes=MAX_BODY, max_result_size=MAX_VALUE,
                    max_stored_bytes_per_user=QUOTA)


def upload_payload(caller: Caller, text: str) -> dict[str, str]:
    answer = caller.post("/farcall/v1/blobs", content=text.encode())
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_payload_and_a_result_travel_as_blobs_between_owner_and_endpoint(
        alice: Caller, make_caller, ep_fn: tuple[str, str], ctx: ServiceContext) -> None:
    eid, fid = ep_fn
    big = payload("x" * 20_000)  # over the body limit: only the blob route takes it
    blob = upload_payload(alice, big)
    assert ctx.store.get_blob(blob["key"]).task_id is None  # type: ignore[union-attr]
    submitted = alice.post(f"/v3/endpoints/{eid}/submit",
                           json={"tasks": {fid: [blob["payload"]]}})
    assert submitted.status_code == 200, submitted.text
    [tid] = submitted.json()["tasks"][fid]
    assert ctx.store.get_blob(blob["key"]).task_id == tid  # type: ignore[union-attr]

    [task] = alice.claim(eid)
    assert task["payload"].endswith(blob["payload"])
    fetched = alice.get(f"/farcall/v1/tasks/{tid}/payload-blob", params={"key": blob["key"]})
    assert fetched.status_code == 200 and fetched.content == big.encode()
    # Another of alice's blobs, not this task's, is not served for it.
    loose = upload_payload(alice, payload("loose"))
    other = alice.get(f"/farcall/v1/tasks/{tid}/payload-blob", params={"key": loose["key"]})
    assert other.status_code == 404 and other.json()["code"] == "BLOB_NOT_FOUND"

    result = "00\n" + "r" * 30_000
    uploaded = alice.put(f"/farcall/v1/tasks/{tid}/result-blob", content=result.encode())
    assert uploaded.status_code == 200, uploaded.text
    reference = uploaded.json()["result"]
    assert parse_reference(reference) is not None
    alice.report(eid, [{"task_id": tid, "status": "success", "result": reference}])
    waited = alice.post("/farcall/v1/tasks/wait", json={"task_ids": [tid], "timeout": 5})
    assert waited.json()["results"][tid]["result"] == reference  # messages carry references
    downloaded = alice.get(f"/farcall/v1/tasks/{tid}/result")
    assert downloaded.status_code == 200 and downloaded.content == result.encode()
    inline = alice.get(f"/v2/tasks/{tid}")
    assert inline.status_code == 200 and inline.json()["result"] == result

    bob = make_caller("bob")
    for path in (f"/farcall/v1/tasks/{tid}/result", f"/v2/tasks/{tid}"):
        assert bob.get(path).status_code == 404
    denied = bob.get(f"/farcall/v1/tasks/{tid}/payload-blob", params={"key": blob["key"]})
    assert denied.status_code == 404 and denied.json()["code"] == "TASK_NOT_FOUND"
    assert bob.put(f"/farcall/v1/tasks/{tid}/result-blob", content=b"00\nx").status_code == 404

    # The task's blobs go when the task does; until then the sweep leaves them.
    assert sweep_once(ctx, time.time() + ctx.settings.blob_grace + 1) == 1  # the loose one
    assert ctx.store.prune_finished(time.time() + 1, alice.user_id) == 1
    assert sweep_once(ctx, time.time()) == 2
    result_key = parse_reference(reference).key  # type: ignore[union-attr]
    assert not {blob["key"], result_key} & set(ctx.blobs.keys())
    assert ctx.store.get_blob(blob["key"]) is None and ctx.store.get_blob(result_key) is None


def test_a_payload_no_task_took_is_swept_after_the_grace_period(
        alice: Caller, ctx: ServiceContext) -> None:
    blob = upload_payload(alice, payload(1))
    assert sweep_once(ctx, time.time()) == 0
    assert sweep_once(ctx, time.time() + ctx.settings.blob_grace + 1) == 1
    assert blob["key"] not in set(ctx.blobs.keys())


def test_only_the_endpoint_running_a_task_uploads_its_result(
        alice: Caller, make_caller, ep_fn: tuple[str, str]) -> None:
    eid, fid = ep_fn
    [tid] = alice.submit(eid, fid, 3).json()["tasks"][fid]
    queued = alice.put(f"/farcall/v1/tasks/{tid}/result-blob", content=b"00\n1")
    assert queued.status_code == 409 and queued.json()["code"] == "TASK_NOT_HELD"
    alice.claim(eid)
    bob = make_caller("bob")
    for answer in (bob.put(f"/farcall/v1/tasks/{tid}/result-blob", content=b"00\n1"),
                   bob.put(f"/farcall/v1/tasks/{'0' * 8}-0000-4000-8000-{'0' * 12}/result-blob",
                           content=b"00\n1")):
        assert answer.status_code == 404 and answer.json()["code"] == "TASK_NOT_FOUND"


def test_values_over_the_limit_are_refused_with_max_result_size_exceeded(
        alice: Caller, ep_fn: tuple[str, str], ctx: ServiceContext) -> None:
    eid, fid = ep_fn
    too_big = alice.post("/farcall/v1/blobs", content=b"x" * (MAX_VALUE + 1))
    assert too_big.status_code == 413
    assert too_big.json() == {
        "code": "MaxResultSizeExceeded",
        "message": f"MaxResultSizeExceeded: Task payload of {MAX_VALUE + 1}B exceeded "
                   f"current limit of {MAX_VALUE}B"}

    def chunked():  # no Content-Length: stopped while it streams
        for _ in range(MAX_VALUE // 1024 + 2):
            yield b"y" * 1024

    [tid] = alice.submit(eid, fid, 3).json()["tasks"][fid]
    alice.claim(eid)
    before = set(ctx.blobs.keys())
    streamed = alice.put(f"/farcall/v1/tasks/{tid}/result-blob", content=chunked())
    assert streamed.status_code == 413 and streamed.json()["code"] == "MaxResultSizeExceeded"
    assert set(ctx.blobs.keys()) == before  # nothing half-written is left
    assert alice.get("/farcall/v1/blobs/limits").json() == {
        "blob_threshold": 1024 * 1024, "max_result_size": MAX_VALUE}


def test_a_submission_naming_an_unknown_blob_is_refused(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    from farcall.blob_refs import BlobReference, payload_reference

    eid, fid = ep_fn
    made_up = payload_reference(BlobReference("0" * 32, 10))
    answer = alice.post(f"/v3/endpoints/{eid}/submit", json={"tasks": {fid: [made_up]}})
    assert answer.status_code == 404 and answer.json()["code"] == "BLOB_NOT_FOUND"


def test_blobs_count_in_their_owners_stored_bytes_until_they_are_swept(
        alice: Caller, ctx: ServiceContext) -> None:
    _tasks, before = ctx.store.usage(alice.user_id)
    first = upload_payload(alice, "a" * 60_000)
    upload_payload(alice, "b" * 60_000)
    assert ctx.store.usage(alice.user_id)[1] == before + 120_000
    refused = alice.post("/farcall/v1/blobs", content=b"c" * 60_000)
    assert refused.status_code == 413 and refused.json()["code"] == "QUOTA_EXCEEDED"
    assert "150000" in refused.json()["message"]
    assert sweep_once(ctx, time.time() + ctx.settings.blob_grace + 1) == 2
    assert ctx.store.usage(alice.user_id)[1] == before
    assert ctx.store.get_blob(first["key"]) is None


def test_a_document_streamed_around_a_blob_is_the_json_of_the_whole() -> None:
    import json

    from farcall_service.blobs.transfer import json_document

    text = 'é"\\\n' * 1000 + "ü€"
    raw = text.encode()
    chunks = [raw[i:i + 7] for i in range(0, len(raw), 7)]  # multibyte characters split
    head = {"task_id": "t", "status": "success", "details": {"a": [1, 2]}}
    streamed = b"".join(json_document(head, "result", iter(chunks), {"completion_t": "1.5"}))
    assert json.loads(streamed) == {**head, "result": text, "completion_t": "1.5"}
    assert json.loads(b"".join(json_document({}, "r", iter([b"x"]), {}))) == {"r": "x"}
