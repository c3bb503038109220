"""Claims waiting in other service processes, and the tasks handed to them.

A claim that waits for work offers itself in its own process (``Notifier.offer``) and
to the others that submit to its endpoint (``farcall.wakeups.keyed``, ``interests``):
an ``offer`` message names the endpoint, the session, how many tasks it takes and how
long it may still wait. Each process keeps the latest offer of each other process per
endpoint (:class:`RemoteOffers`) until it expires, is taken, or that process says
``bye``.

A submission that finds no claim waiting in its own process takes a remote offer and
sends the tasks to the claim's process in a ``hand`` message, straight to that
process's queue (mandatory, confirmed), before it commits them as claimed by the
session: the endpoint starts on them while the commit is on its way, as with a claim
in the same process. The claim's process answers ``taken`` (given to the claim, or
not); a "yes" rides with the endpoint's next offer, published anyway when the
endpoint claims again (``wakeups.TAKEN_RIDES``). A ``committed`` message follows once
the submission committed or failed, and the claim's process records the endpoint's
results only after it.

An offer may be taken twice (by two processes, or by one just as the claim was
answered otherwise). Tasks that did not reach the claim are stored as claimed by a
session that will never get them, so they are released to the queue once committed
(``TaskStore.release``): by the submission's process when the answer is "not taken"
or does not come, and by the claim's process (``farcall_service.unclaimed``).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from farcall_service.brokers.interface import ClaimOffer, Handed
from farcall_service.storage.interface import ClaimedTask, TaskOptions

#: Seconds an offer is believed beyond the wait its claim announced: the claim's
#: process answers it and the endpoint claims again at once, with a new offer.
GRACE = 0.5
#: Characters of payload a submission sends to a claim in another process at most;
#: larger ones are queued and claimed from the database.
MAX_HANDED_CHARS = 256 * 1024


@dataclass(frozen=True)
class RemoteOffer:
    """A claim waiting in ``origin`` for ``endpoint_id``'s tasks until ``expires``
    (this process's monotonic clock)."""

    origin: str
    endpoint_id: str
    offer: ClaimOffer
    expires: float


class RemoteOffers:
    """The other processes' latest offers, per endpoint; safe from any thread."""

    def __init__(self) -> None:
        self._offers: dict[str, dict[str, RemoteOffer]] = {}
        self._lock = threading.Lock()

    def heard(self, origin: str, endpoint_id: str, offer: ClaimOffer) -> None:
        """``origin`` has a claim waiting; it replaces that process's earlier offer."""
        expires = time.monotonic() + offer.wait + GRACE
        with self._lock:
            self._offers.setdefault(endpoint_id, {})[origin] = RemoteOffer(
                origin, endpoint_id, offer, expires)

    def take(self, endpoint_id: str) -> RemoteOffer | None:
        """Remove and return an offer of ``endpoint_id`` that has not expired."""
        now = time.monotonic()
        with self._lock:
            offers = self._offers.get(endpoint_id)
            while offers:
                origin = next(iter(offers))
                found = offers.pop(origin)
                if found.expires > now:
                    return found
            self._offers.pop(endpoint_id, None)
        return None

    def offered(self, endpoint_id: str) -> bool:
        """Whether another process's claim of ``endpoint_id`` is known to wait."""
        now = time.monotonic()
        with self._lock:
            return any(found.expires > now
                       for found in self._offers.get(endpoint_id, {}).values())

    def gone(self, origin: str) -> None:
        """``origin`` stopped: none of its claims waits any more."""
        with self._lock:
            for offers in self._offers.values():
                offers.pop(origin, None)


def encode_offer(endpoint_id: str, offer: ClaimOffer) -> dict[str, Any]:
    return {"channel": "offer", "key": endpoint_id, "session": offer.session,
            "max_tasks": offer.max_tasks, "wait": offer.wait}


def decode_offer(message: dict[str, Any]) -> tuple[str, ClaimOffer]:
    return str(message["key"]), ClaimOffer(str(message["session"]), int(message["max_tasks"]),
                                           float(message["wait"]))


def encode_hand(endpoint_id: str, session: str, ticket: str, handed: Handed) -> dict[str, Any]:
    return {
        "channel": "hand", "key": endpoint_id, "session": session, "ticket": ticket,
        "owner": handed.owner_id, "group": handed.task_group_id,
        "created": handed.created_at,
        "tasks": [[task.id, task.function_id, task.payload, dataclasses.asdict(task.options)]
                  for task in handed.tasks],
    }


def decode_hand(message: dict[str, Any]) -> tuple[str, str, str, Handed]:
    """The endpoint, session, ticket and tasks of a ``hand`` message (without its
    ``committed`` future, which the receiver makes)."""
    owner = str(message["owner"])
    tasks = [ClaimedTask(str(task_id), str(function_id), str(payload),
                         TaskOptions(**options), owner_id=owner)
             for task_id, function_id, payload, options in message["tasks"]]
    handed = Handed(tasks, owner, str(message["group"]), float(message["created"]))
    return str(message["key"]), str(message["session"]), str(message["ticket"]), handed


def handed_chars(tasks: list[ClaimedTask]) -> int:
    return sum(len(task.payload) for task in tasks)
