"""Execution environments ("containers" in the User Guide): venv, apptainer, docker, podman.

An environment is private to the user who registered it; functions they own can be
attached to it, and endpoints receive it with each task of such a function.
"""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter

from farcall_service.auth import Who
from farcall_service.context import Ctx
from farcall_service.errors import not_found
from farcall_service.models import ContainerDocument, ContainerRegistration
from farcall_service.storage.interface import Container

router = APIRouter(tags=["farcall"])


def container_document(container: Container) -> ContainerDocument:
    return ContainerDocument(
        container_id=container.id,
        name=container.name,
        type=container.type,
        location=container.location,
        description=container.description,
    )


@router.post(
    "/farcall/v1/containers",
    summary="farcall: register an execution environment",
    response_model=ContainerDocument,
)
def register_container(
    body: ContainerRegistration,
    who: Who,
    ctx: Ctx,
) -> ContainerDocument:
    container = Container(
        id=str(uuid.uuid4()),
        owner_id=who.user_id,
        name=body.name,
        type=body.type,
        location=body.location,
        description=body.description,
        created_at=time.time(),
    )
    ctx.store.create_container(container)
    return container_document(container)


@router.get(
    "/farcall/v1/containers/{container_id}",
    summary="farcall: an execution environment you registered",
    response_model=ContainerDocument,
)
def get_container(
    container_id: uuid.UUID,
    who: Who,
    ctx: Ctx,
) -> ContainerDocument:
    cid = str(container_id)
    container = ctx.store.get_container(cid)
    if container is None or container.owner_id != who.user_id:
        raise not_found("container", cid)
    return container_document(container)
