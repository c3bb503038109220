"""Transports: the ``http`` one and one written to the Protocol alone pass the contract.

The second is what a third party would write: plain ``urllib`` requests, no channel.
A Client over it sends every call, submissions and result waits included, through
``request``.
"""

from __future__ import annotations

import json as jsonlib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
from farcall.plugins import get_plugin_manager, hookimpl
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Authorizer, TransportType
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable
from farcall.testing.transport_contract import TransportContract

pytest.importorskip("farcall_service")


class UrllibTransport:
    """One urllib request per call; no channel, no retries."""

    def __init__(self, base_url: str, authorizer: Authorizer | None,
                 settings: Mapping[str, Any]) -> None:
        self.base_url = base_url.rstrip("/")
        self.authorizer = authorizer
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None, timeout: float | None = None) -> Any:
        self.requests.append((method, path))
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Accept": "application/json"}
        header = self.authorizer.get_authorization_header() if self.authorizer else None
        if header:
            headers["Authorization"] = header
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or 60) as answer:
                data = answer.read()
        except urllib.error.HTTPError as exc:
            error = jsonlib.loads(exc.read() or b"{}")
            raise FarcallAPIError(method, path, exc.code, str(error.get("code", "ERROR")),
                                  str(error.get("message", ""))) from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise ServiceUnreachable(f"{method} {path}: {exc}") from None
        return jsonlib.loads(data) if data else None

    def open_channel(self, path: str, fallback: Any, on_push: Any = None) -> None:
        return None

    def close(self) -> None:
        pass


class UrllibPlugin:
    @staticmethod
    @hookimpl
    def farcall_transports() -> Iterable[TransportType]:
        return [TransportType("urllib", UrllibTransport, "plain urllib requests")]


class TestHttpTransport(TransportContract):
    transport_name = "http"
    settings = {"retries": 1}  # the refused requests fail fast


class TestATransportWrittenToTheProtocol(TransportContract):
    transport_name = "urllib"

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        pm = get_plugin_manager()
        pm.register(UrllibPlugin, name="urllib_transport")
        return pm

    def test_a_client_sends_submissions_and_waits_through_it(
        self, plugin_manager: FarcallPluginManager, service: Any
    ) -> None:
        from farcall import Client

        client = Client(service.url, token=service.token, transport="urllib",
                        plugin_manager=plugin_manager)
        assert client.session.channel(open_one=True) is None
        function_id = client.register_source_code("def double(x):\n    return 2 * x\n",
                                                  "double")
        endpoint_id = client.transport.request(
            "POST", "/v3/endpoints", json={"endpoint_name": "urllib"})["endpoint_id"]
        task_id = client.run(4, endpoint_id=endpoint_id, function_id=function_id)
        assert client.wait_any([task_id], timeout=0.5) == {}
        assert client.get_batch_result([task_id])[task_id]["pending"] is True
        sent = client.transport.requests
        assert ("POST", f"/v3/endpoints/{endpoint_id}/submit") in sent
        assert ("POST", "/farcall/v1/tasks/wait") in sent
