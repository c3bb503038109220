"""Endpoints: registration, listing, status, locking, deletion, allowed functions."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from anyio.from_thread import run as run_on_loop
from fastapi import APIRouter

from farcall_service import access
from farcall_service.accepting import broker_unavailable
from farcall_service.auth import Identity, Who
from farcall_service.brokers.interface import BrokerError
from farcall_service.context import Ctx, ServiceContext
from farcall_service.core_endpoints import is_core, open_core
from farcall_service.errors import ApiError, not_found
from farcall_service.models import EndpointRegistration
from farcall_service.storage.interface import Endpoint

router = APIRouter(tags=["endpoints"])
log = logging.getLogger(__name__)

DELETED_REASON = "farcall: the endpoint was deleted before this task ran"
#: The key of an endpoint's last heartbeat details that says it stopped in order.
GOODBYE = "stopped_at"


class Role(str, Enum):
    owner = "owner"
    any = "any"


#: The registration of an official endpoint (AMQP task queues) on a service without a
#: broker: documented, so clients and the fuzz tests know it for an answer, not a fault.
NO_BROKER: dict[int | str, dict[str, Any]] = {
    501: {"description": "An official endpoint's registration, and the service runs without "
                         "a message broker."}}


def _save(
    endpoint_id: str, body: EndpointRegistration, who: Identity, ctx: ServiceContext
) -> dict[str, Any]:
    """Create ``endpoint_id`` for the caller, or update it if the caller owns it."""
    existing = ctx.store.get_endpoint(endpoint_id)
    if existing is not None:
        access.owned_endpoint(who, existing, endpoint_id)
    elif ctx.store.endpoint_id_taken(endpoint_id):
        raise not_found("endpoint", endpoint_id)
    elif not body.endpoint_name:
        raise ApiError(422, "INVALID_REQUEST", "endpoint_name is required to register")
    core = not body.amqp_tasks and is_core(body.metadata)
    if (body.amqp_tasks or core) and ctx.broker.endpoints is None:
        raise ApiError(501, "NOT_IMPLEMENTED",
                       "this farcall service has no AMQP broker for endpoint task queues, "
                       "which the official globus-compute-endpoint needs (start it with "
                       "--broker amqp://user:pass@host:5672/vhost)")
    ctx.json_limits.check("metadata", body.metadata)
    allowed = _allowed(body, existing)
    if body.allowed_functions:
        ctx.json_limits.check("allowed_functions", list(allowed or ()))
    endpoint = Endpoint(
        id=endpoint_id,
        owner_id=who.user_id,
        name=body.endpoint_name or (existing.name if existing else ""),
        display_name=(
            body.display_name
            if body.display_name is not None
            else (existing.display_name if existing else None)
        ),
        metadata=(
            body.metadata if body.metadata is not None else (existing.metadata if existing else {})
        ),
        public=(
            body.public if body.public is not None else (existing.public if existing else False)
        ),
        allowed_functions=allowed,
        created_at=existing.created_at if existing else time.time(),
    )
    ctx.store.save_endpoint(endpoint)
    ctx.endpoints.invalidate(endpoint_id)
    answer: dict[str, Any] = {
        "endpoint_id": endpoint.id,
        "name": endpoint.name,
        "display_name": endpoint.display_name,
        "public": endpoint.public,
        "restricted": endpoint.allowed_functions is not None,
        "allowed_functions": list(endpoint.allowed_functions or ()),
    }
    try:
        if body.amqp_tasks:
            answer["amqp_creds"] = run_on_loop(ctx.lifecycle.open_endpoint_queue, endpoint_id)
        elif core and ctx.broker.endpoints is not None:
            answer.update(run_on_loop(open_core, ctx.lifecycle, endpoint_id,
                                      ctx.broker.endpoints))
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    return answer


def _allowed(body: EndpointRegistration, existing: Endpoint | None) -> tuple[str, ...] | None:
    """A non-empty list restricts the endpoint, an empty one lifts it, none keeps it."""
    if body.allowed_functions is None:
        return existing.allowed_functions if existing else None
    return tuple(str(f) for f in body.allowed_functions) or None


def _register(body: EndpointRegistration, who: Identity, ctx: ServiceContext) -> dict[str, Any]:
    endpoint_id = str(body.endpoint_uuid) if body.endpoint_uuid else _same_core(body, who, ctx)
    return _save(endpoint_id or str(uuid.uuid4()), body, who, ctx)


def _same_core(body: EndpointRegistration, who: Identity, ctx: ServiceContext) -> str | None:
    """The caller's core endpoint this registration without an id repeats: same name,
    host and local user. A core endpoint that did not get (or keep) its answer
    registers again without an id; that must not make another endpoint."""
    if not is_core(body.metadata):
        return None
    metadata = body.metadata or {}
    for ep in ctx.store.list_endpoints(who.user_id, include_public=False):
        if (ep.owner_id == who.user_id and ep.name == body.endpoint_name
                and is_core(ep.metadata)
                and all(ep.metadata.get(key) == metadata.get(key)
                        for key in ("hostname", "local_user"))):
            return ep.id
    return None


@router.post("/v3/endpoints", summary="Register an endpoint",
             responses=NO_BROKER)
def register_endpoint(
    body: EndpointRegistration,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    return _register(body, who, ctx)


@router.post("/v2/endpoints", summary="Register an endpoint (v2 route)",
             responses=NO_BROKER)
def register_endpoint_v2(
    body: EndpointRegistration,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    return _register(body, who, ctx)


@router.put("/v3/endpoints/{endpoint_id}", summary="Register or update an endpoint by id",
            responses=NO_BROKER)
def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointRegistration,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    return _save(str(endpoint_id), body, who, ctx)


@router.get("/v2/endpoints", summary="Endpoints you own, or (role=any) also public ones")
def list_endpoints(
    who: Who,
    ctx: Ctx,
    role: Role = Role.owner,
) -> list[dict[str, Any]]:
    return [
        {
            "uuid": ep.id,
            "name": ep.name,
            "display_name": ep.display_name,
            "owner": ep.owner_id,
            "is_owner": ep.owner_id == who.user_id,
            "public": ep.public,
        }
        for ep in ctx.store.list_endpoints(who.user_id, include_public=role is Role.any)
    ]


@router.get("/v2/endpoints/{endpoint_id}", summary="An endpoint's details")
def get_endpoint(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    eid = str(endpoint_id)
    ep = access.visible_endpoint(who, ctx.store.get_endpoint(eid), eid)
    return {
        "uuid": ep.id,
        "name": ep.name,
        "display_name": ep.display_name,
        "owner": ep.owner_id,
        # The farcall SDK reads code-capable results only from endpoints it trusts.
        "is_owner": ep.owner_id == who.user_id,
        "public": ep.public,
        "hostname": ep.metadata.get("hostname"),
        "endpoint_version": ep.metadata.get("endpoint_version"),
        "metadata": ep.metadata,
        "restricted": ep.allowed_functions is not None,
        "allowed_functions": list(ep.allowed_functions or ()),
        "status": _status(ep, ctx),
    }


def _status(ep: Endpoint, ctx: ServiceContext) -> str:
    """Online while the endpoint has spoken within ``offline_timeout`` or is long-polling,
    unless its last word was goodbye (``endpoint_link.goodbye``). An endpoint that says
    how often it beats (the official one, over AMQP) has two of its periods if that is
    longer, and is offline once it said it stops (a period of 0)."""
    window = ctx.settings.offline_timeout
    period = ep.heartbeat.get("heartbeat_period")
    if isinstance(period, (int, float)) and not isinstance(period, bool):
        window = max(window, 2 * period) if period > 0 else 0
    now = time.time()
    recent = ep.last_seen is not None and now - ep.last_seen < window
    said_goodbye = GOODBYE in ep.heartbeat
    return "online" if (recent and not said_goodbye) or ctx.lifecycle.online(ep.id) else "offline"


@router.get("/v2/endpoints/{endpoint_id}/status", summary="Whether an endpoint is online")
def endpoint_status(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    """Its owner sees its load; anyone else (a public endpoint's users) only whether
    it is up and how many workers it has: its idle workers and queues are built from
    other users' tasks, and would tell when and how much they run."""
    eid = str(endpoint_id)
    ep = access.visible_endpoint(who, ctx.store.get_endpoint(eid), eid)
    beat = ep.heartbeat
    details: dict[str, Any] = {
        "total_workers": beat.get("total_workers", 0),
        "managers": beat.get("managers", 0),
        "last_seen": ep.last_seen,
    }
    if ep.owner_id == who.user_id:
        details.update(
            idle_workers=beat.get("idle_workers", 0),
            pending_tasks=beat.get("pending_tasks", 0),
            outstanding_tasks=ctx.store.count_outstanding(eid),
        )
    return {"status": _status(ep, ctx), "details": details}


@router.delete("/v2/endpoints/{endpoint_id}", summary="Delete an endpoint you own")
def delete_endpoint(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, int]:
    eid = str(endpoint_id)
    access.owned_endpoint(who, ctx.store.get_endpoint(eid), eid)
    ctx.store.delete_endpoint(eid, time.time(), DELETED_REASON)
    ctx.endpoints.invalidate(eid)
    ctx.lifecycle.endpoint_deleted(eid)  # waits on its tasks look again: they failed
    try:
        run_on_loop(ctx.lifecycle.close_endpoint_queue, eid)
    except BrokerError as exc:
        log.warning("endpoint %s is deleted but its broker user and queue stay: %s", eid, exc)
    return {"result": 302}


def _lock(endpoint_id: str, who: Identity, ctx: ServiceContext) -> dict[str, str]:
    access.owned_endpoint(who, ctx.store.get_endpoint(endpoint_id), endpoint_id)
    until = time.time() + ctx.settings.lock_seconds
    ctx.store.lock_endpoint(endpoint_id, until)
    ctx.endpoints.invalidate(endpoint_id)
    ctx.lifecycle.endpoint_changed(endpoint_id)
    return {
        "endpoint_id": endpoint_id,
        "lock_expiration_timestamp": datetime.fromtimestamp(until, timezone.utc).isoformat(),
    }


@router.post("/v3/endpoints/{endpoint_id}/lock", summary="Stop an endpoint for a while")
def lock_endpoint(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, str]:
    return _lock(str(endpoint_id), who, ctx)


@router.post("/v2/endpoints/{endpoint_id}/lock", summary="Stop an endpoint (v2 route)")
def lock_endpoint_v2(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, str]:
    return _lock(str(endpoint_id), who, ctx)


@router.get(
    "/v3/endpoints/{endpoint_id}/allowed_functions",
    summary="Which functions an endpoint runs",
)
def allowed_functions(
    endpoint_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    eid = str(endpoint_id)
    ep = access.visible_endpoint(who, ctx.store.get_endpoint(eid), eid)
    return {
        "endpoint_id": eid,
        "restricted": ep.allowed_functions is not None,
        "functions": list(ep.allowed_functions or ()),
    }
