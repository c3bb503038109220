"""Functions: registration, lookup, deletion, search, and execution environments."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from farcall_service import access
from farcall_service.auth import Identity, Who
from farcall_service.context import Ctx, ServiceContext
from farcall_service.errors import ApiError, not_found
from farcall_service.models import (
    ContainerAttachment,
    FunctionRegistration,
    SearchHit,
    SearchResults,
)
from farcall_service.payloads import check_function_code, source_function_code
from farcall_service.storage.interface import Function

router = APIRouter(tags=["functions"])


def _register(body: FunctionRegistration, who: Identity, ctx: ServiceContext) -> dict[str, str]:
    if body.serialized:
        code = check_function_code(body.function_code)
    else:
        code = source_function_code(body.function_name, body.function_code)
    group_id = str(body.group) if body.group else None
    if group_id is not None and group_id not in who.groups:
        raise not_found("group", group_id)
    container_id = str(body.container_uuid) if body.container_uuid else None
    if container_id is not None:
        container = ctx.store.get_container(container_id)
        if container is None or container.owner_id != who.user_id:
            raise not_found("container", container_id)
    limits = ctx.json_limits
    meta = limits.check("meta", dict(body.meta or {}))
    function = Function(
        id=str(uuid.uuid4()),
        owner_id=who.user_id,
        name=body.function_name,
        code=code,
        description=limits.check("description", body.description),
        metadata=meta,
        public=body.public,
        group_id=group_id,
        container_id=container_id,
        ha_endpoint_id=str(body.ha_endpoint_id) if body.ha_endpoint_id else None,
        created_at=time.time(),
    )
    ctx.store.create_function(function)
    return {"function_uuid": function.id}


@router.post("/v3/functions", summary="Register a function")
def register_function(
    body: FunctionRegistration,
    who: Who,
    ctx: Ctx,
) -> dict[str, str]:
    return _register(body, who, ctx)


@router.post("/v2/functions", summary="Register a function (v2 route)")
def register_function_v2(
    body: FunctionRegistration,
    who: Who,
    ctx: Ctx,
) -> dict[str, str]:
    return _register(body, who, ctx)


@router.get(
    "/farcall/v1/functions/search",
    summary="farcall: search the functions you may see",
    response_model=SearchResults,
    tags=["farcall"],
)
def search_functions(
    who: Who,
    ctx: Ctx,
    q: Annotated[
        str, Query(max_length=256, description="Words to find in name or description.")
    ] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SearchResults:
    found, total = ctx.store.search_functions(q, who.user_id, who.groups, offset, limit)
    return SearchResults(
        total=total,
        offset=offset,
        limit=limit,
        results=[
            SearchHit(
                function_uuid=fn.id,
                function_name=fn.name,
                description=fn.description,
                owner=fn.owner_id,
                public=fn.public,
                group=fn.group_id,
            )
            for fn in found
        ],
    )


@router.get("/v2/functions/{function_id}", summary="A function's code and metadata")
def get_function(
    function_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, Any]:
    fid = str(function_id)
    fn = access.visible_function(who, ctx.store.get_function(fid), fid)
    return {
        "function_uuid": fn.id,
        "function_name": fn.name,
        "function_code": fn.code,
        "description": fn.description,
        "metadata": fn.metadata,
        "public": fn.public,
        "group": fn.group_id,
        "container_uuid": fn.container_id,
        "owner": fn.owner_id,
    }


@router.delete("/v2/functions/{function_id}", summary="Delete a function you own")
def delete_function(
    function_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> dict[str, int]:
    fid = str(function_id)
    access.owned_function(who, ctx.store.get_function(fid), fid)
    ctx.store.delete_function(fid)
    ctx.functions.invalidate(fid)
    return {"result": 302}


@router.put(
    "/farcall/v1/functions/{function_id}/container",
    summary="farcall: run a function you own in an execution environment",
    tags=["farcall"],
)
def attach_container(
    function_id: uuid.UUID,
    body: ContainerAttachment,
    who: Who,
    ctx: Ctx,
) -> dict[str, str | None]:
    fid = str(function_id)
    fn = access.owned_function(who, ctx.store.get_function(fid), fid)
    container_id = str(body.container_id) if body.container_id else None
    if (fn.public or fn.group_id) and container_id != fn.container_id:
        # The environment is read when a task is claimed: others' queued tasks would
        # run in one they never saw. A shared function is as fixed as its code.
        raise ApiError(
            409, "FUNCTION_SHARED",
            f"function {fid} is shared (public or with a group), so its execution "
            "environment cannot change under the tasks others queued for it; register "
            "a new function with the environment instead")
    if container_id is not None:
        container = ctx.store.get_container(container_id)
        if container is None or container.owner_id != who.user_id:
            raise not_found("container", container_id)
    ctx.store.set_function_container(fid, container_id)
    ctx.functions.invalidate(fid)
    return {"function_uuid": fid, "container_uuid": container_id}
