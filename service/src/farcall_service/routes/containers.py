"""Execution environments ("containers" in the User Guide): venv, apptainer, docker, podman.

An environment is private to the user who registered it; functions they own can be
attached to it, and endpoints receive it with each task of such a function.

An endpoint puts the location into a command line (``docker run ... {location}``),
so a location must be a plain path or image name (:func:`check_location`): one that
starts with ``-`` would be read as an option (``--privileged``), and whitespace or
control characters have no place in either.
"""

from __future__ import annotations

import re
import time
import uuid

from fastapi import APIRouter

from farcall_service.auth import Who
from farcall_service.context import Ctx
from farcall_service.errors import bad_request, not_found
from farcall_service.models import ContainerDocument, ContainerRegistration
from farcall_service.storage.interface import Container

router = APIRouter(tags=["farcall"])

_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
#: A docker or podman image reference: [host[:port]/]name[/name...][:tag][@digest].
IMAGE = re.compile(
    rf"(?:(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?/)?"
    rf"{_NAME_PART}(?:/{_NAME_PART})*"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)
#: An apptainer image: a path, or a source such as ``docker://...`` or ``library://...``.
APPTAINER = re.compile(r"[A-Za-z0-9/._][^\s]*")


def check_location(kind: str, location: str) -> str:
    """``location`` if it is a plain location for ``kind``; else 400 INVALID_LOCATION."""
    if location.startswith("-"):
        problem = "must not start with '-' (it would be read as an option)"
    elif not location.isprintable() or " " in location:
        problem = "must not contain whitespace or control characters"
    elif kind == "venv" and not location.startswith("/"):
        problem = "of a venv must be an absolute path (its directory or its python)"
    elif kind in ("docker", "podman") and (len(location) > 512 or not IMAGE.fullmatch(location)):
        problem = (f"of a {kind} environment must be an image reference, such as "
                   "'registry.example.org/team/image:1.0'")
    elif kind == "apptainer" and not APPTAINER.fullmatch(location):
        problem = "of an apptainer environment must be an image path or source URI"
    else:
        return location
    raise bad_request("INVALID_LOCATION", f"location {location[:100]!r} {problem}")


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
        location=check_location(body.type, body.location),
        description=ctx.json_limits.check("description", body.description),
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
