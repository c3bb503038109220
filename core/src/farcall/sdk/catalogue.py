"""The Client's catalogue calls: functions, execution environments and endpoints.

Plain REST calls through the Client's transport. Lookups (a function, an endpoint's
metadata) are cached for the Client's credentials, as the User Guide describes.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from farcall.sdk.batch import canonical_id

if TYPE_CHECKING:
    from farcall.plugins.types import Transport
    from farcall.serialize import Serializer


class CatalogueCalls:
    """Part of :class:`farcall.Client`: what it registers and looks up."""

    transport: Transport
    serializer: Serializer
    _lookups: dict[tuple[str, str], Any]

    def _cached_lookup(self, kind: str, key: str, fetch: Callable[[], Any]) -> Any:
        try:
            return self._lookups[(kind, key)]
        except KeyError:
            value = self._lookups[(kind, key)] = fetch()
            return value

    def version(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.transport.request(
            "GET", "/v2/version", params={"service": "all"}
        )
        return answer

    # -- functions ----------------------------------------------------------------------

    def register_function(
        self,
        function: Callable[..., Any],
        function_name: str | None = None,
        *,
        description: str | None = None,
        group: Any = None,
        public: bool = False,
        container_uuid: Any = None,
    ) -> str:
        """Register ``function`` and return its id; imports belong inside its body."""
        body: dict[str, Any] = {
            "function_name": function_name or function.__name__,
            "function_code": self.serializer.pack_buffers([self.serializer.serialize(function)]),
            "serialized": True,
            "meta": self._meta(),
            "description": description,
            "public": bool(public),
        }
        if group is not None:
            body["group"] = canonical_id(group, "group")
        if container_uuid is not None:
            body["container_uuid"] = canonical_id(container_uuid, "container_uuid")
        return str(self.transport.request("POST", "/v3/functions", json=body)["function_uuid"])

    def register_source_code(
        self,
        source: str,
        function_name: str,
        *,
        description: str | None = None,
        group: Any = None,
        public: bool = False,
    ) -> str:
        """Register a function given as source text; it is rebuilt with ``exec``."""
        body: dict[str, Any] = {
            "function_name": function_name,
            "function_code": source,
            "serialized": False,
            "meta": self._meta(),
            "description": description,
            "public": bool(public),
        }
        if group is not None:
            body["group"] = canonical_id(group, "group")
        return str(self.transport.request("POST", "/v3/functions", json=body)["function_uuid"])

    def _meta(self) -> dict[str, Any]:
        from farcall import __version__

        return {
            "python_version": platform.python_version(),
            "sdk_version": f"farcall-{__version__}",
            "serde_identifier": self.serializer.code_strategy,
        }

    def get_function(self, function_id: Any) -> dict[str, Any]:
        fid = canonical_id(function_id, "function_id")
        function: dict[str, Any] = self._cached_lookup(
            "function", fid, lambda: self.transport.request("GET", f"/v2/functions/{fid}")
        )
        return function

    def delete_function(self, function_id: Any) -> Any:
        fid = canonical_id(function_id, "function_id")
        self._lookups.pop(("function", fid), None)
        return self.transport.request("DELETE", f"/v2/functions/{fid}")

    def search_function(self, q: str, offset: int = 0, limit: int = 10) -> dict[str, Any]:
        """Functions you may see (your own, your groups', public) matching ``q``.

        Returns ``{"total", "offset", "limit", "results": [...]}``; each result has
        ``function_uuid``, ``function_name``, ``description``, ``owner``, ``public``
        and ``group``.
        """
        params = {"q": q, "offset": offset, "limit": limit}
        found: dict[str, Any] = self.transport.request(
            "GET", "/farcall/v1/functions/search", params=params
        )
        return found

    # -- execution environments ---------------------------------------------------------

    def register_container(
        self,
        location: str,
        container_type: str,
        name: str | None = None,
        description: str | None = None,
    ) -> str:
        """Register an execution environment and return its id, for ``container_uuid``.

        ``container_type`` is ``venv`` (``location`` is a Python interpreter),
        ``apptainer``, ``docker`` or ``podman`` (``location`` is an image).
        """
        body = {
            "name": name or location.rstrip("/").rsplit("/", 1)[-1] or container_type,
            "type": container_type,
            "location": location,
            "description": description,
        }
        answer = self.transport.request("POST", "/farcall/v1/containers", json=body)
        return str(answer["container_id"])

    def get_container(self, container_id: Any) -> dict[str, Any]:
        cid = canonical_id(container_id, "container_id")
        container: dict[str, Any] = self.transport.request("GET", f"/farcall/v1/containers/{cid}")
        return container

    def attach_container(self, function_id: Any, container_id: Any) -> dict[str, Any]:
        """Run a function you own in an execution environment (None detaches it)."""
        fid = canonical_id(function_id, "function_id")
        cid = None if container_id is None else canonical_id(container_id, "container_id")
        self._lookups.pop(("function", fid), None)
        function: dict[str, Any] = self.transport.request(
            "PUT", f"/farcall/v1/functions/{fid}/container", json={"container_id": cid}
        )
        return function

    # -- endpoints ----------------------------------------------------------------------

    def get_endpoints(self, role: str | None = None) -> list[dict[str, Any]]:
        endpoints: list[dict[str, Any]] = self.transport.request(
            "GET", "/v2/endpoints", params={"role": role} if role else None
        )
        return endpoints

    def get_endpoint_status(self, endpoint_id: Any) -> dict[str, Any]:
        eid = canonical_id(endpoint_id, "endpoint_id")
        status: dict[str, Any] = self.transport.request("GET", f"/v2/endpoints/{eid}/status")
        return status

    def get_endpoint_metadata(self, endpoint_id: Any) -> dict[str, Any]:
        eid = canonical_id(endpoint_id, "endpoint_id")
        metadata: dict[str, Any] = self._cached_lookup(
            "endpoint", eid, lambda: self.transport.request("GET", f"/v2/endpoints/{eid}")
        )
        return metadata
