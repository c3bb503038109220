"""The provider's HTTP routes under ``/auth``, with the paths globus-sdk calls.

- ``GET/POST /v2/oauth2/authorize``: the sign-in form (double-submit CSRF cookie);
  success redirects to the client's ``redirect_uri`` with a code.
- ``GET /v2/web/auth-code``: shows that code, for native apps that read it from stdin.
- ``POST /v2/oauth2/token``: ``authorization_code`` (PKCE), ``refresh_token``
  (rotating), ``client_credentials``, RFC 8693 token exchange of a refresh token
  for an independent second login (an endpoint's own), and RFC 8628's device code
  (the device flow's own routes are in ``device_routes``).
- ``POST /v2/oauth2/token/revoke``, ``POST /v2/oauth2/token/introspect``,
  ``GET /v2/oauth2/userinfo`` (with ``identity_set``), ``GET /v2/api/identities``.

They are left out of ``/openapi.json``: their contract is OAuth2's, and their errors
are RFC 6749's ``{"error", "error_description"}`` (with ``code``/``message`` too).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from farcall_service.auth import client_address, resolve_token
from farcall_service.context import ServiceContext, get_context
from farcall_service.errors import ApiError
from farcall_service.oauth import NATIVE_CLIENT_ID, PREFIX, codes, pages
from farcall_service.oauth.clients import (
    CallingClient,
    authenticate_client,
    describe_client,
    known_client,
    redirect_allowed,
)
from farcall_service.oauth.device import DEVICE_CODE_GRANT, device_token
from farcall_service.oauth.granting import issue, revoke_grant
from farcall_service.oauth.passwords import hash_password, needs_rehash, verify_password
from farcall_service.oauth.scopes import UnknownScope, by_resource_server
from farcall_service.oauth.throttle import Refusal
from farcall_service.oauth.tokens import OAuthError, new_grant_id
from farcall_service.storage.interface import AuthCode, User
from farcall_service.tokens import hash_token

log = logging.getLogger(__name__)

router = APIRouter(prefix=PREFIX, include_in_schema=False)

CSRF_COOKIE = "farcall_csrf"
#: The identity provider of every farcall identity (Globus Auth names its by UUIDs).
IDENTITY_PROVIDER = "farcall"
#: RFC 8693's grant type and the one subject token type accepted (see ``_own_login``).
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """A url-encoded form, without the python-multipart dependency."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the body is not a url-encoded form") from None
    return dict(pairs)


def oauth_error(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error, "error_description": exc.description,
            "code": exc.error.upper(), "message": exc.description}
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Basic"
    return JSONResponse(body, status_code=exc.status, headers=headers)


def tokens_answer(body: Mapping[str, Any]) -> JSONResponse:
    return JSONResponse(dict(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


# -- the login form ----------------------------------------------------------------------


def _flow_problem(ctx: ServiceContext, flow: Mapping[str, str], host: str) -> str | None:
    """Why this authorize request cannot be served, or None."""
    if not known_client(ctx.store, flow.get("client_id", "")):
        return "Unknown client_id: this application is not registered with this service."
    if not redirect_allowed(flow.get("redirect_uri", ""), host):
        return "The redirect_uri is not allowed: it must be this service's code page or a " \
               "loopback address."
    if flow.get("response_type", "code") != "code":
        return "Only response_type=code is supported."
    try:
        by_resource_server(flow.get("scope"))
    except UnknownScope as exc:
        return str(exc)
    challenge = flow.get("code_challenge", "")
    if challenge:
        problem = codes.valid_challenge(challenge, flow.get("code_challenge_method", "plain"))
        if problem:
            return f"PKCE: {problem}."
    elif flow.get("client_id") == NATIVE_CLIENT_ID:
        return "PKCE is required for the native client: the request has no code_challenge."
    return None


def csrf_cookie(request: Request) -> str:
    value = request.cookies.get(CSRF_COOKIE, "")
    return value if len(value) >= 32 and value.isascii() else secrets.token_urlsafe(32)


def with_csrf_cookie(request: Request, response: Response, value: str) -> Response:
    response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict", path=PREFIX,
                        secure=request.url.scheme == "https")
    return response


@router.get("/v2/oauth2/authorize")
async def authorize_form(request: Request) -> Response:
    ctx = get_context(request)
    flow = {k: v for k, v in request.query_params.items() if k in pages.FLOW_FIELDS}
    problem = await run_in_threadpool(_flow_problem, ctx, flow, request.url.netloc)
    if problem:
        return pages.error_page(problem)
    client = await run_in_threadpool(describe_client, ctx.store, flow["client_id"])
    csrf = csrf_cookie(request)
    return with_csrf_cookie(request, pages.login_page(flow, csrf, client=client), csrf)


@router.post("/v2/oauth2/authorize")
async def authorize_submit(request: Request) -> Response:
    ctx = get_context(request)
    try:
        form = await read_form(request)
    except OAuthError as exc:
        return pages.error_page(exc.description)
    flow = {k: v for k, v in form.items() if k in pages.FLOW_FIELDS}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf_token", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return pages.error_page(
            "The form's security token does not match (CSRF check failed). Open the login "
            "link again and sign in from that page.",
            403,
        )
    problem = await run_in_threadpool(_flow_problem, ctx, flow, request.url.netloc)
    if problem:
        return pages.error_page(problem)
    username = form.get("username", "").strip()[:255]
    address = client_address(request)
    user, user_key, refusal = await run_in_threadpool(may_try, ctx, username, address)
    if refusal is not None:
        return pages.error_page(refusal.message, 429,
                                {"Retry-After": str(refusal.retry_after)})
    async with ctx.hash_slots.slot() as have_slot:
        if not have_slot:
            return pages.error_page("Too many sign-ins are being checked at once; try "
                                    "again in a moment.", 429, {"Retry-After": "1"})
        code = await run_in_threadpool(_sign_in, ctx, flow, user, form.get("password", ""),
                                       user_key, address)
    if code is None:
        log.info("login refused for a user name at the authorize page")
        client = await run_in_threadpool(describe_client, ctx.store, flow["client_id"])
        fresh = secrets.token_urlsafe(32)
        page = pages.login_page(flow, fresh, error="Wrong user name or password.",
                                username=username, status=401, client=client)
        return with_csrf_cookie(request, page, fresh)
    target = _add_query(flow["redirect_uri"], {"code": code, "state": flow.get("state", "")})
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def may_try(ctx: ServiceContext, username: str,
            address: str) -> tuple[User | None, str, Refusal | None]:
    """The user a typed name or id stands for, the throttle's key for it (one key per
    user, however named), and whether the throttle lets this attempt go ahead."""
    user = ctx.store.get_user(username) if username else None
    user_key = f"user:{user.id}" if user is not None else f"name:{username.lower()}"
    return user, user_key, ctx.sign_ins.check(user_key, address)


def password_ok(ctx: ServiceContext, user: User | None, password: str, user_key: str,
                address: str) -> bool:
    """Whether the password is the user's; a failure is charged to the throttle. A hash
    made with older parameters is replaced. Also the device flow's sign-in."""
    stored = ctx.store.get_password_hash(user.id) if user else None
    if not verify_password(password, stored) or user is None:
        ctx.sign_ins.failed(user_key, address)
        return False
    if needs_rehash(stored):
        ctx.store.set_password_hash(user.id, hash_password(password))
    return True


def _sign_in(ctx: ServiceContext, flow: Mapping[str, str], user: User | None,
             password: str, user_key: str, address: str) -> str | None:
    """A new authorization code for a correct password, else None."""
    if not password_ok(ctx, user, password, user_key, address) or user is None:
        return None
    code = codes.new_code()
    ctx.store.save_auth_code(
        AuthCode(
            code_hash=hash_token(code),
            client_id=flow["client_id"],
            user_id=user.id,
            redirect_uri=flow["redirect_uri"],
            scope=flow.get("scope", ""),
            code_challenge=flow.get("code_challenge") or None,
            offline=flow.get("access_type") == "offline",
            grant_id=new_grant_id(),
            expires_at=time.time() + ctx.settings.auth_code_ttl,
        )
    )
    log.info("user %s signed in at the authorize page", user.id)
    return code


def _add_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@router.get("/v2/web/auth-code")
async def auth_code_page(request: Request) -> Response:
    code = request.query_params.get("code", "")
    if not code:
        return pages.error_page("There is no authorization code here: sign in first.")
    return pages.code_page(code)


# -- the token endpoint -------------------------------------------------------------------


@router.post("/v2/oauth2/token")
async def token(request: Request) -> Response:
    ctx = get_context(request)
    try:
        form = await read_form(request)
        answer = await run_in_threadpool(
            grant, ctx, request.headers.get("authorization"), form
        )
    except OAuthError as exc:
        # A waiting device polls every few seconds: its answers are not news.
        waiting = exc.error in ("authorization_pending", "slow_down")
        log.log(logging.DEBUG if waiting else logging.INFO, "token request refused: %s",
                exc.error)
        return oauth_error(exc)
    return tokens_answer(answer)


def grant(ctx: ServiceContext, authorization: str | None,
          form: Mapping[str, str]) -> dict[str, Any]:
    """Answer a token request's form, whoever received it (the token endpoint, the
    dashboard's sign-in): the same checks for every grant type."""
    client = authenticate_client(ctx.store, authorization, form)
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        return _authorization_code(ctx, client, form)
    if grant_type == "refresh_token":
        return _refresh(ctx, client, form)
    if grant_type == "client_credentials":
        return _client_credentials(ctx, client, form)
    if grant_type == TOKEN_EXCHANGE:
        return _own_login(ctx, client, form)
    if grant_type == DEVICE_CODE_GRANT:
        return device_token(ctx, client, form)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type[:40]!r} is not "
                     "supported: use authorization_code, refresh_token, client_credentials, "
                     f"{TOKEN_EXCHANGE} or {DEVICE_CODE_GRANT}")


def _authorization_code(ctx: ServiceContext, client: CallingClient,
                        form: Mapping[str, str]) -> dict[str, Any]:
    code = form.get("code", "")
    if not code:
        raise OAuthError("invalid_request", "the code parameter is missing")
    code_hash = hash_token(code)
    record = ctx.store.redeem_auth_code(code_hash)
    if record is None:
        raise OAuthError("invalid_grant", "the authorization code is not valid")
    if record.used:
        revoke_grant(ctx, record.grant_id)
        raise OAuthError("invalid_grant", "the authorization code was already used; the "
                         "tokens issued for it are revoked. Log in again.")
    if record.client_id != client.id:
        raise OAuthError("invalid_grant", "the authorization code was issued to another client")
    if record.expires_at <= time.time():
        raise OAuthError("invalid_grant", "the authorization code has expired; log in again")
    if form.get("redirect_uri", record.redirect_uri) != record.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the one used to sign in")
    if record.code_challenge:
        if not form.get("code_verifier"):
            raise OAuthError("invalid_grant", "PKCE: the code_verifier is missing")
        if not codes.pkce_matches(form["code_verifier"], record.code_challenge):
            raise OAuthError("invalid_grant",
                             "PKCE: the code_verifier does not match the code_challenge")
    try:
        scopes = by_resource_server(record.scope)
    except UnknownScope as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    issued = issue(ctx, client, record.user_id, scopes, record.grant_id, record.offline)
    if ctx.store.redeem_auth_code(code_hash) is None:
        # Forgotten since it was redeemed: a password change ended the user's logins
        # while these tokens were being made, and must end this one too.
        revoke_grant(ctx, record.grant_id)
        raise OAuthError("invalid_grant", "the password changed meanwhile; log in again")
    return issued


def _unless_password_changed(ctx: ServiceContext, user_id: str, before: str | None,
                             grant_id: str) -> None:
    """Take back tokens just issued if the user's password changed since the refresh
    token was spent: the change (one transaction with the revocation of the user's
    tokens) ended the user's logins, and must end one being renewed at that moment."""
    if ctx.store.get_password_hash(user_id) != before:
        revoke_grant(ctx, grant_id)
        raise OAuthError("invalid_grant", "the password changed meanwhile; log in again")


def _refresh(ctx: ServiceContext, client: CallingClient,
             form: Mapping[str, str]) -> dict[str, Any]:
    presented = form.get("refresh_token", "")
    if not presented:
        raise OAuthError("invalid_request", "the refresh_token parameter is missing")
    token_hash = hash_token(presented)
    current = ctx.store.get_oauth_token(token_hash)
    if current is None or current.kind != "refresh":
        raise OAuthError("invalid_grant", "the refresh token is not valid")
    if current.client_id != client.id:
        raise OAuthError("invalid_grant", "the refresh token was issued to another client")
    password = ctx.store.get_password_hash(current.user_id)
    spent = ctx.store.spend_refresh_token(token_hash)
    if spent is None or spent.revoked:
        revoke_grant(ctx, current.grant_id)
        raise OAuthError("invalid_grant", "the refresh token was already used or revoked; "
                         "log in again")
    if spent.expires_at <= time.time():
        raise OAuthError("invalid_grant", "the refresh token has expired; log in again")
    issued = issue(ctx, client, spent.user_id, {spent.resource_server: spent.scope},
                    spent.grant_id, True)
    _unless_password_changed(ctx, spent.user_id, password, spent.grant_id)
    return issued


def _client_credentials(ctx: ServiceContext, client: CallingClient,
                        form: Mapping[str, str]) -> dict[str, Any]:
    """Tokens that stand for the client's owner: a client is a credential its owner
    gives a program (an endpoint, a pipeline), so what it does is the owner's doing,
    and an official endpoint started with it serves the owner's tasks. The tokens name
    the client, so deleting it revokes them."""
    if not client.confidential or client.owner_id is None:
        raise OAuthError("unauthorized_client",
                         "client_credentials needs a confidential client (id and secret)")
    try:
        scopes = by_resource_server(form.get("scope"))
    except UnknownScope as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    return issue(ctx, client, client.owner_id, scopes, new_grant_id(), False)


def _own_login(ctx: ServiceContext, client: CallingClient,
               form: Mapping[str, str]) -> dict[str, Any]:
    """RFC 8693 token exchange of a refresh token for a second, independent login of the
    same user, client and scope: a long-running process's own (an endpoint's), which
    logging out of the first leaves alone. It gives nothing the refresh token does not
    (that one renews itself until revoked); a password change ends both."""
    if form.get("subject_token_type") != REFRESH_TOKEN_TYPE:
        raise OAuthError("invalid_request", f"token exchange takes a refresh token: "
                         f"subject_token_type must be {REFRESH_TOKEN_TYPE}")
    presented = form.get("subject_token", "")
    record = ctx.store.get_oauth_token(hash_token(presented)) if presented else None
    if (record is None or record.kind != "refresh" or record.revoked
            or record.client_id != client.id):
        raise OAuthError("invalid_grant", "the subject_token is not a live refresh token of "
                         "this client; log in again")
    if record.expires_at <= time.time():
        raise OAuthError("invalid_grant", "the refresh token has expired; log in again")
    password = ctx.store.get_password_hash(record.user_id)
    grant_id = new_grant_id()
    issued = issue(ctx, client, record.user_id, {record.resource_server: record.scope},
                    grant_id, True)
    _unless_password_changed(ctx, record.user_id, password, grant_id)
    log.info("client %s made a second login from a refresh token", client.id)
    return issued


# -- revocation, introspection, userinfo, identities --------------------------------------


@router.post("/v2/oauth2/token/revoke")
async def revoke(request: Request) -> Response:
    ctx = get_context(request)
    try:
        form = await read_form(request)
        await run_in_threadpool(_revoke, ctx, request.headers.get("authorization"), form)
    except OAuthError as exc:
        return oauth_error(exc)
    return tokens_answer({"active": False})


def _revoke(ctx: ServiceContext, authorization: str | None, form: Mapping[str, str]) -> None:
    client = authenticate_client(ctx.store, authorization, form)
    token_hash = hash_token(form.get("token", ""))
    record = ctx.store.get_oauth_token(token_hash)
    if record is None or record.client_id != client.id:
        return  # RFC 7009: an unknown token is not an error
    if record.kind == "refresh":
        revoke_grant(ctx, record.grant_id)
    else:
        ctx.store.revoke_oauth_token(token_hash)
        ctx.tokens.invalidate(token_hash)
    log.info("a %s token of client %s was revoked", record.kind, client.id)


@router.post("/v2/oauth2/token/introspect")
async def introspect(request: Request) -> Response:
    ctx = get_context(request)
    try:
        form = await read_form(request)
        answer = await run_in_threadpool(
            _introspect, ctx, request.headers.get("authorization"), form, _issuer(request)
        )
    except OAuthError as exc:
        return oauth_error(exc)
    return tokens_answer(answer)


def _introspect(ctx: ServiceContext, authorization: str | None, form: Mapping[str, str],
                issuer: str) -> dict[str, Any]:
    client = authenticate_client(ctx.store, authorization, form)
    if not client.confidential:
        raise OAuthError("unauthorized_client", "introspection needs a confidential client")
    found = ctx.store.user_for_oauth_token(hash_token(form.get("token", "")))
    if found is None:
        return {"active": False}
    record, user = found
    # A client may inspect its own tokens and those of the user who owns it.
    mine = record.client_id == client.id or record.user_id in (client.owner_id,
                                                                client.principal_id)
    if not mine or record.revoked or record.expires_at <= time.time():
        return {"active": False}
    return {
        "active": True,
        "token_type": "Bearer" if record.kind == "access" else "refresh_token",
        "scope": record.scope,
        "client_id": record.client_id,
        "sub": user.id,
        "username": user.name,
        "name": user.name,
        "email": None,
        "aud": [record.resource_server],
        "iss": issuer,
        "iat": int(record.created_at),
        "nbf": int(record.created_at),
        "exp": int(record.expires_at),
    }


async def _bearer_user(request: Request) -> User:
    """Who the request's bearer token (any access token of this service) stands for."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise ApiError(401, "UNAUTHORIZED", "this route needs an 'Authorization: Bearer "
                       "<token>' header", {"WWW-Authenticate": "Bearer"})
    return await run_in_threadpool(partial(resolve_token, compute=False,
                                           address=client_address(request)),
                                   get_context(request), header[7:].strip())


@router.api_route("/v2/oauth2/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    user = await _bearer_user(request)
    identity = {"sub": user.id, **_identity(user)}
    del identity["id"]
    return JSONResponse({
        "sub": user.id,
        "preferred_username": user.name,
        "name": user.name,
        "email": None,
        "identity_provider": IDENTITY_PROVIDER,
        "identity_provider_display_name": "farcall",
        "iss": _issuer(request),
        # A farcall user has one identity. The official endpoint, when not privileged,
        # starts work only for commands whose identity set overlaps this one.
        "identity_set": [identity],
    })


def _identity(user: User) -> dict[str, Any]:
    """A user as Globus Auth describes an identity."""
    return {
        "id": user.id,
        "username": user.name,
        "name": user.name,
        "email": None,
        "identity_provider": IDENTITY_PROVIDER,
        "identity_provider_display_name": "farcall",
        "organization": None,
        "status": "used",
    }


@router.get("/v2/api/identities")
async def identities(request: Request) -> Response:
    """The caller's own identity when ``ids`` or ``usernames`` name it (the official
    ``whoami`` looks itself up here). Other users are left out, as unknown ids are:
    user names are not for anyone with a token to list."""
    user = await _bearer_user(request)
    asked = {part.strip() for key in ("ids", "usernames")
             for value in request.query_params.getlist(key) for part in value.split(",")}
    found = [_identity(user)] if asked & {user.id, user.name} else []
    return JSONResponse({"identities": found})


def _issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX + "/"
