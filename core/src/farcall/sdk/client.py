"""The Client of the User Guide, speaking the Globus Compute REST API.

Its calls live in modules with one job each: :mod:`farcall.sdk.catalogue`
(functions, environments, endpoints), :mod:`farcall.sdk.running` (submissions),
:mod:`farcall.sdk.results` (reading and waiting for results),
:mod:`farcall.sdk.cancelling` (cancels) and
:mod:`farcall.sdk.session` (the channel that carries submissions and waits).
This module builds a Client from its plugins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.sdk.cancelling import CancelCalls
from farcall.sdk.catalogue import CatalogueCalls
from farcall.sdk.login import (
    FROM_ARGUMENT,
    FROM_ENVIRONMENT,
    authorizer_of,
    choose_login_manager,
)
from farcall.sdk.profile import load_profile
from farcall.sdk.results import ResultCalls
from farcall.sdk.running import RunCalls
from farcall.sdk.session import ChannelSession
from farcall.sdk.trust import EndpointTrust
from farcall.serialize import Serializer
from farcall.serialize.registry import StrategyRegistry

COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"

__all__ = ["COMPUTE_SCOPE", "Client"]


class Client(CatalogueCalls, RunCalls, ResultCalls, CancelCalls):
    """Register functions, run them on endpoints, and collect their results.

    With no arguments the Client finds its service and credentials itself (see
    :mod:`farcall.sdk.profile`). Explicit credentials win: ``login_manager`` or
    ``token=...`` replace the credential chain (:mod:`farcall.sdk.login`);
    ``force_login=True`` logs out first and drops every cached lookup. ``transport``
    and ``result_cache`` name plugins (defaults: ``FARCALL_TRANSPORT`` or ``http``,
    ``FARCALL_RESULT_CACHE`` or ``memory``). Every plugin, serialization strategies
    included, comes from ``plugin_manager`` (default: a new one, see
    :func:`farcall.plugins.get_plugin_manager`).

    ``transport`` carries every REST call; ``session`` (a
    :class:`~farcall.sdk.session.ChannelSession`) carries submissions and result
    waits, over the transport's channel when it opens one.

    Results (and exception data) are read in every installed strategy only from
    endpoints the caller owns and those in ``trusted_endpoints`` (ids, or ``"*"`` for
    all); from any other endpoint they are asked for and read only in
    ``allowed_deserializer_types`` (default: strategies that run no code, JSON), since
    reading a dill or pickle payload runs code its writer chose (see
    :mod:`farcall.sdk.trust`).
    """

    FUNCX_SCOPE = COMPUTE_SCOPE

    def __init__(
        self,
        base_url: str | None = None,
        *,
        login_manager: Any = None,
        force_login: bool = False,
        transport: str | None = None,
        result_cache: str | None = None,
        serializer: Serializer | None = None,
        plugin_manager: FarcallPluginManager | None = None,
        trusted_endpoints: Iterable[Any] | str | None = None,
        allowed_deserializer_types: Iterable[Any] | None = None,
        **settings: Any,
    ) -> None:
        self.plugin_manager = plugin_manager or get_plugin_manager()
        profile = load_profile(base_url)
        self.base_url = profile.base_url
        self.profile = profile
        self.settings: dict[str, Any] = {
            "token": profile.token, "base_url": self.base_url, **settings
        }
        if settings.get("token"):
            self.settings["token_source"] = FROM_ARGUMENT
        elif profile.source == FROM_ENVIRONMENT:
            self.settings["token_source"] = FROM_ENVIRONMENT
        self.login_manager = login_manager or choose_login_manager(
            self.plugin_manager, self.settings
        )
        if force_login:
            self.login_manager.logout()
        self.login_manager.ensure_logged_in()
        authorizer = authorizer_of(self.login_manager, self.base_url)
        transport = transport or os.environ.get("FARCALL_TRANSPORT") or "http"
        result_cache = result_cache or os.environ.get("FARCALL_RESULT_CACHE") or "memory"
        self.transport = self.plugin_manager.get_transport(transport).factory(
            self.base_url, authorizer, self.settings
        )
        self.result_cache = self.plugin_manager.get_result_cache(result_cache).factory(
            self.settings
        )
        self.session = ChannelSession(self.transport, self.keep_result)
        self.serializer = serializer or Serializer(registry=StrategyRegistry(self.plugin_manager))
        self._lookups: dict[tuple[str, str], Any] = {}
        self.trust = EndpointTrust(
            self.serializer, self.get_endpoint_metadata, trusted_endpoints,
            allowed_deserializer_types,
            remember=lambda doc: self.result_cache.put(doc["task_id"], doc),
        )
        self._long_poll = True

    def delete_endpoint(self, endpoint_id: Any) -> dict[str, Any]:
        """Delete an endpoint you own, as the official Client does: the service forgets
        it and fails its unfinished tasks (a running endpoint is refused from then on)."""
        from farcall.sdk.batch import canonical_id

        eid = canonical_id(endpoint_id, "endpoint_id")
        answer: dict[str, Any] = self.transport.request("DELETE", f"/v2/endpoints/{eid}") or {}
        self._lookups.pop(("endpoint", eid), None)
        return answer
