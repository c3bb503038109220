"""What the endpoint commands ask the service about an endpoint: its status, its
deletion, the end of its own login. With the endpoint's own service and credentials,
and without retries: a command should answer at once, not back off."""

from __future__ import annotations

from typing import Any

from farcall_endpoint.config import EndpointConfig, load_config
from farcall_endpoint.connect import OWN_LOGIN, login


def client_for(config: EndpointConfig) -> Any:
    """A farcall Client with the endpoint's service and credentials."""
    from farcall.plugins.manager import get_plugin_manager
    from farcall.sdk.client import Client

    pm = get_plugin_manager()
    base_url, manager = login(config, pm)
    return Client(base_url, login_manager=manager, plugin_manager=pm, retries=0, timeout=10.0)


def add_service_status(entries: list[dict[str, Any]]) -> None:
    """Add each listed endpoint's ``status`` as its service sees it: ``online``,
    ``offline``, ``unregistered`` (never started), or ``unknown`` with the reason in
    ``status_error``."""
    clients: dict[tuple[Any, ...], Any] = {}
    for entry in entries:
        entry["status"] = "-"
        if not entry["id"] or "engine" not in entry:
            continue
        try:
            config = load_config(entry["name"])
            key = (config.base_url, config.token, config.login_manager)
            if key not in clients:
                clients[key] = client_for(config)
            entry["status"] = clients[key].get_endpoint_status(entry["id"])["status"]
        except Exception as exc:
            if getattr(exc, "http_status", None) == 404:
                entry["status"] = "unregistered"
                continue
            entry["status"] = "unknown"
            entry["status_error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def end_own_login(config: EndpointConfig) -> str | None:
    """Revoke the endpoint's own login (:func:`farcall_endpoint.connect.own_login`);
    the reason when that failed, else None. Best effort: its tokens file goes with the
    endpoint's directory anyway."""
    from farcall.plugins.manager import get_plugin_manager

    own = config.directory / OWN_LOGIN
    if not own.exists():
        return None
    try:
        _url, manager = login(config, get_plugin_manager())
        if getattr(manager, "token_file", None) == own:
            manager.logout()
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return None
