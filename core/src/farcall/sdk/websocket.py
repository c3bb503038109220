"""A WebSocket connection read by the thread that asks, for the channels.

websockets' own synchronous client reads every connection in a thread of its own
and hands each message over to the caller's thread: on a channel, where a thread
sends one request and waits for its answer, that hand-over was a thread wake-up per
answer (0.06–0.25 ms of a 0.6–0.9 ms exchange, measured side by side). This
connection drives websockets' protocol (the sans-I/O ``ClientProtocol``) on a
plain socket instead, and reads only while the caller waits for an answer. Pings
that arrive meanwhile are answered when the connection is next used, and
:meth:`Connection.usable` tells a connection the service closed while it sat idle
(uvicorn closes one whose pings go unanswered) from one to send on.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import time
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

_MESSAGE = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class Woken(Exception):
    """:meth:`Connection.recv` stopped waiting: its ``wake`` socket became readable."""


class Connection:
    """One WebSocket, opened by the constructor (raising ``InvalidStatus`` when the
    service answers the handshake with anything but 101)."""

    def __init__(self, url: str, headers: dict[str, str], open_timeout: float,
                 logger: logging.Logger) -> None:
        uri = parse_uri(url)
        self._send_timeout = open_timeout
        deadline = time.monotonic() + open_timeout
        sock = socket.create_connection((uri.host, uri.port), timeout=open_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            self._sock = sock
            self._protocol = ClientProtocol(uri, max_size=None, logger=logger)
            request = self._protocol.connect()
            for name, value in headers.items():
                request.headers[name] = value
            self._protocol.send_request(request)
            self._flush()
            while self._protocol.state is State.CONNECTING:
                self._read(_left(deadline))
            if self._protocol.handshake_exc is not None:
                raise self._protocol.handshake_exc
            self._frames = self._received()[1:]  # after the handshake answer
            # The frames of a message whose last frame is still to come, and its kind.
            self._parts: list[bytes | bytearray | memoryview] = []
            self._binary = False
        except BaseException:
            sock.close()
            raise

    def send(self, message: str | bytes) -> None:
        """Send a text frame for a str, a binary frame for bytes."""
        if isinstance(message, bytes):
            self._protocol.send_binary(message)
        else:
            self._protocol.send_text(message.encode())
        try:
            self._flush()
        except OSError:
            # The service may have closed the connection saying why (1009: message
            # too big) before the message was through: raise that, if it came.
            self._read_what_is_left()
            self._raise_if_closed()
            raise

    def recv(self, timeout: float, wake: socket.socket | None = None) -> str | bytes:
        """The next message, a str from text frames and bytes from binary ones;
        TimeoutError when none comes within ``timeout`` seconds.

        ``wake``: a socket another thread writes to when this wait should end early
        (:class:`Woken` is raised then; what it wrote is left for the caller to read).
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._frames:
                frame = self._frames.pop(0)
                if frame.opcode in _MESSAGE:
                    if frame.opcode is not Opcode.CONT:
                        self._binary = frame.opcode is Opcode.BINARY
                    self._parts.append(frame.data)
                    if frame.fin:
                        message, self._parts = b"".join(self._parts), []
                        return message if self._binary else message.decode()
            self._raise_if_closed()
            if wake is not None:
                self._await_readable(_left(deadline), wake)
            self._read(_left(deadline))
            self._frames = self._received()

    def _received(self) -> list[Frame]:
        """What arrived: frames, once the handshake's answer has been taken."""
        return cast("list[Frame]", self._protocol.events_received())

    def usable(self) -> bool:
        """Take in what arrived while the connection sat idle (answering pings) and
        say whether it is still open."""
        try:
            while self._read(0):
                pass
        except (BlockingIOError, ssl.SSLWantReadError):
            pass  # nothing (more) has arrived
        except OSError:
            return False
        self._frames += self._received()
        return self._protocol.state is State.OPEN and self._protocol.close_rcvd is None

    def close(self) -> None:
        try:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close()
                self._flush()
        except OSError:
            pass  # already broken: closing the socket is all there is to do
        finally:
            self._sock.close()

    def _read_what_is_left(self) -> None:
        with contextlib.suppress(OSError):
            while self._read(1.0):
                pass
        self._frames += self._received()

    def _raise_if_closed(self) -> None:
        protocol = self._protocol
        if protocol.state is State.CLOSED:
            raise protocol.close_exc
        if protocol.close_rcvd is not None or protocol.state is State.CLOSING:
            raise ConnectionClosedError(protocol.close_rcvd, protocol.close_sent,
                                        protocol.close_rcvd_then_sent)

    def _await_readable(self, timeout: float, wake: socket.socket) -> None:
        pending = getattr(self._sock, "pending", None)  # TLS: bytes already decrypted
        if pending is not None and pending():
            return
        readable, _, _ = select.select([self._sock, wake], [], [], timeout)
        if wake in readable:
            raise Woken()
        if not readable:
            raise TimeoutError("no message in time")

    def _read(self, timeout: float) -> bool:
        """Read once, waiting up to ``timeout`` seconds (0: not at all, raising
        BlockingIOError); False at the end of the stream."""
        self._sock.settimeout(timeout)
        data = self._sock.recv(65536)  # a socket timeout is a TimeoutError
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        self._flush()  # pongs, and the answer to a close
        return bool(data)

    def _flush(self) -> None:
        chunks = self._protocol.data_to_send()
        data = b"".join(chunks)  # a frame's header and payload in one write
        if data:
            self._sock.settimeout(self._send_timeout)  # not what the last read set
            self._sock.sendall(data)
        if chunks and not chunks[-1]:
            self._sock.shutdown(socket.SHUT_WR)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no answer in time")
    return left
