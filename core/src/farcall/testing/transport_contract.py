"""The contract every transport plugin must meet, against a real farcall service.

Use it from a plugin's tests by subclassing and naming the transport::

    from farcall.testing.transport_contract import TransportContract

    class TestMyTransport(TransportContract):
        transport_name = "mine"

The suite starts ``farcall server`` on loopback (it needs farcall-service and
farcall-testkit installed; override the ``service`` fixture to use another service)
and builds the transport through the installed plugins, as
``Client(transport="mine")`` does. It checks the :class:`~farcall.plugins.types.Transport`
Protocol call by call, then runs a Client over the transport for every kind of call
the User Guide makes, a worker serving the tasks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import Transport, TransportType
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable
from farcall.sdk.login import StaticTokenAuthorizer
from farcall.sdk.session import CHANNEL_PATH, RequestFallback
from farcall.serialize import pack_buffers
from farcall.testing import samples

#: A function registered as source text, so that nothing needs to deserialize code.
SOURCE = "def square(x):\n    return x * x\n"
#: Arguments ``(7,)`` and no keyword arguments, as JSON (strategy ``11``).
PAYLOAD = pack_buffers(["11\n[7]", "11\n{}"])


@dataclass(frozen=True)
class LiveService:
    """A service to test against, and a user's static token there."""

    url: str
    token: str


class TransportContract:
    """Subclass and set ``transport_name``; ``settings`` are handed to its factory."""

    transport_name: ClassVar[str]
    #: Extra settings for the factory (the Client passes its own through).
    settings: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture(scope="class")
    @classmethod
    def service(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
        pytest.importorskip("farcall_service")
        testkit = pytest.importorskip("farcall_testkit.service")
        home: Path = tmp_path_factory.mktemp("transport-contract")
        testkit.admin(home, "user", "add", "contract")
        token = testkit.admin(home, "token", "create", "contract").splitlines()[-1].strip()
        with testkit.ServiceProcess(home) as process:
            yield LiveService(process.url, token)

    @pytest.fixture
    def record(self, plugin_manager: FarcallPluginManager) -> TransportType:
        return plugin_manager.get_transport(self.transport_name)

    def build(self, record: TransportType, url: str, token: str) -> Transport:
        """The transport as a Client builds it."""
        settings = {"base_url": url, "token": token, **self.settings}
        return record.factory(url, StaticTokenAuthorizer(token), settings)

    @pytest.fixture
    def transport(self, record: TransportType, service: LiveService) -> Iterator[Transport]:
        transport = self.build(record, service.url, service.token)
        yield transport
        transport.close()

    # -- the Protocol, call by call ---------------------------------------------------------

    def test_record_builds_a_transport(self, record: TransportType, transport: Transport) -> None:
        assert record.name == self.transport_name
        assert isinstance(transport, Transport)

    def test_request_sends_json_and_returns_the_answer(self, transport: Transport) -> None:
        name = f"contract-{uuid.uuid4().hex[:8]}"
        created = transport.request("POST", "/v3/endpoints", json={"endpoint_name": name})
        endpoint_id = str(uuid.UUID(created["endpoint_id"]))
        assert transport.request("GET", f"/v2/endpoints/{endpoint_id}")["name"] == name

    def test_request_sends_params(self, transport: Transport) -> None:
        tag = uuid.uuid4().hex[:10]
        for n in range(2):
            _register(transport, f"{tag}_{n}")
        found = transport.request("GET", "/farcall/v1/functions/search",
                                  params={"q": tag, "limit": 1})
        assert found["total"] == 2 and len(found["results"]) == 1

    def test_timeout_bounds_one_request(self, transport: Transport) -> None:
        task_id = _submit(transport)
        long_poll = {"task_ids": [task_id], "timeout": 1.0}  # nobody runs it: 1 s of waiting
        answer = transport.request("POST", "/farcall/v1/tasks/wait", json=long_poll, timeout=20)
        assert answer["results"] == {}
        with pytest.raises(ServiceUnreachable):
            transport.request("POST", "/farcall/v1/tasks/wait",
                              json={**long_poll, "timeout": 10.0}, timeout=0.3)

    def test_an_error_answer_is_a_farcall_api_error(
        self, transport: Transport, record: TransportType, service: LiveService
    ) -> None:
        with pytest.raises(FarcallAPIError) as missing:
            transport.request("GET", f"/v2/functions/{uuid.uuid4()}")
        assert missing.value.http_status == 404
        assert missing.value.code and missing.value.code.isupper()
        assert missing.value.message
        stranger = self.build(record, service.url, "fc_not_a_real_token")
        try:
            with pytest.raises(FarcallAPIError) as refused:
                stranger.request("GET", "/v2/endpoints")
            assert refused.value.http_status == 401
        finally:
            stranger.close()

    def test_an_unreachable_service_is_service_unreachable(self, record: TransportType) -> None:
        import socket

        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            nowhere = self.build(record, url, "fc_unused")
            started = time.monotonic()
            try:
                with pytest.raises(ServiceUnreachable):
                    nowhere.request("GET", "/v2/version", timeout=5)
            finally:
                nowhere.close()
        assert time.monotonic() - started < 60

    def test_open_channel_gives_a_usable_channel_or_none(self, transport: Transport) -> None:
        channel = transport.open_channel(CHANNEL_PATH, RequestFallback(transport))
        if channel is None:
            return  # every call goes through request(), as the Client then does
        try:
            function_id = _register(transport, "over_the_channel")
            endpoint_id = _endpoint(transport)
            answer = channel.ask("submit", {"endpoint_id": endpoint_id,
                                            "tasks": {function_id: [PAYLOAD]}}, 30)
            [task_id] = answer["tasks"][function_id]
            waited = channel.ask("wait", {"task_ids": [task_id], "timeout": 0.2}, 30)
            assert waited["results"] == {}
        finally:
            channel.close()

    # -- a Client over it -------------------------------------------------------------------

    def test_a_client_makes_every_call_over_it(
        self, plugin_manager: FarcallPluginManager, service: LiveService
    ) -> None:
        from farcall_testkit.service import MiniWorker

        from farcall import Client, Executor

        client = Client(service.url, token=service.token, transport=self.transport_name,
                        plugin_manager=plugin_manager, **self.settings)
        endpoint_id = _endpoint(client.transport)
        worker = MiniWorker(service.url, service.token, endpoint_id, wait=1.0)
        worker.start()
        try:
            function_id = client.register_function(samples.add)
            assert client.get_function(function_id)["function_name"] == "add"
            task_id = client.run(1, 2, endpoint_id=endpoint_id, function_id=function_id)
            assert client.wait([task_id], timeout=60, progress=False)[task_id]["result"] == 6
            assert client.get_result(task_id) == 6
            batch = client.create_batch()
            for n in range(3):
                batch.add(n, b=10, endpoint_id=endpoint_id, function_id=function_id)
            ids = client.batch_run(batch)
            client.wait(ids, timeout=60, progress=False)
            results = client.get_batch_result(ids)
            assert [results[t]["result"] for t in ids] == [13, 14, 15]
            with Executor(endpoint_id, client=client) as executor:
                assert executor.submit(samples.add, 5, c=1).result(60) == 8
        finally:
            worker.stop()
            client.transport.close()


def _endpoint(transport: Transport) -> str:
    answer = transport.request("POST", "/v3/endpoints", json={"endpoint_name": "contract"})
    return str(answer["endpoint_id"])


def _register(transport: Transport, name: str) -> str:
    body = {"function_name": name, "function_code": SOURCE, "serialized": False}
    return str(transport.request("POST", "/v3/functions", json=body)["function_uuid"])


def _submit(transport: Transport) -> str:
    function_id, endpoint_id = _register(transport, "square"), _endpoint(transport)
    answer = transport.request("POST", f"/v3/endpoints/{endpoint_id}/submit",
                               json={"tasks": {function_id: [PAYLOAD]}})
    return str(answer["tasks"][function_id][0])
