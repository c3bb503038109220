"""HTTP routes, one module per area. Every API router depends on authentication; the
OAuth2 provider under ``/auth`` authenticates by its own rules."""

from __future__ import annotations

from fastapi import FastAPI


def include_routes(app: FastAPI) -> None:
    from farcall_service.routes import containers, endpoints, functions, handoff, meta, tasks

    from farcall_service.oauth import routes as oauth

    for module in (meta, functions, containers, endpoints, tasks, handoff, oauth):
        app.include_router(module.router)
