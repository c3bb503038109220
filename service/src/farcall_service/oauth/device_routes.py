"""The device flow's routes (RFC 8628) under ``/auth``; its polls go to the token endpoint.

- ``POST /v2/oauth2/device_authorization``: a client (the native one by ``client_id``,
  a confidential one with its secret) asks for a device code and a user code.
- ``GET/POST /v2/oauth2/device``: the verification page. A person types the user code
  (or follows ``verification_uri_complete``, which carries it), sees which application
  asks for which scopes, and signs in to approve, or denies. The form has the sign-in
  page's CSRF cookie and its password throttling; wrong user codes are throttled too.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from farcall_service.auth import client_address
from farcall_service.context import ServiceContext, get_context
from farcall_service.oauth import PREFIX, pages
from farcall_service.oauth.clients import authenticate_client, describe_client
from farcall_service.oauth.device import (
    live,
    new_device_code,
    new_user_code,
    normalize_user_code,
    shown_user_code,
    user_code_hash,
)
from farcall_service.oauth.routes import (
    CSRF_COOKIE,
    csrf_cookie,
    may_try,
    oauth_error,
    password_ok,
    read_form,
    tokens_answer,
    with_csrf_cookie,
)
from farcall_service.oauth.scopes import UnknownScope, by_resource_server, described
from farcall_service.oauth.tokens import OAuthError, new_grant_id
from farcall_service.storage.interface import DeviceGrant
from farcall_service.tokens import hash_token

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

VERIFICATION_PATH = "/v2/oauth2/device"
#: Tries at a fresh user code when one is taken (by chance, 1 in 2.6e10 per live grant).
NEW_CODE_TRIES = 5
WRONG_CODE = "That code is not valid, or it has expired or been used. Check it, or start " \
             "the login on your device again."


# -- the device's request -------------------------------------------------------------------


@router.post("/v2/oauth2/device_authorization")
async def device_authorization(request: Request) -> Response:
    ctx = get_context(request)
    wait = ctx.user_codes.start(client_address(request))
    if wait:
        refused = oauth_error(OAuthError("slow_down", "too many device logins were started "
                                         f"from your address; try again in {wait} s", 429))
        refused.headers["Retry-After"] = str(wait)
        return refused
    try:
        form = await read_form(request)
        answer = await run_in_threadpool(
            _start, ctx, request.headers.get("authorization"), form
        )
    except OAuthError as exc:
        log.info("device authorization refused: %s", exc.error)
        return oauth_error(exc)
    page = str(request.base_url).rstrip("/") + PREFIX + VERIFICATION_PATH
    user_code = answer.pop("user_code")
    return tokens_answer({
        **answer,
        "user_code": user_code,
        "verification_uri": page,
        "verification_uri_complete": f"{page}?user_code={user_code}",
    })


def _start(ctx: ServiceContext, authorization: str | None,
           form: Mapping[str, str]) -> dict[str, Any]:
    client = authenticate_client(ctx.store, authorization, form)
    scope = " ".join(form.get("scope", "").split())
    try:
        by_resource_server(scope)
    except UnknownScope as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    settings = ctx.settings
    now = time.time()
    # A grant is kept one lifetime past its expiry, so a late poll hears expired_token.
    ctx.store.delete_device_grants(now - settings.device_code_ttl)
    device_code = new_device_code()
    for _ in range(NEW_CODE_TRIES):
        user_code = new_user_code()
        grant = DeviceGrant(hash_token(device_code), user_code_hash(user_code), client.id,
                            scope, new_grant_id(), now + settings.device_code_ttl,
                            settings.device_poll_interval)
        if ctx.store.save_device_grant(grant):
            break
    else:
        raise OAuthError("temporarily_unavailable", "no free user code was found; try again",
                         503)
    log.info("client %s started a device login", client.id)
    return {"device_code": device_code, "user_code": shown_user_code(user_code),
            "expires_in": int(settings.device_code_ttl),
            "interval": max(1, math.ceil(settings.device_poll_interval))}


# -- the verification page -------------------------------------------------------------------


def _lookup(ctx: ServiceContext, typed: str, address: str) -> tuple[DeviceGrant | None, str]:
    """The live grant a typed code names, and the code as shown; a wrong code is
    charged to the user-code throttle."""
    code = normalize_user_code(typed)
    grant = ctx.store.find_device_grant(user_code_hash(code)) if code else None
    if not live(grant, time.time()):
        ctx.user_codes.failed(address)
        return None, typed
    assert code is not None
    return grant, shown_user_code(code)


def _too_many(refusal_message: str, retry_after: int) -> Response:
    return pages.error_page(refusal_message, 429, {"Retry-After": str(retry_after)})


async def _confirm(request: Request, ctx: ServiceContext, grant: DeviceGrant, shown: str,
                   csrf: str, **extra: Any) -> Response:
    client = await run_in_threadpool(describe_client, ctx.store, grant.client_id)
    page = pages.device_confirm_page(csrf, shown, client, described(grant.scope), **extra)
    return with_csrf_cookie(request, page, csrf)


async def _entry(request: Request, csrf: str, typed: str = "",
                 error: str | None = None) -> Response:
    status = 400 if error else 200
    page = pages.device_code_page(csrf, error=error, typed=typed[:32], status=status)
    return with_csrf_cookie(request, page, csrf)


@router.get(VERIFICATION_PATH)
async def device_page(request: Request) -> Response:
    ctx = get_context(request)
    csrf = csrf_cookie(request)
    typed = request.query_params.get("user_code", "")
    if not typed:
        return await _entry(request, csrf)
    address = client_address(request)
    refusal = ctx.user_codes.check(address)
    if refusal is not None:
        return _too_many(refusal.message, refusal.retry_after)
    grant, shown = await run_in_threadpool(_lookup, ctx, typed, address)
    if grant is None:
        return await _entry(request, csrf, typed, WRONG_CODE)
    return await _confirm(request, ctx, grant, shown, csrf)


@router.post(VERIFICATION_PATH)
async def device_submit(request: Request) -> Response:
    ctx = get_context(request)
    try:
        form = await read_form(request)
    except OAuthError as exc:
        return pages.error_page(exc.description)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), form.get("csrf_token", "").encode()):
        return pages.error_page(
            "The form's security token does not match (CSRF check failed). Open the "
            "device login page again and enter the code there.", 403)
    address = client_address(request)
    refusal = ctx.user_codes.check(address)
    if refusal is not None:
        return _too_many(refusal.message, refusal.retry_after)
    typed = form.get("user_code", "")
    grant, shown = await run_in_threadpool(_lookup, ctx, typed, address)
    fresh = secrets.token_urlsafe(32)
    if grant is None:
        return await _entry(request, fresh, typed, WRONG_CODE)
    action = form.get("action", "lookup")
    if action == "deny":
        decided = await run_in_threadpool(ctx.store.decide_device_grant, grant.user_code_hash,
                                          None, False, time.time())
        if decided is None:
            return await _entry(request, fresh, typed, WRONG_CODE)
        log.info("a device login of client %s was denied", grant.client_id)
        return pages.device_done_page(False)
    if action != "approve":
        return await _confirm(request, ctx, grant, shown, fresh)
    return await _approve(request, ctx, grant, shown, form, address, fresh)


async def _approve(request: Request, ctx: ServiceContext, grant: DeviceGrant, shown: str,
                   form: Mapping[str, str], address: str, fresh: str) -> Response:
    """Sign in as the authorize page does (same throttle, same hash slots), then approve."""
    username = form.get("username", "").strip()[:255]
    user, user_key, refusal = await run_in_threadpool(may_try, ctx, username, address)
    if refusal is not None:
        return _too_many(refusal.message, refusal.retry_after)
    async with ctx.hash_slots.slot() as have_slot:
        if not have_slot:
            return _too_many("Too many sign-ins are being checked at once; try again in a "
                             "moment.", 1)
        ok = await run_in_threadpool(password_ok, ctx, user, form.get("password", ""),
                                     user_key, address)
    if not ok or user is None:
        log.info("login refused for a user name at the device page")
        return await _confirm(request, ctx, grant, shown, fresh, username=username,
                              error="Wrong user name or password.", status=401)
    decided = await run_in_threadpool(ctx.store.decide_device_grant, grant.user_code_hash,
                                      user.id, True, time.time())
    if decided is None:
        return await _entry(request, fresh, shown, WRONG_CODE)
    log.info("user %s approved a device login of client %s", user.id, grant.client_id)
    return pages.device_done_page(True)
