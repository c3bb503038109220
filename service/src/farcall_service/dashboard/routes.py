"""The dashboard's routes. Every page but the sign-in ones needs a live session and
reads through :mod:`~farcall_service.dashboard.views`; every POST checks its CSRF
token first. They are left out of ``/openapi.json``: they answer HTML."""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from farcall_service.context import get_context
from farcall_service.dashboard import PREFIX, live, render, session, views
from farcall_service.errors import ApiError
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_service.oauth.routes import grant
from farcall_service.oauth.tokens import OAuthError
from farcall_service.storage.interface import TaskFilter

router = APIRouter(prefix=PREFIX, include_in_schema=False)

STATIC = {"dashboard.css": "text/css", "live.js": "text/javascript"}
MAX_FORM_BYTES = 16 * 1024

Page = Callable[..., Awaitable[Response]]


def _error(request: Request, viewer: session.Viewer | None, exc: ApiError) -> Response:
    title = "Not found" if exc.status == 404 else "Something is wrong"
    return render.page("error.html", {"viewer": viewer, "title": title, "message": exc.message,
                                      "code": exc.code}, exc.status, exc.headers)


def signed_in(handler: Page) -> Page:
    """A page for a signed-in viewer: the sign-in page for anyone else, and an error
    page (the API's status, code and message) for an :class:`ApiError`."""

    @wraps(handler)
    async def page(request: Request, **kw: Any) -> Response:
        try:
            viewer = await session.viewer(request)
        except session.SignedOut:
            return render.page("signin.html", {"viewer": None}, 401)
        except ApiError as exc:
            return _error(request, None, exc)
        try:
            return await handler(request, viewer, **kw)
        except ApiError as exc:
            return _error(request, viewer, exc)

    signature = inspect.signature(handler)
    page.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name != "viewer"])
    return page


def page_for(template: str, viewer: session.Viewer, section: str, is_admin: bool = False,
             **context: Any) -> Response:
    """A signed-in page: the viewer (for the header and its forms' CSRF token), the
    section the navigation marks, and whether to offer the admin pages."""
    return render.page(template, {"viewer": viewer, "section": section,
                                  "is_admin": is_admin, **context})


async def _is_admin(request: Request, viewer: session.Viewer) -> bool:
    user = await run_in_threadpool(get_context(request).store.get_user, viewer.who.user_id)
    return user is not None and user.admin


def _id(value: str, kind: str) -> str:
    """A path id as the API takes it: a UUID (else not found, as the API would be)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, f"{kind.upper()}_NOT_FOUND", f"{kind} {value[:64]} not found"
                       ) from None


async def read_form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "FORM_TOO_LARGE", "the form is too large")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "BAD_FORM", "the body is not a url-encoded form") from None


# -- signing in and out ---------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    try:
        await session.viewer(request)
    except (session.SignedOut, ApiError):
        return render.page("signin.html", {"viewer": None})
    return RedirectResponse(f"{PREFIX}/endpoints", status_code=303)


@router.get("/sign-in")
async def sign_in(request: Request) -> Response:
    return session.start_sign_in(request, RedirectResponse)


@router.get("/callback")
async def callback(request: Request) -> Response:
    ctx = get_context(request)
    params = request.query_params
    verifier = session.pending_verifier(request, params.get("state", ""))
    if verifier is None or not params.get("code"):
        return _error(request, None, ApiError(
            400, "SIGN_IN_FAILED", "this sign-in was not started here, or it took too long: "
            "sign in again from the dashboard"))
    form = {"grant_type": "authorization_code", "client_id": NATIVE_CLIENT_ID,
            "code": params["code"], "redirect_uri": session.callback_url(request),
            "code_verifier": verifier}
    try:
        issued = await run_in_threadpool(grant, ctx, None, form)
    except OAuthError as exc:
        return _error(request, None, ApiError(400, "SIGN_IN_FAILED", exc.description))
    response = RedirectResponse(f"{PREFIX}/endpoints", status_code=303)
    session.set_session(request, response, issued["access_token"], int(issued["expires_in"]))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    ctx = get_context(request)
    try:
        session.check_csrf(request, (await read_form(request)).get("csrf_token", ""))
    except ApiError as exc:
        return _error(request, None, exc)
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    await run_in_threadpool(session.end_session, ctx, request, response)
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise ApiError(404, "NOT_FOUND", f"no static file {name[:64]}")
    folder = resources.files("farcall_service.dashboard").joinpath("static")
    body = folder.joinpath(name).read_bytes()
    return Response(body, media_type=STATIC[name],
                    headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


# -- pages -------------------------------------------------------------------------------


@router.get("/endpoints")
@signed_in
async def endpoints_page(request: Request, viewer: session.Viewer) -> Response:
    ctx = get_context(request)
    rows = await run_in_threadpool(views.endpoints, ctx, viewer.who)
    return page_for("endpoints.html", viewer, "endpoints", await _is_admin(request, viewer),
                 rows=rows, live="endpoints")


@router.get("/endpoints/{endpoint_id}")
@signed_in
async def endpoint_page(request: Request, viewer: session.Viewer, endpoint_id: str) -> Response:
    ctx = get_context(request)
    eid = _id(endpoint_id, "endpoint")
    row, recent, allowed = await run_in_threadpool(views.endpoint, ctx, viewer.who, eid)
    names = await run_in_threadpool(views.names_for, ctx, viewer.who, recent.tasks)
    return page_for("endpoint.html", viewer, "endpoints", await _is_admin(request, viewer),
                 row=row, recent=recent, allowed=allowed, names=names, live="tasks")


@router.get("/functions")
@signed_in
async def functions_page(request: Request, viewer: session.Viewer) -> Response:
    ctx = get_context(request)
    query = request.query_params.get("q", "")[:256]
    offset = _int(request.query_params.get("offset"), "offset", 1_000_000) or 0
    rows, total = await run_in_threadpool(views.functions, ctx, viewer.who, query, offset)
    return page_for("functions.html", viewer, "functions", await _is_admin(request, viewer),
                 rows=rows, total=total, query=query, offset=offset,
                 page_size=views.PAGE_SIZE)


@router.get("/functions/{function_id}")
@signed_in
async def function_page(request: Request, viewer: session.Viewer, function_id: str) -> Response:
    ctx = get_context(request)
    fid = _id(function_id, "function")
    row, recent = await run_in_threadpool(views.function, ctx, viewer.who, fid)
    names = await run_in_threadpool(views.names_for, ctx, viewer.who, recent.tasks)
    return page_for("function.html", viewer, "functions", await _is_admin(request, viewer),
                 row=row, recent=recent, names=names, live="tasks")


def _int(value: str | None, name: str, limit: int) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) > limit:
        raise ApiError(400, "BAD_QUERY", f"{name} must be a whole number up to {limit}")
    return int(value)


def _task_filter(request: Request) -> tuple[TaskFilter, str]:
    params = request.query_params
    status = params.get("status") or None
    if status is not None and status not in views.STATUSES:
        raise ApiError(400, "BAD_QUERY", f"status must be one of {', '.join(views.STATUSES)}")
    since = params.get("since") or ""
    if since and since not in views.SINCE:
        raise ApiError(400, "BAD_QUERY", f"since must be one of {', '.join(views.SINCE)}")
    ids: dict[str, str | None] = {}
    for name in ("endpoint", "function"):
        value = params.get(name, "").strip()
        try:
            ids[name] = str(uuid.UUID(value)) if value else None
        except ValueError:
            raise ApiError(400, "BAD_QUERY", f"{name} must be an id (a UUID)") from None
    where = TaskFilter(status, ids["endpoint"], ids["function"],
                       time.time() - views.SINCE[since] if since else None)
    return where, since


@router.get("/tasks")
@signed_in
async def tasks_page(request: Request, viewer: session.Viewer) -> Response:
    ctx = get_context(request)
    where, since = _task_filter(request)
    before = _int(request.query_params.get("before"), "before", 2**62)
    page = await run_in_threadpool(views.tasks, ctx, viewer.who, where, before)
    names = await run_in_threadpool(views.names_for, ctx, viewer.who, page.tasks)
    query = urlencode([(k, v) for k, v in request.query_params.items()
                       if k in ("status", "endpoint", "function", "since") and v])
    return page_for("tasks.html", viewer, "tasks", await _is_admin(request, viewer),
                 page=page, names=names, where=where, since=since, before=before, query=query,
                 statuses=views.STATUSES, since_choices=list(views.SINCE), live="tasks")


@router.get("/tasks/{task_id}")
@signed_in
async def task_page(request: Request, viewer: session.Viewer, task_id: str) -> Response:
    ctx = get_context(request)
    view = await run_in_threadpool(views.task, ctx, viewer.who, _id(task_id, "task"))
    return page_for("task.html", viewer, "tasks", await _is_admin(request, viewer), view=view,
                 live="tasks")


@router.get("/groups/{task_group_id}")
@signed_in
async def group_page(request: Request, viewer: session.Viewer, task_group_id: str) -> Response:
    ctx = get_context(request)
    gid = _id(task_group_id, "task_group")
    found = await run_in_threadpool(views.task_group, ctx, viewer.who, gid)
    names = await run_in_threadpool(views.names_for, ctx, viewer.who, found[:200])
    done = sum(1 for task in found if task.status in ("success", "failed", "cancelled"))
    failed = sum(1 for task in found if task.status == "failed")
    return page_for("group.html", viewer, "tasks", await _is_admin(request, viewer),
                 group_id=gid, tasks=found, names=names, done=done, failed=failed, live="tasks")


@router.get("/events")
@signed_in
async def events(request: Request, viewer: session.Viewer) -> Response:
    """Server-sent events: ``changed`` when the viewer's tasks have (``live``)."""
    ctx = get_context(request)
    feed = live.PageFeed(ctx, viewer.who.user_id)
    token = request.cookies.get(session.SESSION_COOKIE, "")
    return StreamingResponse(feed.events(token), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
