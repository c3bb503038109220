"""Tasks: submission (v3 and the legacy v2 route), status, batches, task groups."""

from __future__ import annotations

import uuid
from typing import Any

from farcall.blob_refs import parse_reference
from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from farcall_service import retention
from farcall_service.accepting import (
    Request,
    broker_unavailable,
    canonical_id,
    check_task_count,
)
from farcall_service.auth import Identity, Who
from farcall_service.blobs import payloads as payload_blobs
from farcall_service.blobs.documents import streamed_document
from farcall_service.brokers.interface import BrokerError
from farcall_service.cancel_answers import cancel_answers
from farcall_service.channel import serve
from farcall_service.context import Ctx, ServiceContext, get_context
from farcall_service.documents import task_document
from farcall_service.errors import ApiError, not_found
from farcall_service.models import (
    BatchStatusRequest,
    CancelRequest,
    ChannelSubmission,
    LegacySubmission,
    Submission,
    WaitRequest,
)
from farcall_service.storage.interface import TaskOptions

router = APIRouter(tags=["tasks"])


@router.post("/v3/endpoints/{endpoint_id}/submit", summary="Submit tasks to an endpoint")
async def submit_v3(
    endpoint_id: uuid.UUID,
    body: Submission,
    who: Who,
    ctx: Ctx,
) -> JSONResponse:
    return JSONResponse(await _submit(ctx, who, str(endpoint_id), body))


async def _submit(ctx: ServiceContext, who: Identity, eid: str, body: Submission) -> dict[str, Any]:
    # Before a request object is made per task, on the event loop.
    check_task_count(sum(map(len, body.tasks.values())), ctx.settings.max_tasks_per_submission)
    keys = {raw: canonical_id(raw, "function") for raw in body.tasks}
    requests = [
        Request(eid, keys[raw], payload)
        for raw, payloads in body.tasks.items()
        for payload in payloads
    ]
    blobs = payload_blobs.referenced([r.payload for r in requests])
    if blobs:
        await payload_blobs.check(ctx, who, blobs)
    group, task_ids = await ctx.lifecycle.submit(
        who, requests, str(body.task_group_id) if body.task_group_id else None,
        _options(ctx, body, len(requests)), body.create_queue, existing_group=True)
    if blobs:
        await payload_blobs.attach(ctx, who, blobs, task_ids)
    ids = iter(task_ids)
    return {
        "request_id": str(uuid.uuid4()),
        "task_group_id": group,
        "endpoint_id": eid,
        "tasks": {raw: [next(ids) for _ in payloads] for raw, payloads in body.tasks.items()},
    }


def _options(ctx: ServiceContext, body: Submission, count: int) -> TaskOptions:
    """The submission's options, each within the field limits. They are stored with
    each of the ``count`` tasks, so all those copies together must fit the body limit:
    a small body cannot make the database grow by many times its size."""
    limits = ctx.json_limits
    size = (limits.measure("resource_specification", body.resource_specification)
            + limits.measure("user_endpoint_config", body.user_endpoint_config)
            + limits.measure("result_serializers", body.result_serializers))
    if size * count > ctx.settings.max_body_bytes:
        raise ApiError(
            413, "FIELD_TOO_LARGE",
            f"the submission's options (about {size} bytes) are stored with each of its "
            f"{count} tasks, {size * count} bytes in all, over the limit of "
            f"{ctx.settings.max_body_bytes}; send fewer tasks at a time or smaller options")
    return TaskOptions(
        resource_specification=body.resource_specification,
        result_serializers=body.result_serializers,
        user_endpoint_config=body.user_endpoint_config,
    )


@router.post("/v2/submit", summary="Submit tasks (legacy route of the 2.x SDK)")
async def submit_v2(
    body: LegacySubmission,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    check_task_count(len(body.tasks), ctx.settings.max_tasks_per_submission)
    requests = [Request(str(ep), str(fn), payload) for fn, ep, payload in body.tasks]
    group, task_ids = await ctx.lifecycle.submit(
        who, requests, str(body.task_group_id) if body.task_group_id else None, TaskOptions(),
        body.create_websocket_queue)
    return {
        "response": "success",
        "task_group_id": group,
        "results": [
            {"status": "success", "task_uuid": tid, "http_status_code": 200, "reason": None}
            for tid in task_ids
        ],
    }


@router.get("/v2/tasks/{task_id}", summary="A task's status and, when done, its result")
async def get_task(
    task_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
    result: str = "inline",
) -> Response:
    """``?result=reference`` (farcall's SDK) leaves a large result as its reference;
    otherwise it is streamed into the answer from the blob store."""
    tid = str(task_id)
    # A result told to waits is held in memory before the database has it.
    task = ctx.lifecycle.records([tid]).get(tid) or await run_in_threadpool(
        ctx.store.get_task, tid)
    # Not the caller's, or gone: 410 if the id is old enough to have expired, else 404.
    document = task_document(
        retention.visible_task(who, task, tid, ctx.settings.result_retention))
    ref = parse_reference(document.get("result"))
    if ref is not None and result != "reference":
        streamed = await streamed_document(ctx, document, ref, who.user_id)
        if streamed is not None:
            return streamed
    return JSONResponse(document)


@router.post("/v2/batch_status",
             summary="Many tasks at once; ids you may not see are left out, or read expired "
             "when older than the retention time")
def batch_status(
    body: BatchStatusRequest,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    ids = [str(tid) for tid in body.task_ids]
    held = ctx.lifecycle.records(ids)  # told to waits, perhaps not yet committed
    tasks = [*held.values(), *ctx.store.get_tasks(tid for tid in ids if tid not in held)]
    results = {task.id: task_document(task) for task in tasks if task.owner_id == who.user_id}
    # The others are left out, unless their ids are old enough to read as expired.
    keep = ctx.settings.result_retention
    results.update((tid, retention.expired_document(tid, keep))
                   for tid in retention.expired_among(ids, set(results), keep))
    return {"response": "batch", "results": results}


@router.post(
    "/farcall/v1/tasks/wait",
    summary="farcall: wait until at least one of these tasks has ended",
    tags=["farcall"],
)
async def wait_for_tasks(body: WaitRequest, who: Who, ctx: Ctx) -> JSONResponse:
    """A long-poll for results: answers the moment one of the tasks ends (or at
    ``timeout``) with the documents of the ended ones, as ``/v2/batch_status`` does:
    every one that had ended when it looked, or those in the report that woke it.
    Tasks the caller may not see are left out; so the SDK never sleeps between checks.
    """
    return JSONResponse(await _wait(ctx, who, body))


async def _wait(ctx: ServiceContext, who: Identity, body: WaitRequest) -> dict[str, Any]:
    ids = [str(tid) for tid in body.task_ids]
    gone = await _expired(ctx, who, ids)
    # An expired task has ended for good: answered at once, with whatever else has.
    waiting = [tid for tid in ids if tid not in gone]
    done = (await ctx.lifecycle.wait(who.user_id, waiting, 0 if gone else body.timeout)
            if waiting else [])
    results = {t.id: task_document(t, official=False) for t in done}
    keep = ctx.settings.result_retention
    results.update((tid, retention.expired_document(tid, keep)) for tid in gone)
    return {"response": "batch", "results": results}


async def _expired(ctx: ServiceContext, who: Identity, ids: list[str]) -> set[str]:
    """The ids among ``ids`` that read as expired: old enough, and not the caller's
    (one of theirs may be that old and still queued). Reads the store only for ids
    older than the retention period, which a wait rarely names."""
    old = retention.expired_among(ids, set(), ctx.settings.result_retention)
    if not old:
        return set()
    found = await ctx.in_thread(ctx.store.get_tasks, old)
    return set(old) - {task.id for task in found if task.owner_id == who.user_id}


@router.post(
    "/farcall/v1/tasks/cancel",
    summary="farcall: cancel tasks; each answered cancelled, already finished, or not found",
    tags=["farcall"],
)
async def cancel_tasks(body: CancelRequest, who: Who, ctx: Ctx) -> JSONResponse:
    """Cancel the caller's tasks: a queued one never runs, a running one's endpoint is
    told to stop it, and either ends now as ``cancelled``; one that had ended is left
    as it was. Ids the caller may not see read as not found."""
    return JSONResponse(await _cancel(ctx, who, body))


async def _cancel(ctx: ServiceContext, who: Identity, body: CancelRequest) -> dict[str, Any]:
    ids = [str(tid) for tid in body.task_ids]
    cap = ctx.settings.max_tasks_per_submission
    if cap and len(ids) > cap:
        raise ApiError(413, "TOO_MANY_TASKS",
                       f"the cancel names {len(ids)} tasks; this service takes at most {cap} "
                       "at a time (max_tasks_per_submission): split it into several")
    done = await ctx.lifecycle.cancel(who, ids)
    return {"results": cancel_answers(done)}


@router.websocket("/farcall/v1/channel")
async def sdk_channel(websocket: WebSocket) -> None:
    """Submissions and result waits over one WebSocket (``farcall_service.channel``):
    ``{"op": "submit", "endpoint_id", ...}`` as ``POST /v3/endpoints/{id}/submit``,
    ``{"op": "wait", ...}`` as ``POST /farcall/v1/tasks/wait``, ``{"op": "cancel", ...}``
    as ``POST /farcall/v1/tasks/cancel``. A submission with
    ``"follow": true`` has its results pushed (``farcall_service.following``), so the
    SDK's round trip is one request."""
    ctx = get_context(websocket)
    follower = ctx.lifecycle.follower()

    async def submit(who: Identity, body: ChannelSubmission) -> dict[str, Any]:
        answer = await _submit(ctx, who, str(body.endpoint_id), body)
        if body.follow:
            answer.update(follower.follow(
                who.user_id, [tid for ids in answer["tasks"].values() for tid in ids]))
        return answer

    async def wait(who: Identity, body: WaitRequest) -> dict[str, Any]:
        return await _wait(ctx, who, body)

    async def cancel(who: Identity, body: CancelRequest) -> dict[str, Any]:
        return await _cancel(ctx, who, body)

    await serve(websocket, {"submit": (ChannelSubmission, submit), "wait": (WaitRequest, wait),
                            "cancel": (CancelRequest, cancel)},
                opened=follower.attach)


@router.get("/v2/taskgroup/{task_group_id}", summary="The tasks of a task group")
async def get_task_group(
    task_group_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    gid = str(task_group_id)
    # Only the caller's own tasks: a group they have none in is one that does not
    # exist, whoever else has used its id.
    mine = await run_in_threadpool(ctx.store.task_group_tasks, gid, who.user_id)
    if not mine:
        raise not_found("task_group", gid)
    try:
        # The official Executor reloads a group, then reads its queue: declare it
        # again in case it expired meanwhile.
        streamed = await ctx.lifecycle.reopen_stream(who.user_id, gid)
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    return {
        "taskgroup_id": gid,
        "create_websockets_queue": streamed,
        "tasks": [{"id": task.id, "created_at": task.created_at} for task in mine],
    }
