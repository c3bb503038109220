"""Wake-ups shared between service processes over RabbitMQ.

Every notification is applied to this process's notifiers at once (``Notifier``: its
waiting claims, result waits and listeners) *and* published for the others; each
process consumes an exclusive, auto-deleted queue and applies the other processes'
notifications to its own notifiers. Who is there (``hello``, ``bye``) and "tasks are
queued for this endpoint" go on the fanout exchange ``farcall.wakeups``, to every
process; results and claims' offers go on the direct exchange
``farcall.wakeups.keyed``, only to the processes where someone waits for them
(``interests``), never back to their sender. A process that knows of no other
(``peers``) publishes nothing.

The messages are transient and unconfirmed: a lost wake-up costs latency, never a
task, because claims and result waits time out and look in the database. A results
notification carries the recorded tasks, in as many messages as it takes (``carried``),
so a listener elsewhere need not read them back; a task too big to carry goes as None,
"look again, in the database".

A claim's offer (``offer``/``take``/``hand``/``withdraw``) is published too, and a
submission in another process may take it and hand the claim its tasks through the
claim's process's queue (``offers``): no claim transaction follows the wake-up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractExchange
from farcall_service.brokers.interface import (
    ClaimOffer,
    Handed,
    ResultListener,
    Taken,
    UnclaimedHandler,
)
from farcall_service.brokers.notifier import Notifier
from farcall_service.storage.interface import Task

from farcall_broker_rabbitmq.connection import Connection
from farcall_broker_rabbitmq.interests import Interests
from farcall_broker_rabbitmq.offers import (
    MAX_HANDED_CHARS,
    RemoteOffers,
    decode_hand,
    decode_offer,
    encode_hand,
    encode_offer,
    handed_chars,
)
from farcall_broker_rabbitmq.peers import ANNOUNCE, Peers
from farcall_broker_rabbitmq.riding import Riding

log = logging.getLogger(__name__)

#: The fanout exchange every service process of a vhost says who it is on (and the
#: prefix of each process's queue).
EXCHANGE = "farcall.wakeups"
#: The direct exchange of the keyed wake-ups, routed by ``{channel}.{key}``.
KEYED_EXCHANGE = "farcall.wakeups.keyed"
#: Recorded tasks ride along with a results notification up to about this size
#: (characters of their JSON).
MAX_CARRIED = 64 * 1024
#: Seconds a wake-up may wait for the connection before it is dropped.
PUBLISH_TIMEOUT = 5.0
#: Seconds a stopping process waits to say ``bye`` (the others forget it anyway).
BYE_TIMEOUT = 1.0
#: Seconds a claim's process waits for a handing submission's ``committed`` before
#: it records the results anyway (as ``dispatching.COMMIT_WINDOW``).
COMMIT_WORD_TIMEOUT = 10.0
#: Seconds a handing submission waits, after its commit, for the claim's process to
#: say it gave the tasks to the claim; without that word it releases them itself.
TAKEN_WORD_TIMEOUT = 5.0
#: Seconds the word that a hand reached its claim waits for the claim's next offer, to
#: ride in the same message: an endpoint with room claims again at once.
TAKEN_RIDES = 0.05
#: Seconds a results notification of tasks told before their commit, sent again once
#: it is through, waits to ride with the owner's next notification to the others.
SETTLED_RIDES = 0.05


#: A ``Task``'s fields, in order: a carried task is the list of their values.
FIELDS = tuple(field.name for field in dataclasses.fields(Task))
#: A carried task's JSON besides its result, exception and details: ids, status,
#: times and punctuation, with room to spare.
OVERHEAD = 400


def carried(tasks: list[Task] | None) -> list[list[list[Any]] | None]:
    """The ``tasks`` values of the results notifications that tell ``tasks``: as many
    as it takes to keep each under ``MAX_CARRIED``, and one None ("look again, in the
    database") for the tasks too big to ride alone (or for ``tasks`` None).

    A batch's report goes in several messages rather than as one "look again", which
    made every channel that follows the batch read back every task it still follows,
    at every report. The size is reckoned from the strings, not by encoding: this runs
    for every results wake-up, and the encoding was a tenth of a busy process's time.
    """
    if tasks is None:
        return [None]
    messages: list[list[list[Any]] | None] = []
    current: list[list[Any]] = []
    size, too_big = 2, False
    for task in tasks:
        cost = (OVERHEAD + len(task.result or "") + len(task.exception or "")
                + len(task.exception_data or ""))
        if task.details:
            cost += len(json.dumps(task.details, separators=(",", ":")))
        if cost + 2 > MAX_CARRIED:
            too_big = True
            continue
        if size + cost > MAX_CARRIED:
            messages.append(current)
            current, size = [], 2
        current.append([getattr(task, name) for name in FIELDS])
        size += cost
    if current or not messages and not too_big:
        messages.append(current)
    if too_big:
        messages.append(None)
    return messages


async def _publish(channel: Any, body: bytes, exchange: str, routing_key: str,
                   mandatory: bool = False) -> Any:
    """Publish a transient JSON message on aio-pika ``channel``'s AMQP channel: without
    aio-pika's ``Message``, whose making was a third of a wake-up's cost. Returns the
    confirmation on a confirmed channel (one returned unroutable raises there); on
    another, returns once the message is queued for the socket, not written."""
    underlay = await channel.get_underlay_channel()
    return await underlay.basic_publish(
        body, exchange=exchange, routing_key=routing_key, mandatory=mandatory,
        properties=aiormq.spec.Basic.Properties(content_type="application/json",
                                                delivery_mode=1),
        timeout=PUBLISH_TIMEOUT, wait=mandatory)


def decode_tasks(values: list[list[Any]] | None) -> list[Task] | None:
    return None if values is None else [Task(*fields) for fields in values]


class Fanout:
    """This process's side of ``farcall.wakeups``: publishes, consumes, applies."""

    def __init__(self, connection: Connection, origin: str) -> None:
        self._connection = connection
        self.origin = origin
        self.tasks = SharedTaskWakeups(Notifier(), self)
        self.results = SharedResultWakeups(Notifier(), self)
        self._exchange: AbstractExchange | None = None
        self._keyed: AbstractExchange | None = None
        #: The unconfirmed channel: wake-ups, and the words of a hand-off.
        self._channel: Any = None
        self._queue: Any = None
        #: The keyed wake-ups this process hears.
        self.interests = Interests(lambda work: self._connection.io.submit(work),
                                   self._bind, self._unbind, self._wanted, self._bound)
        self._sweeper: asyncio.Task[None] | None = None
        #: The other processes on the fanout: with none, there is nobody to wake.
        self.peers = Peers()
        #: Their claims waiting for tasks.
        self.offers = RemoteOffers()
        self._announcer: asyncio.Task[None] | None = None
        #: A confirmed channel for hand-offs to one process's queue.
        self._direct: Any = None
        #: Ticket -> the ``committed`` word a hand-off received here waits for.
        self._awaiting: dict[str, concurrent.futures.Future[bool | None]] = {}
        #: Ticket -> whether a hand-off sent from here reached its claim (the
        #: ``taken`` word of the claim's process).
        self._replies: dict[str, concurrent.futures.Future[bool]] = {}
        #: Per endpoint, the ``taken`` words (origin, ticket) for its next offer.
        self.taken_words: Riding[tuple[str, str]] = Riding(self.later, self._taken_alone)
        self._unclaimed: tuple[asyncio.AbstractEventLoop, UnclaimedHandler] | None = None

    async def declare(self) -> None:
        """Declare the exchanges and this process's queue, and consume it (on the
        connection's loop); the robust connection declares them again after a
        reconnection."""
        channel = await self._connection.channel(publisher_confirms=False)
        self._channel = channel
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue(
            f"{EXCHANGE}.{self.origin}", exclusive=True, auto_delete=True)
        await queue.bind(exchange)
        self._keyed = await channel.declare_exchange(
            KEYED_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
        self._queue = queue
        await self._consume(channel)
        # After a reconnection: once aio-pika has declared the queue and its bindings
        # again on the new channel.
        channel.reopen_callbacks.add(self._consume)
        self._direct = await self._connection.channel(publisher_confirms=True,
                                                      on_return_raises=True)
        self._exchange = exchange
        if self._announcer is None:
            self._announcer = asyncio.ensure_future(self._announce_forever())
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self.interests.sweep_forever())

    async def _consume(self, channel: Any) -> None:
        """Consume this process's queue on the AMQP channel itself: aio-pika's consumer
        makes an object and a task of its own for every message."""
        underlay = await channel.get_underlay_channel()
        await underlay.basic_consume(self._queue.name, self._delivered, no_ack=True)

    async def _delivered(self, message: aiormq.abc.DeliveredMessage) -> None:
        await self._received(message.body)

    async def _bind(self, key: str) -> None:
        if self._queue is None or self._keyed is None:
            raise RuntimeError("not declared")
        await self._queue.bind(self._keyed, routing_key=key)

    async def _unbind(self, key: str) -> None:
        if self._queue is not None and self._keyed is not None:
            await self._queue.unbind(self._keyed, routing_key=key)

    def _wanted(self, routing_key: str) -> bool:
        """Whether a claim, wait or listener here still waits on ``routing_key``."""
        channel, _dot, key = routing_key.partition(".")
        if channel == "results":
            return (self.results.notifier.has_waiters(key)
                    or self.results.notifier.listening(key) > 0)
        return False  # offers: wanted while submissions come, and a while after

    def _bound(self, routing_key: str) -> None:
        """Now bound: what another process published before did not come here, so
        whoever waits on the key looks again, in the database. With no other process
        (a newcomer publishes only once it has heard this one), nothing was missed."""
        channel, _dot, key = routing_key.partition(".")
        if channel == "results" and self.peers.any():
            self.results.notifier.notify(key, None)

    async def _announce_forever(self) -> None:
        """``hello`` now and every ``ANNOUNCE`` seconds (cancelled when the I/O
        thread stops): the others keep this process among their peers."""
        while True:
            await self._say("hello")
            await asyncio.sleep(ANNOUNCE)

    async def _farewell(self) -> None:
        """Stop saying ``hello`` (the loop may be the service's, which goes on) and
        say ``bye``."""
        for task in (self._announcer, self._sweeper):
            if task is not None:
                task.cancel()
        self._announcer = self._sweeper = None
        self.interests.forget()
        for words in self.taken_words.take_all().values():
            for origin, ticket in words:
                await self._tell(origin, self._encode(_taken(ticket, True)))
        if self._exchange is not None:
            await self._say("bye")

    async def _say(self, what: str) -> None:
        await self._publish(self._encode({"channel": what}))

    def _encode(self, message: dict[str, Any]) -> bytes:
        return json.dumps({"origin": self.origin, **message}, separators=(",", ":")).encode()

    def publish(self, message: dict[str, Any], keyed: bool = True) -> None:
        """Send a notification (``channel``, ``key``) to the other processes that
        wait for it (``keyed``), or to all of them, if any; from any thread, never
        blocks."""
        if self._keyed is None or not self.peers.any():
            return
        routing_key = f"{message['channel']}.{message['key']}" if keyed else ""
        with contextlib.suppress(RuntimeError):  # stopped: nobody to tell
            self._connection.io.submit(self._publish(self._encode(message), routing_key))

    async def _publish(self, body: bytes, routing_key: str = "") -> None:
        if self._channel is None:
            return
        try:
            await _publish(self._channel, body, KEYED_EXCHANGE if routing_key else EXCHANGE,
                           routing_key)
        except Exception as exc:  # a lost wake-up: the waits look in the database
            log.debug("a wake-up was not published: %s: %s", type(exc).__name__, exc)

    def tell(self, origin: str, message: dict[str, Any]) -> None:
        """Send ``message`` to process ``origin``'s queue alone, unconfirmed (the words
        of a hand-off, whose loss only delays what waits for them); from any thread."""
        if self._channel is None:
            return
        with contextlib.suppress(RuntimeError):  # stopped: nobody to tell
            self._connection.io.submit(self._tell(origin, self._encode(message)))

    async def _tell(self, origin: str, body: bytes) -> None:
        try:
            await _publish(self._channel, body, "", f"{EXCHANGE}.{origin}")
        except Exception as exc:
            log.debug("a word to %s was not sent: %s: %s", origin, type(exc).__name__, exc)

    def send(self, origin: str, message: dict[str, Any]) -> concurrent.futures.Future[bool]:
        """Send ``message`` to process ``origin``'s queue alone: done with True once
        RabbitMQ confirmed it was queued there, False when it was not (that process
        is gone, or the broker is away). From any thread."""
        try:
            return self._connection.io.submit(self._send(origin, self._encode(message)))
        except RuntimeError:  # stopped
            failed: concurrent.futures.Future[bool] = concurrent.futures.Future()
            failed.set_result(False)
            return failed

    async def _send(self, origin: str, body: bytes) -> bool:
        direct = self._direct
        if direct is None:
            return False
        try:
            confirmed = await _publish(direct, body, "", f"{EXCHANGE}.{origin}",
                                       mandatory=True)
            return isinstance(confirmed, aiormq.spec.Basic.Ack)
        except Exception as exc:
            log.debug("a hand-off to %s was not delivered: %s: %s", origin,
                      type(exc).__name__, exc)
            return False

    def on_unclaimed(self, handler: UnclaimedHandler) -> None:
        self._unclaimed = (asyncio.get_running_loop(), handler)

    async def _received(self, body: bytes) -> None:
        try:
            notification = json.loads(body)
            origin, channel = str(notification["origin"]), notification["channel"]
            if origin == self.origin:
                return
            if channel == "bye":
                self.peers.gone(origin)
                self.offers.gone(origin)
                return
            if self.peers.heard(origin):  # a newcomer: tell it this process is here
                await self._say("hello")
            if channel == "hello":
                return
            if channel == "committed":
                self._word(str(notification["ticket"]), bool(notification["ok"]))
                return
            if channel == "taken":
                self.reply(str(notification["ticket"]), bool(notification["delivered"]))
                return
            key = str(notification["key"])
            if channel == "tasks":
                self.tasks.notifier.notify(key)
            elif channel == "results":
                self.results.notifier.notify(key, decode_tasks(notification.get("tasks")))
            elif channel == "offer":
                self.offers.heard(origin, *decode_offer(notification))
                for ticket in notification.get("taken", ()):
                    self.reply(str(ticket), True)  # a ticket of another process's: none here
            elif channel == "hand":
                self._handed(notification)
        except Exception as exc:  # a malformed message must not stop the consumer
            log.warning("ignored a malformed wake-up: %s: %s", type(exc).__name__, exc)

    def _handed(self, message: dict[str, Any]) -> None:
        """Tasks another process's submission handed to a claim of ``session`` here:
        to that claim if it still waits, else to the unclaimed handler (which releases
        them); either way the sender hears which (``taken``)."""
        endpoint_id, session, ticket, handed = decode_hand(message)
        committed: concurrent.futures.Future[bool | None] = concurrent.futures.Future()
        self._awaiting[ticket] = committed
        asyncio.get_running_loop().call_later(COMMIT_WORD_TIMEOUT, self._word, ticket, None)
        handed = dataclasses.replace(handed, committed=committed)
        taken = self.tasks.notifier.take(endpoint_id, session)
        if taken is not None:
            self.tasks.notifier.hand(taken, handed)
        elif self._unclaimed is not None:
            loop, handler = self._unclaimed
            with contextlib.suppress(RuntimeError):  # stopped: the sender releases them
                loop.call_soon_threadsafe(handler, endpoint_id, session, handed)
        origin = str(message["origin"])
        if taken is None:
            self.tell(origin, _taken(ticket, False))
            return
        self.taken_words.hold(endpoint_id, [(origin, ticket)], TAKEN_RIDES)

    def _taken_alone(self, _endpoint_id: str, words: list[tuple[str, str]]) -> None:
        """No offer of the endpoint came to carry these words: they go alone."""
        for origin, ticket in words:
            self.tell(origin, _taken(ticket, True))

    def expect_reply(self, ticket: str) -> concurrent.futures.Future[bool]:
        """Whether the hand-off ``ticket`` reached its claim, once its process says."""
        reply: concurrent.futures.Future[bool] = concurrent.futures.Future()
        self._replies[ticket] = reply
        return reply

    def reply(self, ticket: str, delivered: bool) -> None:
        """The claim's process said (or, after ``TAKEN_WORD_TIMEOUT``, did not say)
        whether it gave hand-off ``ticket`` to its claim."""
        reply = self._replies.get(ticket)
        if reply is not None and not reply.done():
            reply.set_result(delivered)

    def collect_reply(self, ticket: str, wanted: bool) -> concurrent.futures.Future[bool] | None:
        """The reply to hand-off ``ticket`` if ``wanted`` (it is forgotten once
        done), else None (forgotten now)."""
        reply = self._replies.get(ticket) if wanted else self._replies.pop(ticket, None)
        if reply is None or not wanted:
            return None
        reply.add_done_callback(lambda _done: self._replies.pop(ticket, None))
        return reply

    def reply_by(self, ticket: str, timeout: float) -> None:
        """No reply to hand-off ``ticket`` within ``timeout`` seconds counts as "not
        delivered"; from any thread."""
        self.later(timeout, self.reply, ticket, False)

    def later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        """Call ``callback(*args)`` on the connection's loop in ``delay`` seconds;
        from any thread (not at all once stopped)."""
        loop = self._connection.io.loop
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.call_later, delay, callback, *args)

    def _word(self, ticket: str, ok: bool | None) -> None:
        """The handing submission committed (True), failed (False), or said nothing
        in time (None)."""
        committed = self._awaiting.pop(ticket, None)
        if committed is not None and not committed.done():
            committed.set_result(ok)

    def close(self) -> None:
        """Say ``bye`` (so the others stop waking this process at once), then stop."""
        with contextlib.suppress(Exception):
            self._connection.io.call(self._farewell(), BYE_TIMEOUT)
        self._exchange = self._keyed = self._channel = self._direct = None
        for ticket in list(self._awaiting):
            self._word(ticket, None)
        for ticket in list(self._replies):
            self.reply(ticket, False)
        self._replies.clear()
        self.tasks.notifier.close()
        self.results.notifier.close()


class SharedTaskWakeups:
    """``TaskWakeups``: claims waiting here; notifications reach every process."""

    def __init__(self, notifier: Notifier, fanout: Fanout) -> None:
        self.notifier = notifier
        self._fanout = fanout

    def waiter(self, endpoint_id: str) -> asyncio.Future[Any]:
        return self.notifier.waiter(endpoint_id)

    def discard(self, endpoint_id: str, waiter: asyncio.Future[Any]) -> None:
        self.notifier.discard(endpoint_id, waiter)

    def offer(self, waiter: asyncio.Future[Any], offer: ClaimOffer) -> None:
        self.notifier.offer(waiter, offer)
        endpoint_id = self.notifier.key_of(waiter)
        if endpoint_id is not None:
            message = encode_offer(endpoint_id, offer)
            # The submissions whose hands reached the endpoint's last claims hear it
            # here: they submit to it, so they hear its offers (``take``).
            riders = self._fanout.taken_words.take(endpoint_id)
            if riders:
                message["taken"] = [ticket for _origin, ticket in riders]
            self._fanout.publish(message)

    def take(self, endpoint_id: str, session: str | None = None,
             remote: bool = False) -> Taken | None:
        taken = self.notifier.take(endpoint_id, session)
        if taken is not None or not remote or not self._fanout.peers.any():
            return taken
        self._fanout.interests.want(f"offer.{endpoint_id}")  # hear its next offers
        found = self._fanout.offers.take(endpoint_id)
        if found is None or (session is not None and found.offer.session != session):
            return None
        return Taken(endpoint_id, found.offer, origin=found.origin, ticket=uuid.uuid4().hex)

    def hand(self, taken: Taken, handed: Handed) -> asyncio.Future[bool] | None:
        if taken.origin is None:
            self.notifier.hand(taken, handed)
            return None
        if handed_chars(handed.tasks) > MAX_HANDED_CHARS:
            refused: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            refused.set_result(False)  # too big for a message: queued instead
            return refused
        message = encode_hand(taken.endpoint_id, taken.offer.session, taken.ticket, handed)
        self._fanout.expect_reply(taken.ticket)
        return asyncio.wrap_future(self._fanout.send(taken.origin, message))

    def committed(self, taken: Taken, ok: bool) -> concurrent.futures.Future[bool] | None:
        if taken.origin is None:
            return None
        self._fanout.tell(taken.origin, {"channel": "committed", "ticket": taken.ticket,
                                         "ok": ok})
        reply = self._fanout.collect_reply(taken.ticket, wanted=ok)
        if reply is not None:
            self._fanout.reply_by(taken.ticket, TAKEN_WORD_TIMEOUT)
        return reply

    def on_unclaimed(self, handler: UnclaimedHandler) -> None:
        self._fanout.on_unclaimed(handler)

    def withdraw(self, waiter: asyncio.Future[Any]) -> bool:
        return self.notifier.withdraw(waiter)

    def notify(self, endpoint_id: str) -> None:
        self.notifier.notify(endpoint_id)
        # To every process: a claim anywhere may wait for it.
        self._fanout.publish({"channel": "tasks", "key": endpoint_id}, keyed=False)

    def notifications(self, endpoint_id: str) -> int:
        """Counts the other processes' notifications too, as they arrive."""
        return self.notifier.notifications(endpoint_id)

    def has_waiters(self, endpoint_id: str) -> bool:
        return self.notifier.has_waiters(endpoint_id)

    def waiting_keys(self) -> frozenset[str]:
        return self.notifier.waiting_keys()

    def offering(self, endpoint_id: str) -> bool:
        return self.notifier.offering(endpoint_id)


class SharedResultWakeups:
    """``ResultWakeups``: waits and listeners here; notifications reach every process."""

    def __init__(self, notifier: Notifier, fanout: Fanout) -> None:
        self.notifier = notifier
        self._fanout = fanout
        #: Per owner, tasks settled here that wait to ride to the others.
        self._settled: Riding[Task] = Riding(fanout.later, self._publish)

    def waiter(self, owner_id: str) -> asyncio.Future[Any]:
        waiter = self.notifier.waiter(owner_id)
        self._fanout.interests.want(f"results.{owner_id}")
        return waiter

    def discard(self, owner_id: str, waiter: asyncio.Future[Any]) -> None:
        self.notifier.discard(owner_id, waiter)

    def notify(self, owner_id: str, tasks: list[Task] | None = None) -> None:
        self.notifier.notify(owner_id, tasks)
        settled = self._settled.take(owner_id)
        if tasks is not None:
            tasks = tasks + settled
        self._publish(owner_id, tasks)  # None: the others look, and find those committed

    def notify_settled(self, owner_id: str, tasks: list[Task]) -> None:
        """``tasks`` told before their commit (with :meth:`notify`), committed now.
        Here at once; to the other processes with the owner's next notification, or
        alone after ``SETTLED_RIDES``: there they only serve a wait that began between
        the two, and a round trip's next result is usually on its way by then."""
        self.notifier.notify(owner_id, tasks)
        if self._fanout.peers.any():
            self._settled.hold(owner_id, tasks, SETTLED_RIDES)

    def _publish(self, owner_id: str, tasks: list[Task] | None) -> None:
        if self._fanout.peers.any():  # else the tasks' encoding is wasted
            for values in carried(tasks):
                self._fanout.publish({"channel": "results", "key": owner_id, "tasks": values})

    def listen(self, owner_id: str, callback: ResultListener) -> None:
        self.notifier.listen(owner_id, callback)
        self._fanout.interests.want(f"results.{owner_id}")

    def unlisten(self, owner_id: str, callback: ResultListener) -> None:
        self.notifier.unlisten(owner_id, callback)

    def listening(self, owner_id: str) -> int:
        return self.notifier.listening(owner_id)


def _taken(ticket: str, delivered: bool) -> dict[str, Any]:
    """The word that hand ``ticket`` reached its claim, or did not."""
    return {"channel": "taken", "ticket": ticket, "delivered": delivered}
