"""Service information: version negotiation, and where AMQP result streams are read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

import farcall_service
from farcall_service.accepting import broker_unavailable
from farcall_service.auth import Who, authenticate
from farcall_service.brokers.interface import BrokerError
from farcall_service.context import Ctx
from farcall_service.errors import ApiError

router = APIRouter(tags=["service"], dependencies=[Depends(authenticate)])

#: Oldest clients this service speaks to: the first releases with today's routes.
MIN_SDK_VERSION = "2.0.0"
MIN_ENDPOINT_VERSION = "2.0.0"


@router.get("/v2/version", summary="Versions and the oldest supported SDK and endpoint")
def version(service: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "api": farcall_service.__version__,
        "min_sdk_version": MIN_SDK_VERSION,
        "min_ep_version": MIN_ENDPOINT_VERSION,
        "min_endpoint_version": MIN_ENDPOINT_VERSION,
        "git_sha": "",
        "farcall": farcall_service.__version__,
    }
    return info


@router.get(
    "/v2/get_amqp_result_connection_url",
    summary="Where to read your task groups' results over AMQP (the official Executor)",
    responses={501: {"description": "The service runs without a message broker."},
               503: {"description": "The message broker cannot be reached."}},
)
async def amqp_result_url(who: Who, ctx: Ctx) -> dict[str, str]:
    try:
        access = await ctx.lifecycle.stream_access(who.user_id)
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    if access is None:
        raise ApiError(
            501,
            "NOT_IMPLEMENTED",
            "this farcall service has no AMQP broker (start it with --broker "
            "amqp://user:pass@host:5672/vhost to stream results); poll task results "
            "with GET /v2/tasks/{id} or POST /v2/batch_status",
        )
    return {"connection_url": access.connection_url, "queue_prefix": access.queue_prefix}
