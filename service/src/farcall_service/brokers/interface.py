"""The broker seam: what moves tasks to endpoints, results to whoever waits for them,
and wake-ups between service processes.

The database is the truth (``farcall_service.storage``); a broker only says *when* to
look, and hands over what a commit already holds so nobody has to read it back. Its
two channels are keyed wake-ups:

- ``tasks``, keyed by endpoint id: claims wait there; a commit that leaves tasks
  queued notifies it; a waiting claim may *offer* itself, and a submission then
  *takes* it and hands it its tasks directly (see ``farcall_service.dispatching``),
  in this process or, through a broker that serves several, in another one.
- ``results``, keyed by owner (user) id: result waits and the SDK channels that follow
  their tasks; a commit of results notifies it with the recorded tasks, or with None
  for "look again, in the database".

Waiters and listeners live in the process that registered them (a claim or a wait is
a request served here); a notification reaches every process that serves the
database: that is the broker's third job. The lifecycle (``farcall_service.lifecycle``)
is the only user of a broker; routes never see one.

Lifecycle of a broker, in order:

1. built by its plugin's ``BrokerType.factory(settings, store)`` (nothing reached yet);
2. :meth:`Broker.start`, before the service answers anything, from a worker thread
   and given the service's event loop (a broker doing I/O may keep its connection
   there); a broker that cannot serve this process (another process holds what it
   needs) raises :class:`BrokerError` saying what to do; calling it again is a no-op;
3. any number of waits, offers and notifications, from the event loop or (``notify``)
   any thread;
4. :meth:`Broker.stop`, once, after the last request, from a worker thread: every
   waiter is resolved with None, listeners are dropped, and whatever ``start`` held
   is released.

``farcall_service.testing.broker_contract`` is the contract every broker runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from farcall_service.storage.interface import ClaimedTask, Outcome, Task

#: Called with every notification of the results of an owner: the recorded tasks,
#: or None for "look again, in the database".
ResultListener = Callable[[list[Task] | None], None]


class BrokerError(RuntimeError):
    """A broker cannot serve this process; the message says why and what to do."""


@dataclass(frozen=True)
class ClaimOffer:
    """What a waiting claim takes: tasks for ``session``, at most ``max_tasks``;
    ``wait``: seconds it may still wait (how long another process may hand to it)."""

    session: str
    max_tasks: int
    wait: float = 0.0


@dataclass(frozen=True)
class Handed:
    """Tasks a submission hands to a waiting claim before it commits them, as
    claimed by the claim's session.

    The owner, group and creation time let the claim's process tell their results
    before they are recorded, as the submission's own process does. ``committed``
    is set when the submission runs in another process: done with True once it
    committed, False when it failed, None when no word came in time.
    """

    tasks: list[ClaimedTask]
    owner_id: str
    task_group_id: str
    created_at: float
    committed: concurrent.futures.Future[bool | None] | None = None


@dataclass(eq=False)
class Taken:
    """A waiting claim removed by :meth:`TaskWakeups.take`; resolve it with
    :meth:`TaskWakeups.hand`, always.

    A claim waiting in another process has ``origin`` (that process) and a
    ``ticket`` naming the hand-off, and no loop or future here.
    """

    endpoint_id: str
    offer: ClaimOffer
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    origin: str | None = None
    ticket: str = ""

    @property
    def remote(self) -> bool:
        """Whether the claim waits in another process."""
        return self.origin is not None


#: Called with an endpoint id, a session and tasks another process handed to a claim
#: of that session here which no longer waited: they are stored as claimed by the
#: session, which will never get them, so they must go back to the queue.
UnclaimedHandler = Callable[[str, str, Handed], None]


class TaskWakeups(Protocol):
    """Moving tasks to endpoints. Keys are endpoint ids."""

    def waiter(self, endpoint_id: str) -> asyncio.Future[Any]:
        """A future resolved at the next notification of ``endpoint_id`` (or with the
        tasks handed to it); call on the event loop, *before* looking at the queue."""

    def discard(self, endpoint_id: str, waiter: asyncio.Future[Any]) -> None:
        """Unregister ``waiter`` (and end its offer); always called once it is done with."""

    def offer(self, waiter: asyncio.Future[Any], offer: ClaimOffer) -> None:
        """Let a submission :meth:`take` this registered waiter."""

    def take(self, endpoint_id: str, session: str | None = None,
             remote: bool = False) -> Taken | None:
        """Remove the oldest offered waiter of ``endpoint_id`` (of ``session`` only,
        when given); the caller must :meth:`hand` it something. With ``remote``, a
        claim offered in another process may be taken when none is offered here."""

    def hand(self, taken: Taken, handed: Handed) -> asyncio.Future[bool] | None:
        """Resolve a taken waiter with ``handed``. A claim here: safe from any thread,
        returns None. A claim elsewhere (``taken.remote``; call on the event loop):
        sends the tasks there and returns a future done with True once the broker
        holds them, False when they cannot reach that process; the submission then
        commits them as queued, not as claimed."""

    def committed(self, taken: Taken, ok: bool) -> concurrent.futures.Future[bool] | None:
        """The submission that handed to ``taken`` committed (``ok``) or failed: a
        claim's process elsewhere records its results only after that word (or
        after ``dispatching.COMMIT_WINDOW``). After ``ok``, for a claim elsewhere: a
        future done with whether that process gave the tasks to its claim (False too
        when it did not say in time); on False the submission releases them
        (``TaskStore.release``). None for a claim here."""

    def on_unclaimed(self, handler: UnclaimedHandler) -> None:
        """Call ``handler`` on the caller's event loop for tasks another process
        handed to a claim here that no longer waited: it releases them once their
        submission committed, as the submission does on its side (call on the event
        loop, before serving). A broker of one process never calls it."""

    def withdraw(self, waiter: asyncio.Future[Any]) -> bool:
        """End an offer; True when a submission took it first (its tasks are on their
        way: await the waiter)."""

    def notify(self, endpoint_id: str) -> None:
        """Tasks may be queued for ``endpoint_id``: wake its claims, in every process.
        Safe from any thread."""

    def notifications(self, endpoint_id: str) -> int:
        """How many notifications ``endpoint_id`` has had; unchanged means nothing was
        queued for it since (``dispatching.EmptyQueues``)."""

    def has_waiters(self, endpoint_id: str) -> bool:
        """Whether a claim of ``endpoint_id`` waits here (the endpoint is alive)."""

    def waiting_keys(self) -> frozenset[str]:
        """Endpoints with a claim waiting here."""

    def offering(self, endpoint_id: str) -> bool:
        """Whether a claim of ``endpoint_id`` has an open offer here."""


class ResultWakeups(Protocol):
    """Moving results to whoever waits for them. Keys are owner (user) ids.

    A broker of several processes may also have ``notify_settled(owner_id, tasks)``,
    which the service calls instead of :meth:`notify` for tasks told before their
    commit, once it is through: their waits have heard them already, so another
    process may hear them late, with the owner's next notification.
    """

    def waiter(self, owner_id: str) -> asyncio.Future[Any]:
        """A future resolved with the next notification of ``owner_id``'s results;
        call on the event loop, *before* looking for them."""

    def discard(self, owner_id: str, waiter: asyncio.Future[Any]) -> None:
        """Unregister ``waiter``; always called once it is done with."""

    def notify(self, owner_id: str, tasks: list[Task] | None = None) -> None:
        """``tasks`` of ``owner_id`` have ended (None: look again, in the database):
        resolve the waiters and call the listeners, in every process. Safe from any
        thread."""

    def listen(self, owner_id: str, callback: ResultListener) -> None:
        """Call ``callback`` on this event loop at every notification of ``owner_id``
        until :meth:`unlisten`; call on the event loop."""

    def unlisten(self, owner_id: str, callback: ResultListener) -> None:
        """Stop calling ``callback`` (compared with ``==``: bound methods work)."""

    def listening(self, owner_id: str) -> int:
        """How many listeners ``owner_id`` has here."""


@dataclass(frozen=True)
class StreamAccess:
    """Where an AMQP consumer reads a user's result streams: ``connection_url``
    carries credentials that may read only that user's queues, each named
    ``{queue_prefix}{task_group_id}`` (``GET /v2/get_amqp_result_connection_url``)."""

    connection_url: str
    queue_prefix: str


class ResultStreams(Protocol):
    """Results pushed over AMQP to whoever consumes a task group's queue, as the
    official Executor does: one messagepack ``result`` message per ended task, on the
    queue ``{queue_prefix}{task_group_id}``. The database stays the truth: a result
    is published after its commit, from the store's outbox, at least once.

    Methods are coroutines of the caller's event loop; an implementation may do its
    I/O elsewhere (its own thread) and raises :class:`BrokerError` when the broker
    cannot be reached.
    """

    async def open(self, owner_id: str, task_group_id: str) -> None:
        """Make the task group's queue, readable by ``owner_id``'s credentials only;
        idempotent. Called before a submission that asked for it is answered, and
        again when its owner reloads the group."""

    async def access(self, owner_id: str) -> StreamAccess:
        """Credentials that read only ``owner_id``'s queues; the same ones for every
        call until they expire, not new ones per connection attempt."""

    async def publish(self, tasks: Sequence[Task]) -> None:
        """Publish the results of ended ``tasks`` to their groups' queues; returns once
        the broker has confirmed every message (raise when it has not: the caller
        keeps them in the outbox and tries again)."""

    async def forget(self, owner_id: str) -> None:
        """``owner_id`` is removed: their broker credentials and queues go."""


@dataclass(frozen=True)
class UserEndpoint:
    """An endpoint a core endpoint (the official ``globus-compute-endpoint`` 4.x)
    starts on the service's command for one owner's tasks of one configuration
    (``farcall_service.core_endpoints``). Its tasks stay its core's: it only runs them."""

    core_id: str
    owner_id: str
    endpoint_id: str

    @property
    def sender(self) -> str:
        """How the handlers given to :meth:`EndpointQueues.consume` name it."""
        return f"{self.core_id}.{self.owner_id}.{self.endpoint_id}"

    @staticmethod
    def parse(sender: str) -> UserEndpoint | None:
        """The user endpoint a sender names; None for any other endpoint's id."""
        parts = sender.split(".")
        return UserEndpoint(*parts) if len(parts) == 3 else None


#: Called with the endpoint a results message came from (as the broker vouches: its
#: id, or a :attr:`UserEndpoint.sender`) and its outcomes; returns once they are
#: recorded (the message is acknowledged then).
ResultsHandler = Callable[[str, list[Outcome]], Awaitable[None]]
#: Called with the endpoint a heartbeat came from (as for results) and the status it
#: reports.
HeartbeatHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


class EndpointQueues(Protocol):
    """Tasks to endpoints over AMQP, results and heartbeats back, as the official
    endpoint speaks it: a durable task queue per endpoint, one results queue and one
    heartbeat queue consumed by every service process (competing consumers).

    The database stays the truth: a task is published to its endpoint's queue while
    its claim is uncommitted (``TaskStore.claim(forward=...)``) and a result is
    acknowledged only after its commit, so both are at least once; the store
    records a result once. An endpoint's credentials read only its task queue and
    write only results and heartbeats; the broker tells which endpoint sent each
    message (a property the broker validates), never the message itself.

    Coroutines run on the caller's event loop; an implementation may do its I/O
    elsewhere and raises :class:`BrokerError` when the broker cannot be reached.
    """

    async def open(self, endpoint_id: str) -> dict[str, Any]:
        """Make the endpoint's task queue and broker user (idempotent) and return
        its ``amqp_creds``: ``endpoint_id`` and ``task_queue_info``,
        ``result_queue_info``, ``heartbeat_queue_info`` (each ``connection_url``,
        ``queue`` or ``exchange``, ``queue_publish_kwargs``), as the official
        endpoint reads them. The same credentials every time for one endpoint."""

    async def open_core(self, endpoint_id: str) -> dict[str, Any]:
        """Make a core endpoint's command queue and broker user (idempotent) and
        return what its registration answers besides its id: ``command_queue_info``
        (``connection_url``, ``queue``) and ``heartbeat_queue_info``. Its credentials
        read its command queue and write heartbeats, nothing else."""

    async def open_user(self, endpoint: UserEndpoint) -> dict[str, Any]:
        """As :meth:`open`, for a user endpoint of a core endpoint: the ``amqp_creds``
        of its start command; the handlers hear from it as ``endpoint.sender``."""

    async def command(self, core_id: str, body: dict[str, Any]) -> None:
        """Publish a command (JSON) to the core endpoint's command queue, with the
        content type and timestamp it checks; returns once the broker confirmed it."""

    async def forward(self, endpoint_id: str, tasks: Sequence[ClaimedTask]) -> None:
        """Publish ``tasks`` to the endpoint's queue; returns once the broker has
        confirmed every message, raises when it has not."""

    async def cancel(self, endpoint_id: str, task_ids: Sequence[str]) -> None:
        """Publish a ``task_cancel`` message per task to the endpoint's queue: the
        tasks, forwarded before, were cancelled. At most once: a cancel not delivered
        leaves the task to run, and its result is then not kept. (The official 4.19
        endpoint does not act on it.)"""

    async def consume(self, results: ResultsHandler, heartbeats: HeartbeatHandler) -> None:
        """Start consuming results and heartbeats, calling the handlers on the
        caller's event loop until the broker stops. A message is acknowledged once
        its handler returns, and dropped (with a warning) when it comes from no
        endpoint or cannot be read; a handler that raises has it delivered again."""

    async def forget(self, endpoint_id: str) -> None:
        """The endpoint is deleted: its broker users (its user endpoints' too), task
        queue and command queue go."""


class Broker(Protocol):
    """Tasks to endpoints, results to waiters, wake-ups between service processes."""

    @property
    def tasks(self) -> TaskWakeups:
        """Claims waiting per endpoint."""

    @property
    def results(self) -> ResultWakeups:
        """Result waits and listeners per owner."""

    @property
    def single_process(self) -> bool:
        """True when, once started, this broker guarantees that no other service process
        serves the database: this process then sees every task's whole life, and its
        memory of unfinished tasks may answer "not finished yet" without the store."""

    @property
    def streams(self) -> ResultStreams | None:
        """Result streams for AMQP consumers (the official Executor), or None when this
        broker has none (the service then answers 501 for them)."""

    @property
    def endpoints(self) -> EndpointQueues | None:
        """Task queues for endpoints that take their tasks over AMQP, or None when
        this broker has none (registrations asking for them are refused)."""

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Reach whatever the broker needs; raise :class:`BrokerError` when it cannot
        serve this process. Idempotent. ``loop``: the service's event loop, running in
        another thread while this is called; a broker that does I/O may do it there, so
        that what it hears reaches the waiters without a hop between threads. Without
        it (admin commands, tests) the broker runs its I/O where it likes."""

    def stop(self) -> None:
        """Resolve every waiter with None, drop listeners, release what :meth:`start`
        holds. Never called on the service's event loop itself."""
