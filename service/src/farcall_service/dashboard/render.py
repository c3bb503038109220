"""Pages from Jinja2 templates (autoescaped), with headers that keep them private.

No inline script or style: the Content-Security-Policy allows only this service's
own static files, so an injected tag would do nothing even if escaping missed it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from farcall_service.dashboard import PREFIX

HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
}


def _when(value: float | None) -> str:
    if value is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("farcall_service.dashboard", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    env.globals["prefix"] = PREFIX
    return env


ENVIRONMENT = _environment()


def page(template: str, context: Mapping[str, Any], status: int = 200,
         headers: Mapping[str, str] | None = None) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})
