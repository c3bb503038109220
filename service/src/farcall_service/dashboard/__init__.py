"""The web dashboard: endpoints, functions and tasks as pages, under ``/dashboard/``.

People sign in through the service's own OAuth login page, as the farcall CLI does;
the access token that comes back is kept in an HttpOnly cookie and checked on every
request by the same code that checks a bearer token (``auth.identify``), and every
page asks ``access`` what its viewer may see, so a page never shows what the API
would not. Modules: ``session`` (sign-in, cookie, CSRF), ``views`` (what a page
shows, read from the store), ``render`` (Jinja2 templates and headers), ``live``
(server-sent events), ``routes`` and ``admin_routes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Where the dashboard's pages live.
PREFIX = "/dashboard"


def install(app: FastAPI) -> None:
    """Add the dashboard's routes to ``app`` (after the API's: they are not hot)."""
    from farcall_service.dashboard import admin_routes, routes

    for module in (routes, admin_routes):
        app.router.routes.extend(module.router.routes)
