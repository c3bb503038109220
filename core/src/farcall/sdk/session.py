"""A Client's channel session: submissions and result waits, and the results pushed back.

Two operations carry most of a Client's traffic, ``submit`` and ``wait``. They go over
a channel when the transport opens one (:meth:`Transport.open_channel
<farcall.plugins.types.Transport.open_channel>`; the ``http`` transport opens a
WebSocket), one per thread, and otherwise as plain requests through the transport
(:class:`RequestFallback`), so a transport written to the Protocol carries every call.

Results the service pushes down a channel (tasks a submission asked it to follow) are
kept in the result cache and handed to the thread's handler (:meth:`on_results`): the
Executor resolves its futures so.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable

if TYPE_CHECKING:
    import socket

    from farcall.plugins.types import Transport
    from farcall.sdk.channel import Channel

#: Where the service listens for channels.
CHANNEL_PATH = "/farcall/v1/channel"
#: ``cancelled`` comes from farcall's own routes; others say ``failed`` for it.
TERMINAL = ("success", "failed", "cancelled")

#: Handed the terminal documents of tasks as their results come, keyed by task id.
ResultsHandler = Callable[[dict[str, dict[str, Any]]], None]


class RequestFallback:
    """The channel's operations as the REST API's requests, through the transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        if operation == "submit":
            fields = dict(body)
            endpoint_id = fields.pop("endpoint_id")
            return self.transport.request(
                "POST", f"/v3/endpoints/{endpoint_id}/submit", json=fields, timeout=timeout
            )
        if operation in ("wait", "cancel"):
            return self.transport.request(
                "POST", f"/farcall/v1/tasks/{operation}", json=body, timeout=timeout
            )
        raise ValueError(f"no request carries the channel operation {operation!r}")

    def close(self) -> None:
        """Nothing to close: the transport is the Client's."""


class ChannelSession:
    """This Client's channels (one per thread and process) and what comes down them."""

    def __init__(self, transport: Transport,
                 keep: Callable[[str, dict[str, Any]], None]) -> None:
        self.transport = transport
        #: Keeps an ended task's document (``Client.keep_result``).
        self._keep_result = keep
        self.fallback = RequestFallback(transport)
        self._local = threading.local()

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        """Send ``submit`` or ``wait`` over this thread's channel (opened on first use);
        over a plain request when there is none, and to retry what the channel could
        not deliver."""
        channel = self.channel(open_one=True)
        if channel is not None:
            try:
                return channel.ask(operation, body, timeout)
            except ServiceUnreachable:
                pass  # the transport retries, with backoff
            except FarcallAPIError as exc:
                if exc.http_status != 429 and exc.http_status < 500:
                    raise
        return self.fallback.ask(operation, body, timeout)

    def channel(self, open_one: bool = False) -> Channel | None:
        """This thread's channel: None when the transport has none, or when it is not
        open yet and ``open_one`` is false."""
        pid, channel = getattr(self._local, "channel", (None, None))
        if pid != os.getpid():  # new thread, or a forked child: the parent's is not ours
            if not open_one:
                return None
            channel = self.transport.open_channel(CHANNEL_PATH, self.fallback, on_push=self.keep)
            self._local.channel = (os.getpid(), channel)
        return channel

    def following(self) -> set[str]:
        """Tasks whose results this thread's channel will be pushed."""
        channel = self.channel()
        return channel.following if channel is not None else set()

    def follow(self, answer: Mapping[str, Any], task_ids: Collection[str]) -> None:
        """Take in a submission's answer: the results it brought are kept, and the
        other ``task_ids`` are followed when the service says it pushes them."""
        if not answer.get("following"):  # only a channel's answer says so
            return
        done = answer.get("results") or {}
        self.keep(done)
        channel = self.channel()
        if channel is not None:
            channel.follow([tid for tid in task_ids if tid not in done])

    def listen(self, task_ids: Collection[str] | None, timeout: float,
               wake: socket.socket | None = None) -> bool:
        """Read pushed results until one of ``task_ids`` (None: any) has come (True),
        or ``timeout`` passed or ``wake`` became readable (False). False at once when
        this thread's channel follows nothing."""
        channel = self.channel()
        if channel is None or not channel.following:
            return False
        return channel.listen(task_ids, timeout, wake)

    def collect(self) -> None:
        """Take in the results already pushed, without waiting."""
        channel = self.channel()
        if channel is not None:
            channel.collect()

    def on_results(self, handler: ResultsHandler | None) -> None:
        """Hand ``handler`` the results this thread's channel is pushed, and those a
        submission's answer brings, as they come (None: stop)."""
        self._local.on_results = handler

    def keep(self, documents: Mapping[str, Any]) -> None:
        """Keep the terminal documents among ``documents`` in the result cache and
        hand them to this thread's handler."""
        ended = {tid: document for tid, document in documents.items()
                 if isinstance(document, dict) and document.get("status") in TERMINAL}
        for tid, document in ended.items():
            self._keep_result(tid, document)
        handler: ResultsHandler | None = getattr(self._local, "on_results", None)
        if handler is not None and ended:
            handler(ended)
