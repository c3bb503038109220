"""One robust AMQP connection, on one asyncio loop.

The service calls the broker from its event loop and from worker threads (commits
notify from wherever they happen); the AMQP client lives on one loop. In a service
that loop is the service's own (:class:`ServiceLoop`): a wake-up read from RabbitMQ
reaches the claim or the wait it is for without crossing threads, and a publish from
the loop is a task on it. Without one (admin commands, tests) it is the loop of a
thread of its own (:class:`IOThread`). Either way every AMQP operation is a coroutine
run on that loop: ``submit`` from any thread (fire and forget), ``call`` to block for
it (not from the loop itself), ``run`` to await it from any event loop.

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
from functools import partial
from typing import Any, Protocol, TypeVar

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


class Loop(Protocol):
    """Where the connection's coroutines run."""

    loop: asyncio.AbstractEventLoop

    def start(self) -> None: ...

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]: ...

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T: ...

    async def run(self, coro: Coroutine[Any, Any, T]) -> T: ...

    @property
    def stopped(self) -> bool: ...

    def stop(self) -> None: ...


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


class ServiceLoop:
    """The service's event loop, running in its own thread; this side never stops it,
    and cancels only the coroutines it was given that are still running."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._stopped = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        pass

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop (at once from the loop itself); raises
        RuntimeError once stopped or the loop is closed."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._stopped or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the broker's connection is stopped")
        if self._on_loop():
            self._spawn(coro, done)
            return done
        try:
            self.loop.call_soon_threadsafe(self._spawn, coro, done)
        except RuntimeError:
            coro.close()
            raise
        return done

    def _spawn(self, coro: Coroutine[Any, Any, T], done: concurrent.futures.Future[T]) -> None:
        if self._stopped:
            coro.close()
            done.cancel()
            return
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(partial(_settle, done))
        task.add_done_callback(self._tasks.discard)
        done.add_done_callback(partial(_cancel_with, self.loop, task))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for its result, from another thread."""
        if self._on_loop():
            coro.close()
            raise RuntimeError("cannot block the service's event loop for the broker")
        return self.submit(coro).result(timeout)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro``: here, on the service's loop; from another loop, through it."""
        if self._on_loop():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def _cancel_mine(self) -> None:
        mine = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in mine:
            task.cancel()
        await asyncio.gather(*mine, return_exceptions=True)

    def stop(self) -> None:
        """Cancel what is still running of what was submitted (wake-ups not yet sent:
        dropped); from another thread, it waits for that."""
        if self._stopped:
            return
        if self._on_loop() or self.loop.is_closed():
            for task in self._tasks:
                task.cancel()
        else:
            with contextlib.suppress(Exception):
                self.call(self._cancel_mine(), 10)
        self._stopped = True


def _settle(done: concurrent.futures.Future[T], task: asyncio.Task[T]) -> None:
    """Copy ``task``'s end to ``done`` (unless ``done`` was cancelled)."""
    if done.done():
        return
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


def _cancel_with(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any],
                 done: concurrent.futures.Future[Any]) -> None:
    """A caller that cancels ``done`` (a timeout) cancels its coroutine."""
    if done.cancelled() and not task.done():
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(task.cancel)


def _describe(exc: BaseException, password: str) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text.replace(password, "***") if password else text


class Connection:
    """The broker's connection to RabbitMQ: open once, used from any thread."""

    def __init__(self, address: BrokerAddress, name: str) -> None:
        self.address = address
        self.io: Loop = IOThread(name)
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
    def open(self, timeout: float = CONNECT_TIMEOUT,
             loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Connect, or raise :class:`BrokerError` saying why and what to do.
        ``loop``: the service's event loop, running in another thread: the connection
        lives there (else on a thread of its own)."""
        if loop is not None:
            self.io.stop()  # a thread's loop made in advance, never to run
            self.io = ServiceLoop(loop)
        elif self.io.stopped:  # opened again after close
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
