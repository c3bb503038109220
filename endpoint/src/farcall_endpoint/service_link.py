"""The endpoint's side of the hand-off protocol, over the SDK's transport plugin.

The endpoint logs in exactly like an SDK user: the same login-manager chain, fed
from its config, ``FARCALL_TOKEN``/``FARCALL_BASE_URL`` and the ``farcall dev``
profile. Each thread gets its own connection (a :class:`Channel` for claims and
results, an HTTP transport for the rest), so a long-poll claim never delays a
heartbeat or a results flush.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

from farcall.errors import FarcallError
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, Transport
from farcall.sdk.channel import Channel
from farcall.sdk.errors import FarcallAPIError
from farcall.sdk.login import authorizer_of, choose_login_manager
from farcall.sdk.profile import load_profile

from farcall_endpoint import __version__
from farcall_endpoint.config import EndpointConfig

#: Answers after which retrying cannot help: bad credentials, not our endpoint, deleted.
FATAL_STATUSES = (401, 403, 404)


class FatalServiceError(FarcallError):
    """The service refused the endpoint for good (credentials, ownership, deletion)."""


def is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, FarcallAPIError) and exc.http_status in FATAL_STATUSES


class ServiceLink:
    def __init__(self, config: EndpointConfig, pm: FarcallPluginManager, endpoint_id: str) -> None:
        profile = load_profile(config.base_url)
        self.base_url = profile.base_url
        settings: dict[str, Any] = {
            "base_url": self.base_url,  # login managers find the service's /auth/ from it
            **config.login,
            "token": config.token or profile.token,
        }
        if config.login_manager:
            settings["login_manager"] = config.login_manager
        manager = choose_login_manager(pm, settings)
        self._authorizer: Authorizer = authorizer_of(manager, self.base_url)
        self._transport_type = pm.get_transport("http")
        self.endpoint_id = endpoint_id
        self._prefix = f"/farcall/v1/endpoints/{endpoint_id}"

    def transport(self) -> Transport:
        """A new transport without retries: the runner does its own backoff."""
        return self._transport_type.factory(
            self.base_url, self._authorizer, {"retries": 0, "timeout": 60.0}
        )

    def register(self, transport: Transport, config: EndpointConfig) -> dict[str, Any]:
        body = {
            "endpoint_name": config.name,
            "display_name": config.display_name or config.name,
            "metadata": {
                "hostname": platform.node(),
                "endpoint_version": __version__,
                "python_version": platform.python_version(),
                "engine": config.engine_type,
            },
            # An empty list lifts a restriction the config no longer has.
            "allowed_functions": list(config.allowed_functions),
        }
        return transport.request("PUT", f"/v3/endpoints/{self.endpoint_id}", json=body)

    def channel(self) -> Channel:
        """A channel for claims and results (over HTTP if the service has none)."""
        return Channel(self.base_url, f"{self._prefix}/channel", self._authorizer,
                       HandOffOverHttp(self.transport(), self._prefix))

    def claim(self, channel: Channel, session: str, max_tasks: int,
              wait: float) -> list[dict[str, Any]]:
        body = {"session": session, "max_tasks": max_tasks, "wait": wait}
        answer = channel.ask("claim", body, timeout=wait + 30.0)
        return list(answer.get("tasks") or [])

    def report(self, channel: Channel, session: str,
               results: list[dict[str, Any]], timeout: float = 120.0,
               meanwhile: Callable[[], None] | None = None) -> tuple[list[str], list[str]]:
        """Report results; ``meanwhile`` runs while they are on their way."""
        answer = channel.ask("results", {"session": session, "results": results},
                             timeout=timeout, meanwhile=meanwhile)
        return list(answer.get("acknowledged") or []), list(answer.get("rejected") or [])

    def heartbeat(self, transport: Transport, session: str,
                  status: dict[str, int]) -> dict[str, Any]:
        return post(transport, f"{self._prefix}/heartbeat", {"session": session, **status},
                    timeout=30.0)


class HandOffOverHttp:
    """Claims and results as ``POST {prefix}/claim`` and ``/results``: the channel's
    fallback for a service without one."""

    def __init__(self, transport: Transport, prefix: str) -> None:
        self.transport, self.prefix = transport, prefix

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        return post(self.transport, f"{self.prefix}/{operation}", body, timeout)

    def close(self) -> None:
        self.transport.close()


def post(transport: Transport, path: str, body: dict[str, Any], timeout: float) -> Any:
    try:
        return transport.request("POST", path, json=body, timeout=timeout)  # type: ignore[call-arg]
    except TypeError:  # a transport plugin without per-request timeouts
        return transport.request("POST", path, json=body)
