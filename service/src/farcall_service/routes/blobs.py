"""Blob routes: large results and payloads, streamed between HTTP bodies and the blob
store (``farcall_service.blobs``). Messages carry references (``farcall.blob_refs``);
the bytes go only through these routes.

Who may do what: an endpoint uploads the result of, and downloads the payload of, a
task it runs (the caller owns the task's endpoint, and the task is running); a user
uploads their own payloads and downloads the results of their own tasks. Anything
else reads as "not found", as for the tasks themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from farcall.blob_refs import (
    BlobReference,
    parse_reference,
    payload_reference,
)
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from farcall_service import access
from farcall_service.auth import Identity, Who
from farcall_service.blobs.interface import BlobNotFound
from farcall_service.blobs.transfer import store_body
from farcall_service.context import Ctx, ServiceContext
from farcall_service.errors import ApiError, not_found
from farcall_service.storage.interface import RUNNING, BlobRecord, Task

router = APIRouter(tags=["farcall: blobs"])

#: The routes whose bodies may be larger than ``max_body_bytes`` (``limits.BodySizeLimit``):
#: they stream into the blob store and check ``max_result_size`` themselves.
UPLOAD_SUFFIXES = ("/result-blob", "/farcall/v1/blobs")


#: How often, and how far apart (seconds), a payload's fetch looks again for the
#: blob to be given its task by the submission that just committed.
ATTACH_CHECKS = 20
ATTACH_WAIT = 0.1


def is_upload(path: str) -> bool:
    return path.endswith(UPLOAD_SUFFIXES)


def _declared(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw and raw.isdigit() else None


@router.get("/farcall/v1/blobs/limits", summary="farcall: the sizes over which values "
            "travel as blobs, and the largest allowed")
async def blob_limits(who: Who, ctx: Ctx) -> dict[str, Any]:
    return {"blob_threshold": ctx.settings.blob_threshold,
            "max_result_size": ctx.settings.max_result_size}


@router.post("/farcall/v1/blobs", summary="farcall: upload a payload (packed args and "
             "kwargs) to submit by reference", status_code=201)
async def upload_payload(request: Request, who: Who, ctx: Ctx) -> JSONResponse:
    await _check_quota(ctx, who, _declared(request))
    ref = await store_body(ctx.blobs, request.stream(), ctx.settings.max_result_size,
                           _declared(request), "payload")
    await _record(ctx, BlobRecord(ref.key, who.user_id, None, ref.size, time.time()))
    reference = BlobReference(ref.key, ref.size)
    return JSONResponse({"key": ref.key, "size": ref.size,
                         "payload": payload_reference(reference)}, status_code=201)


@router.put("/farcall/v1/tasks/{task_id}/result-blob",
            summary="farcall: the endpoint running a task uploads its large result")
async def upload_result(task_id: uuid.UUID, request: Request, who: Who,
                        ctx: Ctx) -> JSONResponse:
    task = await _held_task(ctx, who, str(task_id))
    ref = await store_body(ctx.blobs, request.stream(), ctx.settings.max_result_size,
                           _declared(request), "result")
    await _record(ctx, BlobRecord(ref.key, task.owner_id, task.id, ref.size, time.time()))
    return JSONResponse({"key": ref.key, "size": ref.size,
                         "result": BlobReference(ref.key, ref.size).text()})


@router.get("/farcall/v1/tasks/{task_id}/payload-blob",
            summary="farcall: the endpoint running a task downloads its payload blob")
async def download_payload(task_id: uuid.UUID, key: str, who: Who, ctx: Ctx) -> Response:
    task = await _held_task(ctx, who, str(task_id))
    record = await ctx.in_thread(ctx.store.get_blob, key)
    for _ in range(ATTACH_CHECKS):
        # A task handed out as its submission committed may be asked for before the
        # submission gave the blob its task (just after the commit): a moment more.
        if record is None or record.task_id is not None:
            break
        await asyncio.sleep(ATTACH_WAIT)
        record = await ctx.in_thread(ctx.store.get_blob, key)
    # Only the task's own blob: keys can be guessed (an OID), owners' blobs cannot.
    if record is None or record.task_id != task.id:
        raise not_found("blob", key)
    return await _stream(ctx, BlobReference(key, record.size), task.owner_id,
                         task.id, "application/octet-stream")


@router.get("/farcall/v1/tasks/{task_id}/result",
            summary="farcall: a task's serialized result, streamed (large results live here)")
async def download_result(task_id: uuid.UUID, who: Who, ctx: Ctx) -> Response:
    tid = str(task_id)
    task = await _own_task(ctx, who, tid)
    if task.status != "success":
        raise ApiError(409, "NO_RESULT", f"task {tid} is {task.status}: it has no result")
    ref = parse_reference(task.result)
    if ref is None:
        return Response(task.result or "", media_type="text/plain; charset=utf-8")
    return await _stream(ctx, ref, task.owner_id, tid, "text/plain; charset=utf-8")


async def _check_quota(ctx: ServiceContext, who: Identity, size: int | None) -> None:
    """A payload is refused up front when its owner's stored bytes are over their quota
    already, or would be with its declared size (blobs count in them)."""
    quota = ctx.settings.max_stored_bytes_per_user
    if not quota:
        return
    stored = (await ctx.in_thread(ctx.store.usage, who.user_id))[1]
    if stored + (size or 0) > quota:
        raise ApiError(413, "QUOTA_EXCEEDED",
                       f"quota of stored bytes per user exceeded: your tasks' payloads, "
                       f"results and blobs take {stored} bytes, and this payload "
                       f"{size if size is not None else 'more'}, over the quota of {quota}; "
                       "delete old tasks (their blobs go with them) or ask for a higher quota")


async def _own_task(ctx: ServiceContext, who: Identity, tid: str) -> Task:
    task = ctx.lifecycle.records([tid]).get(tid) or await ctx.in_thread(ctx.store.get_task, tid)
    return access.visible_task(who, task, tid)


async def _held_task(ctx: ServiceContext, who: Identity, tid: str) -> Task:
    """The task, if it is running on an endpoint the caller serves (owns). To anyone
    else it does not exist: the same 404 as a task that does not."""
    submitting = ctx.lifecycle.submissions_in_flight.get(tid)
    if submitting is not None:  # handed to a claim before its submission committed
        with contextlib.suppress(Exception):
            await asyncio.shield(submitting)
    task = await ctx.in_thread(ctx.store.get_task, tid)
    endpoint = None if task is None else await ctx.in_thread(ctx.endpoint, task.endpoint_id)
    if task is None or endpoint is None or endpoint.owner_id != who.user_id:
        raise not_found("task", tid)
    if task.status != RUNNING:
        raise ApiError(409, "TASK_NOT_HELD",
                       f"task {tid} is {task.status}, not running on an endpoint")
    return task


async def _record(ctx: ServiceContext, record: BlobRecord) -> None:
    try:
        await ctx.in_thread(ctx.store.add_blob, record)
    except BaseException:
        await ctx.in_thread(ctx.blobs.delete, record.key)
        raise


async def _stream(ctx: ServiceContext, ref: BlobReference, owner_id: str, task_id: str | None,
                  media_type: str) -> Response:
    """The blob ``ref`` names, streamed, if the service's record says it is
    ``owner_id``'s (and ``task_id``'s, for a result): a reference is only as good as
    the record behind it, whoever wrote it."""
    record = await ctx.in_thread(ctx.store.get_blob, ref.key)
    if (record is None or record.owner_id != owner_id
            or (task_id is not None and record.task_id != task_id)):
        raise not_found("blob", ref.key)
    chunks = await _open(ctx, ref.key)
    return StreamingResponse(chunks, media_type=media_type,
                             headers={"Content-Length": str(record.size)})


async def _open(ctx: ServiceContext, key: str) -> Iterator[bytes]:
    try:
        return await ctx.in_thread(ctx.blobs.open, key)
    except BlobNotFound:
        raise not_found("blob", key) from None
