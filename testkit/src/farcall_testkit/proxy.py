"""A round-robin TCP reverse proxy on 127.0.0.1, in front of several service processes.

It works at the TCP level, so HTTP keep-alive and WebSocket channels pass through
untouched: each new client connection goes to the next upstream that accepts a
connection, so a dead process is skipped and a client is not pinned to one process
(a connection stays with the process it reached, as behind any TCP balancer; an idle
HTTP keep-alive connection is closed after ``idle_timeout``, before the service would
close it, as nginx's ``keepalive_timeout`` does). When no
upstream accepts, the client gets ``502 Bad Gateway`` and the connection closes, as
nginx answers; clients retry that as they would a proxy's.

The proxy runs its own event loop in a thread; :attr:`counts` says what it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence

from farcall_testkit.service import free_port

BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
               b"content-length: 56\r\nconnection: close\r\n\r\n"
               b'{"code":"BAD_GATEWAY","message":"no upstream answered"}\n')
CHUNK = 64 * 1024
#: Idle keep-alive connections are closed after this long: below the service's
#: ``keep_alive_timeout`` (5 s by default), so the service never closes one first.
IDLE_TIMEOUT_S = 3.0
IDLE_CHECK_S = 0.25


class RoundRobinProxy:
    """Listens on ``127.0.0.1:port`` and passes each connection to one of ``upstreams``
    (``(host, port)`` pairs), in turn; use as a context manager.

    ``counts``: ``connections`` accepted, ``refused`` upstream connection attempts that
    failed, ``bad_gateway`` answers sent, ``cut`` connections the upstream closed while a
    request sent on them was unanswered (the process died under it: the client must
    retry), and ``to:<port>`` connections per upstream.
    """

    def __init__(self, upstreams: Sequence[tuple[str, int]], port: int | None = None,
                 connect_timeout: float = 2.0, idle_timeout: float = IDLE_TIMEOUT_S) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = list(upstreams)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.counts: Counter[str] = Counter()
        self._next = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"proxy-{self.port}")
        self._server: asyncio.base_events.Server | None = None
        self._pairs: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], int] = {}

    # -- control, from any thread ------------------------------------------------------

    def start(self) -> RoundRobinProxy:
        self._thread.start()
        done = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        done.result(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def open_connections(self) -> Counter[int]:
        """Connections open now, by upstream port (the busiest process is the one whose
        death cuts most)."""
        with self._lock:
            return Counter(self._pairs.values())

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the event loop ----------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  backlog=1024)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        with self._lock:
            pairs = list(self._pairs)
        for client, upstream in pairs:
            client.close()
            upstream.close()

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _turns(self) -> list[tuple[str, int]]:
        """Every upstream once, starting with the next one's turn."""
        with self._lock:
            first = self._next
            self._next = (self._next + 1) % len(self.upstreams)
        return self.upstreams[first:] + self.upstreams[:first]

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int] | None:
        for host, port in self._turns():
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        self.connect_timeout)
            except (OSError, asyncio.TimeoutError):
                self._count("refused")
                continue
            self._count(f"to:{port}")
            return reader, writer, port
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._count("connections")
        opened = await self._connect()
        if opened is None:
            self._count("bad_gateway")
            with contextlib.suppress(OSError):
                # Read what came, so closing does not reset the answer away.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(CHUNK), 0.5)
                writer.write(BAD_GATEWAY)
                await writer.drain()
            writer.close()
            return
        up_reader, up_writer, port = opened
        pair = (writer, up_writer)
        with self._lock:
            self._pairs[pair] = port
        link = _Link()
        upward = asyncio.ensure_future(self._pipe(reader, up_writer, link, True))
        watchdog = asyncio.ensure_future(self._close_when_idle(link, writer, up_writer))
        try:
            await self._pipe(up_reader, writer, link, False)
            if link.waiting:
                self._count("cut")  # the upstream went away under a request
        finally:
            for task in (upward, watchdog):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with self._lock:
                self._pairs.pop(pair, None)
            writer.close()
            up_writer.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    link: _Link, upward: bool) -> None:
        """Copy until end of stream or an error; the client's end is passed on as
        end of stream, so the upstream still answers what it was sent."""
        try:
            while data := await source.read(CHUNK):
                if upward and not link.seen_request:
                    link.seen_request = True
                    link.tunnel = b"upgrade: websocket" in data[:8192].lower()
                link.waiting = upward
                link.last = time.monotonic()
                sink.write(data)
                await sink.drain()
            if upward and sink.can_write_eof():
                sink.write_eof()
                return
        except OSError:
            pass
        if upward:
            # The client is gone: nobody will read the answer.
            sink.close()

    async def _close_when_idle(self, link: _Link, client: asyncio.StreamWriter,
                               upstream: asyncio.StreamWriter) -> None:
        """Close an idle HTTP keep-alive connection before the upstream's own
        keep-alive timeout does: a request sent as the upstream closes would be lost
        on the way (the client cannot tell it from a process dying under it), while
        a connection the proxy closes is seen closed by the client's pool, as one
        closed by the service itself. WebSocket channels are left open."""
        while True:
            await asyncio.sleep(IDLE_CHECK_S)
            if link.tunnel:
                return
            if not link.waiting and time.monotonic() - link.last > self.idle_timeout:
                client.close()
                upstream.close()
                return


class _Link:
    """What the proxy knows of one connection it relays."""

    def __init__(self) -> None:
        #: The client sent bytes the upstream has not answered yet.
        self.waiting = False
        self.seen_request = False
        #: A WebSocket (upgraded) connection: no idle timeout.
        self.tunnel = False
        self.last = time.monotonic()
