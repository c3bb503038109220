"""The ``farcall`` link: the farcall service's own hand-off protocol.

Registration and heartbeats are REST requests; claims and results travel over the
service's WebSocket channel, or as ``POST .../claim`` and ``.../results`` when the
transport opens no channels (it returns None) or the service has none. Each thread
that calls the link gets a connection of its own, so a long-poll claim never delays
a report or a heartbeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from farcall.errors import LoginRequired
from farcall.plugins.types import Transport
from farcall.sdk.blobs import TRANSFER_TIMEOUT, check_size, encoded, service_limits, streaming
from farcall.sdk.channel import Channel
from farcall.sdk.errors import FarcallAPIError

from farcall_endpoint.engines.interface import EngineStatus
from farcall_endpoint.links.interface import (
    CredentialsRefused,
    EndpointRefused,
    LinkContext,
    Receipt,
    Registration,
    ReportTooLarge,
)
from farcall_endpoint.tasks import Outcome

#: Answers after which retrying cannot help: bad credentials, not our endpoint, deleted.
REFUSALS = (401, 403, 404)
#: How much longer than the long poll itself a claim may take to be answered.
CLAIM_GRACE = 30.0
HEARTBEAT_TIMEOUT = 30.0
#: A goodbye only hastens what missed heartbeats do anyway: the endpoint does not wait long.
GOODBYE_TIMEOUT = 5.0


class HandOffLink:
    """Speaks ``/v3/endpoints/{id}`` and ``/farcall/v1/endpoints/{id}/...``."""

    def __init__(self, context: LinkContext) -> None:
        self.base_url = context.base_url
        self.endpoint_id = context.endpoint_id
        self._open_transport = context.open_transport
        self._open_unsigned = context.open_unsigned_transport
        self._prefix = f"/farcall/v1/endpoints/{context.endpoint_id}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._closed = False
        #: Tasks the service cancelled, from claims' answers, until :meth:`cancelled`.
        self._cancelled: list[str] = []
        self._blob_threshold: int | None = None

    def register(self, registration: Registration) -> Mapping[str, Any]:
        body = {
            "endpoint_name": registration.endpoint_name,
            "display_name": registration.display_name,
            "metadata": dict(registration.metadata),
            "allowed_functions": list(registration.allowed_functions),
        }
        with self._refusals():
            answer = self._connection().transport.request(
                "PUT", f"/v3/endpoints/{self.endpoint_id}", json=body)
        return answer if isinstance(answer, dict) else {}

    def claim(self, session: str, max_tasks: int, wait: float) -> list[dict[str, Any]]:
        body = {"session": session, "max_tasks": max_tasks, "wait": wait}
        with self._refusals():
            answer = self._connection().ask("claim", body, wait + CLAIM_GRACE, None)
        cancel = answer.get("cancel") or []
        if cancel:
            with self._lock:
                self._cancelled.extend(str(task_id) for task_id in cancel)
        return list(answer.get("tasks") or [])

    def cancelled(self) -> list[str]:
        """The tasks the service cancelled since the last call (a claim's ``cancel``)."""
        with self._lock:
            taken, self._cancelled = self._cancelled, []
        return taken

    def report(self, session: str, results: list[Outcome], timeout: float,
               meanwhile: Callable[[], None] | None = None) -> Receipt:
        body = {"session": session, "results": results}
        with self._refusals():
            answer = self._connection().ask("results", body, timeout, meanwhile)
        return Receipt(list(answer.get("acknowledged") or []),
                       list(answer.get("rejected") or []))

    def heartbeat(self, session: str, status: EngineStatus) -> float | None:
        body = {
            "session": session,
            "total_workers": status.total_workers,
            "idle_workers": status.idle_workers,
            "pending_tasks": max(status.pending_tasks, 0),
            "managers": 1,
        }
        with self._refusals():
            answer = self._connection().transport.request(
                "POST", f"{self._prefix}/heartbeat", json=body, timeout=HEARTBEAT_TIMEOUT)
        offline = (answer or {}).get("offline_timeout")
        return float(offline) if offline else None

    def blob_threshold(self) -> int:
        """The service's blob threshold, asked once."""
        if self._blob_threshold is None:
            self._blob_threshold = service_limits(self._connection().transport)[
                "blob_threshold"]
        return self._blob_threshold

    def upload_result(self, task_id: str, result: str) -> str:
        """Stream a large result to the service's blob store; its reference back."""
        chunks, size = encoded(result)
        transport = self._connection().transport
        # Not through ``_refusals``: a task gone (404) or a result too large (413) fails
        # that task, not the endpoint.
        check_size(transport, size, "result")
        answer = streaming(transport, "upload")(
            "PUT", f"/farcall/v1/tasks/{task_id}/result-blob", chunks, size=size,
            timeout=TRANSFER_TIMEOUT)
        return str(answer["result"])

    def fetch_payload(self, task_id: str, key: str) -> str:
        """The payload (packed args and kwargs) a task's submitter uploaded as a blob."""
        chunks = streaming(self._connection().transport, "download")(
            f"/farcall/v1/tasks/{task_id}/payload-blob", params={"key": key},
            timeout=TRANSFER_TIMEOUT)
        return b"".join(chunks).decode()

    def goodbye(self, session: str) -> None:
        """Close every connection (a claim still waiting at the service would take the
        session back), then tell the service the endpoint stops. Sent unsigned when it
        can be: the session is its proof, and the credentials may be what failed."""
        self.close()
        transport = (self._open_unsigned or self._open_transport)()
        try:
            transport.request("POST", f"{self._prefix}/goodbye", json={"session": session},
                              timeout=GOODBYE_TIMEOUT)
        except FarcallAPIError as exc:
            if exc.http_status not in (404, 405):  # deleted, or a service without goodbye
                raise
        finally:
            transport.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    # -- internals ------------------------------------------------------------------------

    def _connection(self) -> _Connection:
        """The calling thread's connection, opened on its first call."""
        if self._closed:  # a thread that calls late must not open a connection again
            raise RuntimeError("the link to the service is closed")
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError("the link to the service is closed")
                connection = _Connection(self._open_transport(), self._prefix)
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    @contextmanager
    def _refusals(self) -> Iterator[None]:
        """The service's answers that retrying cannot help, as the interface names them."""
        try:
            yield
        except LoginRequired as exc:
            raise CredentialsRefused(f"the endpoint's credentials for {self.base_url} are no "
                                  f"longer valid: {exc}") from exc
        except FarcallAPIError as exc:
            if exc.http_status in REFUSALS:
                hint = (" Its credentials were revoked or have expired: log in again "
                        "(`farcall login`, FARCALL_TOKEN or the config's token) and start it."
                        if exc.http_status == 401 else
                        " Check that the endpoint is yours and still exists.")
                refused = CredentialsRefused if exc.http_status == 401 else EndpointRefused
                raise refused(
                    f"the service at {self.base_url} refused endpoint {self.endpoint_id} "
                    f"({exc.http_status}): {exc.message}.{hint}") from exc
            if exc.http_status == 413:
                raise ReportTooLarge(exc.message) from exc
            raise


class _Connection:
    """One thread's transport, and the channel for claims and results it opens."""

    def __init__(self, transport: Transport, prefix: str) -> None:
        self.transport = transport
        self._prefix = prefix
        self._over_http = HandOffOverHttp(transport, prefix)
        self._channel: Channel | None = None
        self._channel_opened = False

    def ask(self, operation: str, body: dict[str, Any], timeout: float,
            meanwhile: Callable[[], None] | None) -> Any:
        if not self._channel_opened:
            self._channel = self.transport.open_channel(f"{self._prefix}/channel",
                                                        self._over_http)
            self._channel_opened = True
        if self._channel is not None:
            return self._channel.ask(operation, body, timeout, meanwhile)
        if meanwhile is not None:
            meanwhile()  # no request on its way to overlap with: before it, as a channel does
        return self._over_http.ask(operation, body, timeout)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()  # closes its fallback, and so the transport
        else:
            self.transport.close()


class HandOffOverHttp:
    """Claims and results as ``POST {prefix}/claim`` and ``/results``: the channel's
    fallback for a service without one, and the way for a transport without channels."""

    def __init__(self, transport: Transport, prefix: str) -> None:
        self.transport, self.prefix = transport, prefix

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        return self.transport.request("POST", f"{self.prefix}/{operation}", json=body,
                                      timeout=timeout)

    def close(self) -> None:
        self.transport.close()
