"""Which resource server each scope belongs to, named as Globus Auth names them.

The official SDK expects a token for ``funcx_service`` when it asks for the compute
scope, and globus-sdk files tokens by resource server, so the names must match.
"""

from __future__ import annotations

COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
COMPUTE_RESOURCE_SERVER = "funcx_service"
AUTH_RESOURCE_SERVER = "auth.globus.org"

RESOURCE_SERVERS: dict[str, str] = {
    COMPUTE_SCOPE: COMPUTE_RESOURCE_SERVER,
    "openid": AUTH_RESOURCE_SERVER,
    "profile": AUTH_RESOURCE_SERVER,
    "email": AUTH_RESOURCE_SERVER,
    "urn:globus:auth:scope:auth.globus.org:view_identities": AUTH_RESOURCE_SERVER,
    # The official endpoint asks for it with ``openid``; farcall has no projects API,
    # so it grants nothing beyond what ``openid`` does.
    "urn:globus:auth:scope:auth.globus.org:manage_projects": AUTH_RESOURCE_SERVER,
}


class UnknownScope(ValueError):
    pass


def by_resource_server(scope: str | None) -> dict[str, str]:
    """``{resource_server: "scope scope"}`` in request order; no scope means compute."""
    requested = (scope or "").split() or [COMPUTE_SCOPE]
    grouped: dict[str, list[str]] = {}
    for item in requested:
        server = RESOURCE_SERVERS.get(item)
        if server is None:
            known = ", ".join(sorted(RESOURCE_SERVERS))
            raise UnknownScope(f"unknown scope {item[:200]!r}; this service knows: {known}")
        if item not in grouped.setdefault(server, []):
            grouped[server].append(item)
    return {server: " ".join(items) for server, items in grouped.items()}


#: What each scope lets an application do, in words for the device flow's approval page.
DESCRIPTIONS: dict[str, str] = {
    COMPUTE_SCOPE: "register functions and endpoints, and run tasks, as you",
    "openid": "know who you are (your user id)",
    "profile": "see your user name",
    "email": "see your e-mail address (farcall keeps none)",
    "urn:globus:auth:scope:auth.globus.org:view_identities": "look up your identity",
    "urn:globus:auth:scope:auth.globus.org:manage_projects": "nothing more than openid does",
}


def described(scope: str) -> list[tuple[str, str]]:
    """``(scope, what it allows)`` for each scope of a granted scope string; no scope
    means compute, as in :func:`by_resource_server`."""
    return [(item, DESCRIPTIONS.get(item, item)) for item in (scope.split() or [COMPUTE_SCOPE])]
