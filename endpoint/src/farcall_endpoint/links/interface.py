"""The Link interface: what an endpoint needs from its service.

A link plugin declares ``farcall_endpoint.kinds.LinkType(name, factory)`` in its
``farcall_endpoint_links`` hook; ``factory(context)`` receives a :class:`LinkContext`
and returns a :class:`Link` without talking to the service yet. The runner then:

1. calls :meth:`Link.register`, again after a failure (with backoff) until the
   service answers. When the answer names a link (``"link": "NAME"``) other than
   this one, the runner closes this link and builds that one, with the answer in its
   context (where a broker's address and credentials would be); otherwise it keeps
   this one;
2. calls :meth:`Link.claim` from one thread, :meth:`Link.report` from several at
   once and :meth:`Link.heartbeat` from another, for as long as the endpoint
   serves. Each may block for its wait or timeout, and none may delay another: a
   long-poll claim never holds up a report or a heartbeat (the built-in link opens a
   connection per thread);
3. after each claim, calls ``cancelled()`` if the link has it (optional, as
   ``goodbye``): the ids of tasks the service cancelled since the last call, which
   the runner stops (``Runner.cancel``). The service says so in a claim's answer
   (its ``cancel`` list) and answers a waiting claim at once when one of this
   endpoint's tasks is cancelled; a claim of ``max_tasks=0`` takes only those (the
   runner asks so while its workers are all busy). A stopped task still reports
   one outcome, a failure saying it was cancelled, which the service acknowledges
   and does not record;
4. when it stops in order, calls ``goodbye(session)`` if the link has it (optional,
   so older links still conform): the link closes its connections and tells the
   service, which shows the endpoint offline at once and puts the tasks it still
   holds back in the queue; a failed goodbye is only logged;
5. calls :meth:`Link.close` last, from any thread, perhaps while a claim is still
   waiting; it is idempotent.

Large values (optional, as ``goodbye`` is): a link with ``upload_result(task_id,
result) -> reference``, ``fetch_payload(task_id, key) -> payload`` and
``blob_threshold() -> int`` moves results and payloads over the threshold through the
service's blob store (``farcall_endpoint.blobs``); without them results stay inline and
a task whose payload is a blob reference fails saying the link cannot fetch it.

Errors: :class:`EndpointRefused` stops the endpoint (retrying cannot help);
:class:`ReportTooLarge` from ``report`` makes the runner split the report, or fail a
single result that is too large; any other exception is retried with backoff, and
after a failed claim the runner starts a new *session*.

A session is an id the runner chooses. The service hands a task to one session;
when it sees a new session of the endpoint it hands out again every task given to
an older one (the answer carrying them may have been lost). The runner recognises
by id the tasks it still holds, so a link need not. A result may be reported more
than once (after a lost acknowledgement, or from the spool after a restart); the
service records it once and acknowledges every repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from farcall.errors import FarcallError
from farcall.plugins.types import Transport

from farcall_endpoint.engines.interface import EngineStatus
from farcall_endpoint.tasks import Outcome


class EndpointRefused(FarcallError):
    """The service refused the endpoint for good: bad credentials, not the owner's
    endpoint, or the endpoint deleted. The message says which and what to do."""


class CredentialsRefused(EndpointRefused):
    """The endpoint's credentials are revoked or expired (401, or a login that can no
    longer be refreshed): the endpoint forgets its own login, so that its next start
    makes a new one from the user's."""


class ReportTooLarge(FarcallError):
    """The service refused a report as larger than it accepts in one request."""


@dataclass(frozen=True)
class Registration:
    """What the endpoint tells the service about itself when it starts."""

    endpoint_name: str
    display_name: str
    #: ``hostname``, ``endpoint_version``, ``python_version``, ``engine``.
    metadata: Mapping[str, str]
    #: Function ids the endpoint runs; empty lifts a restriction registered before.
    allowed_functions: Sequence[str] = ()


class Receipt(NamedTuple):
    """The service's answer to a report, by task id."""

    #: Recorded now, or recorded before (a repeat).
    acknowledged: list[str]
    #: Tasks the service does not know (deleted, or not this endpoint's): not sent again.
    rejected: list[str]


@dataclass(frozen=True)
class LinkContext:
    """What the runner hands a link's factory."""

    #: The service's URL, as the endpoint's login resolved it (for messages and logs).
    base_url: str
    endpoint_id: str
    #: A new connection to the service through the configured transport plugin,
    #: signed by the endpoint's login and without retries (the runner backs off itself).
    open_transport: Callable[[], Transport]
    #: A connection like ``open_transport``'s but unsigned: for what the service
    #: authenticates otherwise (a goodbye proves itself with its session), so that it
    #: works when the credentials are what failed. None: the link signs everything.
    open_unsigned_transport: Callable[[], Transport] | None = None
    #: The service's answer to :meth:`Link.register` when the runner built this link
    #: because that answer named it; empty for the link that registers.
    registration: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Link(Protocol):
    """An endpoint's connection to its service."""

    def register(self, registration: Registration) -> Mapping[str, Any]:
        """Register (or update) the endpoint; return the service's answer."""
        ...

    def claim(self, session: str, max_tasks: int, wait: float) -> list[dict[str, Any]]:
        """Up to ``max_tasks`` task documents for ``session``, waiting up to ``wait``
        seconds for the first (none with ``max_tasks=0``: the claim then only takes
        cancels, for a link that has the optional ``cancelled()``). A document has
        ``task_id``, ``function_id``, ``payload`` and optionally
        ``result_serializers``, ``resource_specification`` and ``container``
        (see :meth:`farcall_endpoint.tasks.Task.from_claim`)."""
        ...

    def report(self, session: str, results: list[Outcome], timeout: float,
               meanwhile: Callable[[], None] | None = None) -> Receipt:
        """Report finished tasks; return once the service has recorded them.

        ``meanwhile``, when given, runs at most once, as soon as the report is on its
        way and before its answer is awaited: the runner writes the results to disk
        then, so the disk and the service work at the same time (it runs it itself
        when a link did not). Raises :class:`ReportTooLarge` when the service refuses
        the report's size.
        """
        ...

    def heartbeat(self, session: str, status: EngineStatus) -> float | None:
        """Say the endpoint is alive and how busy; return the service's offline
        timeout in seconds (the runner beats at least three times within it), or
        None when the service does not say."""
        ...

    def close(self) -> None:
        """Release every connection; idempotent, from any thread."""
        ...
