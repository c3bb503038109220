"""Limits before a request reaches the application: size and time of request heads and
bodies, and open connections per client address and in all.

uvicorn's HTTP protocol (httptools) accepts heads of any size, waits forever for a
head or body that trickles in, and has no cap per address. :func:`protocol_class`
builds a subclass of it that adds, per connection and at no cost per request beyond
a few counters:

- a head (request line and headers) over ``max_header_bytes`` gets 431 and is closed;
- a connection must send a whole head within ``header_timeout`` of opening or of its
  request's first byte (408 when part of one came, else closed silently);
- a body must arrive within ``body_timeout`` of its head, plus a second per KiB
  received (so slow links still send large bodies, a trickle does not hold on);
- at most ``max_connections_per_address`` connections per client address (429) and
  ``max_connections`` in all (503), answered when the request arrives and closed.

Behind a reverse proxy listed in ``trusted_proxies``, connections come from the
proxy: they are not capped per address here; :class:`ForwardedClients` names the
client from ``X-Forwarded-For`` and caps its requests in flight instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterable
from typing import Any, ClassVar

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from farcall_service.settings import Settings

#: A body may take a second longer per this many bytes received.
BODY_BYTES_PER_SECOND = 1024
#: How long a refused connection may take to send its request before it is closed.
REFUSED_GRACE = 1.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The addresses and networks of ``trusted_proxies`` (comma-separated)."""

    def __init__(self, spec: str) -> None:
        self.networks: list[Network] = []
        for item in (part.strip() for part in spec.split(",")):
            if item:
                try:
                    self.networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"trusted_proxies: {item!r} is not an address or "
                                     "network") from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)

    def client(self, forwarded_for: Iterable[str]) -> str | None:
        """The client a chain of ``X-Forwarded-For`` values names: the last address
        that is not one of our proxies (what the nearest untrusted hop said)."""
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            if hop and hop not in self:
                return hop
        return None


class ConnectionLimits:
    """What every connection of one server shares: the settings and the counts.

    Used on the event loop only, so without locks. The table has an entry per
    address with open connections, no more.
    """

    def __init__(self, settings: Settings) -> None:
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.max_connections = settings.max_connections
        self.per_address = settings.max_connections_per_address
        self.trusted = TrustedProxies(settings.trusted_proxies)
        self.total = 0
        self.by_address: dict[str, int] = {}
        #: Refusals and closes by reason, for logs and tests.
        self.refused: dict[str, int] = {}

    def admit(self, address: str) -> tuple[int, str, str] | None:
        """Count a new connection, or say why it is refused (status, code, message)."""
        if self.max_connections and self.total >= self.max_connections:
            return 503, "TOO_MANY_CONNECTIONS", "the service has too many open connections; " \
                "try again shortly"
        if self.per_address and address not in self.trusted:
            if self.by_address.get(address, 0) >= self.per_address:
                return 429, "TOO_MANY_CONNECTIONS", f"at most {self.per_address} open " \
                    "connections per client address; close some or try again shortly"
            self.by_address[address] = self.by_address.get(address, 0) + 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        self.total -= 1
        if self.per_address and address not in self.trusted:
            left = self.by_address.get(address, 0) - 1
            if left > 0:
                self.by_address[address] = left
            else:
                self.by_address.pop(address, None)

    def note(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits` applied.

    Cheap per request: a head that arrives in one small chunk is not measured, and
    the head timer is one per connection, re-armed only when it fires (it compares
    the current request's start with the timeout), not set and cancelled per request.
    """

    limits: ClassVar[ConnectionLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._address = self.client[0] if self.client else ""
        self._counted = False
        self._refusal: tuple[int, str, str] | None = self.limits.admit(self._address)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = True
        self._head_begun = False
        self._head_since = self.loop.time()
        self._head_too_large = False
        self._chunk = 0
        self._partial_head = 0
        self._awaiting_body = False
        self._body_since = 0.0
        self._body_bytes = 0
        if self._refusal is not None:
            self.limits.note("connections")
            self._head_timer = self.loop.call_later(REFUSED_GRACE, self.transport.close)
            return
        self._counted = True
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._counted:
            self._counted = False
            self.limits.release(self._address)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            self._refuse(*self._refusal)
            return
        head_before = self._in_head
        self._chunk = len(data)
        super().data_received(data)
        if self._head_too_large:
            self._refuse_head()
            return
        if self.transport.is_closing():
            return
        if head_before and self._in_head and self._head_begun:
            # The whole chunk was part of a head that is still incomplete.
            self._partial_head += len(data)
            if self._partial_head > self.limits.max_header_bytes:
                self._refuse_head()
                return
        if self._awaiting_body and self._body_timer is None:
            self._arm_body()
        elif self._head_timer is None and self._in_head and self._between_requests():
            self._head_since = self.loop.time()  # bytes between requests start the clock
            self._arm_head()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    # -- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_begun = True
        self._partial_head = 0
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._arm_head()

    def on_headers_complete(self) -> None:
        if self._head_too_large:
            return
        limit = self.limits.max_header_bytes
        if self._partial_head + self._chunk > limit:  # else the head is smaller already
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > limit:
                # Refused once the parser returns; the rest of this chunk is ignored.
                self._head_too_large = True
                return
        self._in_head = False
        self._head_begun = False
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._awaiting_body = True
            self._body_since = self.loop.time()
            self._body_bytes = 0

    def on_body(self, body: bytes) -> None:
        if self._head_too_large:
            return
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._head_too_large:
            return
        self._awaiting_body = False
        self._in_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_timers()
        self._in_head = False
        super().handle_websocket_upgrade()
        # The WebSocket protocol owns the transport from now on; it gives the slot back.
        if self._counted:
            self._counted = False
            protocol = self.transport.get_protocol()
            lost = protocol.connection_lost
            limits, address = self.limits, self._address

            def connection_lost(exc: Exception | None) -> None:
                limits.release(address)
                lost(exc)

            setattr(protocol, "connection_lost", connection_lost)  # noqa: B010

    # -- timers and refusals ------------------------------------------------------------

    def _arm_head(self) -> None:
        if self.limits.header_timeout > 0:
            self._head_timer = self.loop.call_at(
                self._head_since + self.limits.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head or not self._between_requests():
            return  # a later request's head re-arms the timer
        if not self._head_begun and self.timeout_keep_alive_task is not None:
            return  # idle between requests: uvicorn's keep-alive timeout is in charge
        if self.loop.time() < self._head_since + self.limits.header_timeout:
            self._arm_head()  # a later request began meanwhile
            return
        self.limits.note("slow_head")
        if self._head_begun:
            self._refuse(408, "REQUEST_TIMEOUT", "the request head did not arrive within "
                         f"{self.limits.header_timeout:g} s")
        else:
            self.transport.close()

    def _body_deadline(self) -> float:
        return (self._body_since + self.limits.body_timeout
                + self._body_bytes / BODY_BYTES_PER_SECOND)

    def _arm_body(self) -> None:
        if self.limits.body_timeout > 0:
            self._body_timer = self.loop.call_at(self._body_deadline(), self._body_timed_out)

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._awaiting_body:
            return
        if self.flow.read_paused:
            # The application is slow to read, not the client: its time does not count.
            self._body_since += 1.0
            self._body_timer = self.loop.call_later(1.0, self._body_timed_out)
            return
        if self.loop.time() < self._body_deadline():
            self._arm_body()
            return
        self.limits.note("slow_body")
        self._refuse(408, "REQUEST_TIMEOUT", "the request body did not arrive in time")

    def _refuse_head(self) -> None:
        self.limits.note("large_head")
        self._refuse(431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "the request line and headers "
                     f"may not be larger than {self.limits.max_header_bytes} bytes")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` unless a response has started, and close."""
        self._cancel_timers()
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            body = json.dumps({"code": code, "message": message}).encode()
            extra = b"retry-after: 1\r\n" if status in (429, 503) else b""
            self.transport.write(b"".join([
                STATUS_LINE[status], b"content-type: application/json\r\n",
                b"content-length: ", str(len(body)).encode(), b"\r\n", extra,
                b"connection: close\r\n\r\n", body]))
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
        self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


def protocol_class(limits: ConnectionLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``limits``."""
    return type("FarcallHttpProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})


class ForwardedClients:
    """Behind trusted proxies: ``scope["client"]`` becomes the address the proxy
    forwarded, and each such client may have ``per_address`` requests in flight
    (WebSockets included), as a direct client may have that many connections."""

    def __init__(self, app: ASGIApp, trusted: str, per_address: int) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)
        self.per_address = per_address
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] not in ("http", "websocket") or not peer or peer[0] not in self.trusted:
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope.get("headers", [])
                  if k == b"x-forwarded-for"]
        address = self.trusted.client(values) or peer[0]
        scope = {**scope, "client": (address, 0)}
        count = self.in_flight.get(address, 0)
        if self.per_address and count >= self.per_address:
            await _too_many(scope, send, self.per_address)
            return
        self.in_flight[address] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self.in_flight[address] - 1
            if left:
                self.in_flight[address] = left
            else:
                del self.in_flight[address]


async def _too_many(scope: Scope, send: Send, limit: int) -> None:
    message = f"at most {limit} requests in flight per client address; try again shortly"
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": message[:120]})
        return
    body = json.dumps({"code": "TOO_MANY_CONNECTIONS", "message": message}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1")]
    start: dict[str, Any] = {"type": "http.response.start", "status": 429, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
