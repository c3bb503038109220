"""Service information: version negotiation and the (absent) AMQP result stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

import farcall_service
from farcall_service.auth import authenticate
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
    summary="Not available: farcall streams no results over AMQP yet",
    responses={501: {"description": "No message broker is configured."}},
)
def amqp_result_url() -> dict[str, str]:
    raise ApiError(
        501,
        "NOT_IMPLEMENTED",
        "this farcall service has no AMQP broker; poll task results with "
        "GET /v2/tasks/{id} or POST /v2/batch_status",
    )
