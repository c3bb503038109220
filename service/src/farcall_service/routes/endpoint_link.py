"""The endpoint's link to the service: claim tasks, report results, send heartbeats,
over HTTP or the endpoint's WebSocket channel.

Thin adapters over ``farcall_service.lifecycle``: they check that the caller owns the
endpoint (only its owner may serve it) and shape the answers. Results are committed
before they are acknowledged, and a result for a task that is already done is
acknowledged again without being recorded twice, so an endpoint may safely resend
after any failure.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from farcall_service import access
from farcall_service.auth import ENDPOINT_BUDGET, Identity, Who
from farcall_service.cache import MISSING
from farcall_service.channel import serve
from farcall_service.context import Ctx, ServiceContext, get_context
from farcall_service.errors import ApiError
from farcall_service.models import (
    ClaimRequest,
    ClaimResponse,
    GoodbyeRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    ResultsRequest,
    ResultsResponse,
)
from farcall_service.routes.containers import container_document
from farcall_service.routes.endpoints import GOODBYE
from farcall_service.storage.interface import Endpoint, Outcome

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/farcall/v1/endpoints/{endpoint_id}", tags=["farcall: endpoint hand-off"]
)


def _served_endpoint(endpoint_id: str, who: Identity, ctx: ServiceContext) -> Endpoint:
    return _servable(ctx.endpoint(endpoint_id), endpoint_id, who)


def _servable(endpoint: Endpoint | None, endpoint_id: str, who: Identity) -> Endpoint:
    ep = access.owned_endpoint(who, endpoint, endpoint_id)
    if ep.locked_until > time.time():
        retry = max(1, int(ep.locked_until - time.time()))
        raise ApiError(
            409,
            "ENDPOINT_LOCKED",
            f"endpoint {endpoint_id} was stopped by its owner; it may reconnect in {retry} s",
            {"Retry-After": str(retry)},
        )
    return ep


@router.post("/claim", summary="Take queued tasks, long-polling until some exist",
             response_model=ClaimResponse)
async def claim_tasks(
    endpoint_id: uuid.UUID,
    body: ClaimRequest,
    who: Who,
    ctx: Ctx,
) -> JSONResponse:
    return JSONResponse(await _claim(ctx, str(endpoint_id), who, body))


@router.post("/results", summary="Report results; answered once they are committed",
             response_model=ResultsResponse)
async def report_results(
    endpoint_id: uuid.UUID,
    body: ResultsRequest,
    who: Who,
    ctx: Ctx,
) -> JSONResponse:
    return JSONResponse(await _report(ctx, str(endpoint_id), who, body))


async def _claim(ctx: ServiceContext, eid: str, who: Identity,
                 body: ClaimRequest) -> dict[str, Any]:
    cached = ctx.endpoints.get(eid)  # usually cached: no hop to a worker thread then
    if cached is MISSING:
        await run_in_threadpool(_served_endpoint, eid, who, ctx)
    else:
        _servable(cached, eid, who)  # type: ignore[arg-type]
    cancelled: list[str] = []
    claimed = await ctx.lifecycle.claim(eid, body.session, body.max_tasks, body.wait,
                                        cancelled)
    # Built by hand rather than through the response model: a claim can carry hundreds
    # of tasks, and validating what the store just produced would double its cost.
    answer: dict[str, Any] = {"tasks": [
        {
            "task_id": task.id,
            "function_id": task.function_id,
            "payload": task.payload,
            "result_serializers": task.options.result_serializers,
            "resource_specification": task.options.resource_specification,
            "user_endpoint_config": task.options.user_endpoint_config,
            "container": (container_document(task.container).model_dump() if task.container
                          else None),
        }
        for task in claimed
    ]}
    if cancelled:
        answer["cancel"] = cancelled
    return answer


async def _report(ctx: ServiceContext, eid: str, who: Identity,
                  body: ResultsRequest) -> dict[str, Any]:
    limits = ctx.json_limits
    outcomes = [
        Outcome(str(r.task_id), r.status, r.result, r.exception,
                *limits.outcome_fields(r.details, r.exception_data))
        for r in body.results
    ]
    endpoint = ctx.endpoints.get(eid)  # usually cached: no hop to a worker thread then
    if endpoint is MISSING:
        endpoint = await ctx.in_thread(ctx.endpoint, eid)
    access.owned_endpoint(who, endpoint, eid)  # type: ignore[arg-type]
    recorded = await ctx.lifecycle.report(eid, body.session, outcomes)
    return {"acknowledged": recorded.recorded + recorded.duplicates,
            "rejected": recorded.rejected}


@router.websocket("/channel")
async def channel(websocket: WebSocket, endpoint_id: uuid.UUID) -> None:
    """Claims and results reports over one WebSocket, one request at a time
    (``farcall_service.channel``; "The endpoint hand-off protocol" in docs/service.md).
    A claim cut off by its channel closing is requeued by the endpoint's next session."""
    ctx = get_context(websocket)
    eid = str(endpoint_id)

    async def admit(who: Identity) -> None:
        ep = ctx.endpoints.get(eid)
        if ep is MISSING:
            await run_in_threadpool(_served_endpoint, eid, who, ctx)
        else:
            _servable(ep, eid, who)  # type: ignore[arg-type]

    async def claim(who: Identity, body: ClaimRequest) -> dict[str, Any]:
        return await _claim(ctx, eid, who, body)

    async def report(who: Identity, body: ResultsRequest) -> dict[str, Any]:
        return await _report(ctx, eid, who, body)

    await serve(websocket, {"claim": (ClaimRequest, claim), "results": (ResultsRequest, report)},
                ENDPOINT_BUDGET, admit)


@router.post("/heartbeat", summary="Say the endpoint is alive and how busy it is",
             response_model=HeartbeatResponse)
def heartbeat(
    endpoint_id: uuid.UUID,
    body: HeartbeatRequest,
    who: Who,
    ctx: Ctx,
) -> HeartbeatResponse:
    eid = str(endpoint_id)
    _served_endpoint(eid, who, ctx)
    details = body.model_dump(exclude={"session"})
    ctx.lifecycle.heartbeat(eid, body.session, details)
    return HeartbeatResponse(
        status="online",
        offline_timeout=ctx.settings.offline_timeout,
        requeue_timeout=ctx.settings.requeue_timeout,
    )


@router.post("/goodbye", summary="Say the endpoint is stopping: offline at once, its tasks "
             "back in the queue")
def goodbye(
    endpoint_id: uuid.UUID,
    body: GoodbyeRequest,
    ctx: Ctx,
) -> dict[str, Any]:
    """The endpoint's last word when it stops (it has closed its claims first).

    The caller proves itself with the endpoint's current session, not a token: only the
    endpoint process and the service know it (a random UUID no route or log shows), and
    an endpoint that stops because its credentials were revoked must still be able to
    say goodbye. A session of the service's own then takes over, which puts every task
    still claimed back in the queue, and the endpoint's heartbeat details become
    ``{"stopped_at": now}``: offline now (``routes.endpoints``), instead of when its
    heartbeats are missed, and last seen now; its next heartbeat replaces them.
    """
    eid = str(endpoint_id)
    try:  # sessions are chosen by endpoints: only a random one proves anything
        uuid.UUID(body.session)
    except ValueError:
        raise ApiError(400, "INVALID_SESSION", "goodbye needs the endpoint's session to be "
                       "a random UUID: it is the proof that the endpoint sends it") from None
    ep = ctx.store.get_endpoint(eid)
    if ep is None:
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"endpoint {eid} not found")
    if not ep.session_id or not hmac.compare_digest(ep.session_id.encode(),
                                                    body.session.encode()):
        raise ApiError(403, "NOT_CURRENT_SESSION",
                       "goodbye is accepted only from the endpoint's current session")
    now = time.time()
    requeued = ctx.store.heartbeat(eid, f"goodbye-{uuid.uuid4()}", {GOODBYE: now}, now)
    ctx.endpoints.invalidate(eid)
    log.info("endpoint %s said goodbye; %d tasks back in the queue", eid, requeued)
    return {"status": "offline", "requeued": requeued}
