"""Signing in to the dashboard, its session cookie, and CSRF tokens.

Sign-in is the OAuth authorization-code flow with PKCE against this service's own
provider, with farcall's native client, so it needs no secret and no registration:
the dashboard is just another application a user lets act for them. The access
token it gets is the session, kept in an HttpOnly cookie and never shown to
scripts; signing out revokes it. The CSRF token of a session is an HMAC of that
token: a page can carry it, another site can neither read nor compute it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from farcall_service.auth import Identity, client_address, identify_async
from farcall_service.context import ServiceContext, get_context
from farcall_service.dashboard import PREFIX
from farcall_service.errors import ApiError
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_service.oauth import PREFIX as AUTH_PREFIX
from farcall_service.oauth.codes import s256
from farcall_service.oauth.scopes import COMPUTE_SCOPE
from farcall_service.tokens import hash_token

SESSION_COOKIE = "farcall_session"
#: The state and PKCE verifier of a sign-in under way.
LOGIN_COOKIE = "farcall_login"
CALLBACK_PATH = PREFIX + "/callback"
#: Dashboard requests are charged to a budget of their own, apart from the SDK's.
BUDGET = "dashboard:"


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page, with the CSRF token their forms carry."""

    who: Identity
    csrf: str


class SignedOut(Exception):
    """The request has no live session: the page sends the browser to sign in."""


def csrf_token(session: str) -> str:
    return hmac.new(session.encode(), b"farcall dashboard csrf", hashlib.sha256).hexdigest()


def check_csrf(request: Request, sent: str) -> None:
    """A POST's form token must be its session's: else 403, changing nothing."""
    session = request.cookies.get(SESSION_COOKIE, "")
    if not session or not hmac.compare_digest(csrf_token(session).encode(), sent.encode()):
        raise ApiError(403, "CSRF_FAILED", "the form's security token does not match this "
                       "session (CSRF check failed): reload the page and try again")


async def viewer(request: Request) -> Viewer:
    """The signed-in viewer, by the same checks as a bearer token (expiry, revocation,
    rate limits); :class:`SignedOut` without a live session."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise SignedOut
    try:
        who = await identify_async(get_context(request), token, BUDGET, client_address(request))
    except ApiError as exc:
        if exc.status == 401:
            raise SignedOut from None
        raise
    return Viewer(who, csrf_token(token))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + CALLBACK_PATH


def start_sign_in(request: Request, response_for: type[Response]) -> Response:
    """Off to the login page, remembering a fresh state and PKCE verifier."""
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    query = urlencode({
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": callback_url(request),
        "response_type": "code", "scope": COMPUTE_SCOPE, "state": state,
        "code_challenge": s256(verifier), "code_challenge_method": "S256",
    })
    response = response_for(f"{AUTH_PREFIX}/v2/oauth2/authorize?{query}", status_code=303)
    response.set_cookie(LOGIN_COOKIE, f"{state}.{verifier}", max_age=600, httponly=True,
                        samesite="lax", secure=_secure(request), path=CALLBACK_PATH)
    return response


def pending_verifier(request: Request, state: str) -> str | None:
    """The PKCE verifier of the sign-in this callback ends, if ``state`` is its own."""
    saved_state, _, verifier = request.cookies.get(LOGIN_COOKIE, "").partition(".")
    if not saved_state or not verifier or not state:
        return None
    return verifier if hmac.compare_digest(saved_state.encode(), state.encode()) else None


def set_session(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax",
                        secure=_secure(request), path=PREFIX)
    response.delete_cookie(LOGIN_COOKIE, path=CALLBACK_PATH)


def end_session(ctx: ServiceContext, request: Request, response: Response) -> None:
    """Revoke the session's token (an OAuth one; an API token is left alone) and
    forget the cookie."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        token_hash = hash_token(token)
        issued = ctx.store.get_oauth_token(token_hash)
        if issued is not None and issued.client_id == NATIVE_CLIENT_ID:
            ctx.store.revoke_oauth_token(token_hash)
            ctx.tokens.invalidate(token_hash)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
