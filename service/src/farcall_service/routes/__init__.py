"""HTTP routes, one module per area. Every router depends on authentication."""

from __future__ import annotations

from fastapi import FastAPI


def include_routes(app: FastAPI) -> None:
    from farcall_service.routes import containers, endpoints, functions, handoff, meta, tasks

    for module in (meta, functions, containers, endpoints, tasks, handoff):
        app.include_router(module.router)
