"""One robust AMQP connection, owned by an I/O thread with an asyncio loop of its own.

The service calls the broker from its event loop and from worker threads (commits
notify from wherever they happen); the AMQP client lives on one loop. Every AMQP
operation is a coroutine run on this thread's loop: :meth:`IOThread.submit` from any
thread (fire and forget), :meth:`IOThread.call` to block for it (not from the loop
itself), :meth:`IOThread.run` to await it from another event loop.

The connection is aio-pika's robust one: after the server drops it (a restart,
``rabbitmqctl close_all_connections``) it reconnects by itself, every second, and
declares again the exchanges, queues, bindings and consumers made through it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from farcall_service.brokers.interface import BrokerError

from farcall_broker_rabbitmq.address import BrokerAddress

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds to reach the broker at start.
CONNECT_TIMEOUT = 10.0
#: Seconds between reconnection attempts once connected.
RECONNECT_INTERVAL = 1.0


class IOThread:
    """A daemon thread running an event loop until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on this loop; safe from any thread. Raises RuntimeError
        once stopped (the coroutine is closed, not left unawaited)."""
        if not self._started or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the broker's I/O thread is not running")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` here and wait for its result (from any other thread)."""
        return self.submit(coro).result(timeout)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` here and await it from the caller's event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    @property
    def stopped(self) -> bool:
        return self.loop.is_closed()

    async def _cancel_pending(self) -> None:
        """Cancel what is still running here (wake-ups not yet sent: dropped)."""
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if not self._started:
            self.loop.close()
            return
        with contextlib.suppress(Exception):
            self.call(self._cancel_pending(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


def _describe(exc: BaseException, password: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace(password, "***") if password else text


class Connection:
    """The broker's connection to RabbitMQ: open once, used from any thread."""

    def __init__(self, address: BrokerAddress, name: str) -> None:
        self.address = address
        self.io = IOThread(name)
        self._name = name
        self._connection: AbstractRobustConnection | None = None
        #: How many times the connection was made again after the server dropped it.
        self.reconnections = 0


    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an AMQP coroutine on this connection's loop and await it from the
        caller's; raise BrokerError when the broker cannot be reached (or this
        connection is stopped)."""
        try:
            return await self.io.run(coro)
        except BrokerError:
            raise
        except Exception as exc:
            raise BrokerError(f"RabbitMQ at {self.address.where}: "
                              f"{type(exc).__name__}: {exc}") from None
    def open(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Connect, or raise :class:`BrokerError` saying why and what to do."""
        if self.io.stopped:  # opened again after close
            self.io = IOThread(self._name)
        self.io.start()
        try:
            self.io.call(self._connect(timeout), timeout + 5)
        except Exception as exc:
            # An AMQP answer (bad credentials, no such vhost) is a refusal; no answer
            # (nothing listens, the connection drops, a timeout) is unreachable: aiormq
            # raises the bare AMQPConnectionError for those.
            refused = (isinstance(exc, aiormq.exceptions.AMQPError)
                       and type(exc) is not aiormq.exceptions.AMQPConnectionError)
            detail = _describe(exc, self.address.password)
            if isinstance(exc, aiormq.exceptions.ProtocolSyntaxError):  # closed at open
                detail = (f"vhost {self.address.vhost!r} does not exist or user "
                          f"{self.address.username!r} may not use it ({detail})")
            self.close()
            raise BrokerError(
                f"RabbitMQ at {self.address.where} "
                f"{'refused' if refused else 'unreachable'}: "
                f"{detail}; start it or fix --broker"
            ) from None
        log.info("connected to RabbitMQ at %s, vhost %r", self.address.where, self.address.vhost)

    async def _connect(self, timeout: float) -> None:
        self._connection = await aio_pika.connect_robust(
            self.address.url(),
            timeout=timeout,
            reconnect_interval=RECONNECT_INTERVAL,
            client_properties={"connection_name": self._name},
        )
        self._connection.reconnect_callbacks.add(self._reconnected)

    def _reconnected(self, _connection: object) -> None:
        self.reconnections += 1
        log.info("reconnected to RabbitMQ at %s", self.address.where)

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def channel(self, publisher_confirms: bool = True,
                      on_return_raises: bool = False) -> AbstractRobustChannel:
        """A new channel (on the I/O loop); it is opened again after a reconnection.
        ``on_return_raises``: a mandatory message no queue takes raises on publish."""
        if self._connection is None:
            raise BrokerError(f"not connected to RabbitMQ at {self.address.where}")
        channel = await self._connection.channel(publisher_confirms=publisher_confirms,
                                                 on_return_raises=on_return_raises)
        assert isinstance(channel, AbstractRobustChannel)
        return channel

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Close the connection and stop the I/O thread."""
        try:
            self.io.call(self._close(), CONNECT_TIMEOUT)
        except Exception as exc:  # closing anyway
            log.debug("closing the RabbitMQ connection: %s",
                      _describe(exc, self.address.password))
        self.io.stop()
