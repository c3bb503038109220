"""The admin pages: users, groups and memberships, static tokens (revocable here) and
OAuth clients. Each request asks the store afresh whether its viewer is an admin
(``farcall server user add --admin``): a role taken away ends at the next click."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from farcall_service import admin
from farcall_service.context import ServiceContext, get_context
from farcall_service.dashboard import PREFIX, session
from farcall_service.dashboard.routes import page_for, read_form, signed_in
from farcall_service.errors import ApiError
from farcall_service.storage.interface import OAuthClient, StaticToken, UserSummary

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)


@dataclass(frozen=True)
class Overview:
    users: list[UserSummary]
    memberships: list[tuple[str, str, str]]
    tokens: list[tuple[str, StaticToken]]
    clients: list[tuple[str, OAuthClient]]


def require_admin(ctx: ServiceContext, user_id: str) -> None:
    user = ctx.store.get_user(user_id)
    if user is None or not user.admin:
        raise ApiError(403, "ADMIN_ONLY", "only an admin may open the admin pages "
                       "(farcall server user add --admin)")


def _overview(ctx: ServiceContext, user_id: str) -> Overview:
    require_admin(ctx, user_id)
    users = ctx.store.list_users()
    names = {user.id: user.name for user in users}
    clients = [(names.get(client.owner_id, client.owner_id), client) for user in users
               for client in ctx.store.list_oauth_clients(user.id)]
    tokens = [(admin.token_id(token.token_hash), token) for token in ctx.store.list_tokens()]
    return Overview(users, ctx.store.list_memberships(), tokens, clients)


@router.get("")
@signed_in
async def overview(request: Request, viewer: session.Viewer) -> Response:
    ctx = get_context(request)
    found = await run_in_threadpool(_overview, ctx, viewer.who.user_id)
    return page_for("admin.html", viewer, "admin", True, overview=found,
                    revoked=request.query_params.get("revoked", "")[:32])


def _revoke(ctx: ServiceContext, user_id: str, token_id: str) -> StaticToken:
    require_admin(ctx, user_id)
    try:
        found = admin.revoke_token(ctx.store, token_id)
    except admin.AdminError as exc:
        raise ApiError(404, "TOKEN_NOT_FOUND", str(exc)) from None
    ctx.tokens.invalidate(found.token_hash)
    return found


@router.post("/tokens/revoke")
@signed_in
async def revoke(request: Request, viewer: session.Viewer) -> Response:
    form = await read_form(request)
    session.check_csrf(request, form.get("csrf_token", ""))
    found = await run_in_threadpool(_revoke, get_context(request), viewer.who.user_id,
                                    form.get("token_id", "").strip())
    return RedirectResponse(f"{PREFIX}/admin?revoked={admin.token_id(found.token_hash)}",
                            status_code=303)
