"""Service information: version negotiation, where AMQP result streams are read, and
the pages a person opening the service's address in a browser lands on."""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, RedirectResponse

import farcall_service
from farcall_service.accepting import broker_unavailable
from farcall_service.auth import Who, authenticate
from farcall_service.brokers.interface import BrokerError
from farcall_service.context import Ctx
from farcall_service.errors import ApiError

router = APIRouter(tags=["service"], dependencies=[Depends(authenticate)])
#: Pages for browsers: they show only what ``/openapi.json`` already tells anyone.
pages = APIRouter(include_in_schema=False)

#: Oldest clients this service speaks to: the first releases with today's routes.
MIN_SDK_VERSION = "2.0.0"
MIN_ENDPOINT_VERSION = "2.0.0"
#: The version of the hosted Globus Compute web API whose routes and documents this
#: service implements (v2 and v3, as the 4.19 SDK and globus-sdk 4's compute client
#: call them). Clients and the official smoke tests compare it with a minimum (0.3.5
#: there), so it is the API's version, not farcall's (``farcall`` in ``service=all``).
API_VERSION = "1.23.0"


@router.get("/v2/version", summary="The API version; with service=all, the oldest "
            "supported SDK and endpoint too")
def version(
    service: Annotated[str | None, Query(max_length=64)] = None,
) -> str | dict[str, Any]:
    """As hosted: the API version alone (a JSON string) unless ``service=all`` asks for
    the whole document, which is what the official Client reads at start."""
    if service != "all":
        return API_VERSION
    info: dict[str, Any] = {
        "api": API_VERSION,
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


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>{title}</h1>
{body}
</body></html>
"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body))


@pages.get("/")
def home() -> HTMLResponse:
    """What a browser pointed at the service's address sees: what this is and where to go."""
    return _page(
        f"farcall service {farcall_service.__version__}",
        "<p>This service runs Python functions on endpoints; it speaks the Globus Compute "
        "protocol.</p><ul>"
        '<li><a href="/openapi.json">/openapi.json</a>: the API, as OpenAPI</li>'
        '<li><a href="/auth/">/auth/</a>: signing in</li></ul>'
        "<p>From Python: <code>farcall.Client(base_url=...)</code>; on the command line: "
        "<code>farcall login --base-url ...</code>, then "
        "<code>farcall endpoint configure NAME</code>.</p>",
    )


@pages.get("/docs")
def docs() -> RedirectResponse:
    """The API description (the service ships no interactive API browser)."""
    return RedirectResponse("/openapi.json")


@pages.get("/auth/")
def auth_home() -> HTMLResponse:
    """The sign-in provider's base address: sign-in starts from a client, not here."""
    return _page(
        "farcall sign-in",
        "<p>This is the service's sign-in provider. Sign-in starts from a program: run "
        "<code>farcall login</code> (or create a <code>farcall.Client</code>), and open the "
        "address it prints.</p><p><a href=\"/\">The service</a></p>",
    )
