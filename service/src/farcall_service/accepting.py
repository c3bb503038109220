"""Accepting tasks (the lifecycle's first step): every check happens before anything
is stored, then one commit.

A submission is all-or-nothing: the caller gets task ids only once every task is
durably queued, and the endpoints that have new work are woken at once. A claim
waiting for the endpoint is handed its tasks before the transaction starts (on the
event loop, when the checks need nothing the caches do not hold), so the endpoint
runs them while the commit is on its way to the disk. A result for a handed task
is told to the waits at once but committed only after the submission
(``TaskLifecycle.submissions_in_flight``); should the submission's commit fail, the
caller gets an error and the endpoint's results for those tasks are refused as
unknown. With a broker of several processes the claim may wait in another process:
the tasks go there first, then the commit ("The hand-off between processes" in
docs/service.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from farcall_service import access
from farcall_service.auth import Identity
from farcall_service.brokers.interface import BrokerError, Handed, Taken
from farcall_service.cache import MISSING
from farcall_service.context import ServiceContext
from farcall_service.errors import ApiError, bad_request, not_found
from farcall_service.ids import time_ordered_uuid
from farcall_service.payloads import check_task_payload
from farcall_service.recording import Pending, commit_alone, settle, track
from farcall_service.storage.interface import (
    ClaimedTask,
    Endpoint,
    EndpointGone,
    Function,
    NewTask,
    Quota,
    QuotaExceeded,
    RecordedOutcomes,
    TaskOptions,
)

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One task to create: where it runs, what it runs, with which arguments."""

    endpoint_id: str
    function_id: str
    payload: str


def canonical_id(raw: str, kind: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise bad_request("INVALID_ID", f"{kind} id {raw!r} is not a UUID") from None


#: Submissions up to this many tasks and characters of payload are checked on the
#: event loop when the caches hold what the checks need; larger ones in a thread, so
#: the loop never parses megabytes while other clients wait.
CHECK_ON_LOOP = 64
CHECK_ON_LOOP_CHARS = 64 * 1024


@dataclass(frozen=True)
class Checked:
    """A submission that passed every check: what to store, for whom."""

    owner_id: str
    group: str
    tasks: list[tuple[str, NewTask]]
    options: TaskOptions
    endpoints: dict[str, Endpoint]
    functions: dict[str, Function]
    now: float


async def submit(
    lc: TaskLifecycle,
    who: Identity,
    requests: Sequence[Request],
    task_group_id: str | None,
    options: TaskOptions,
    stream: bool = False,
    existing_group: bool = False,
) -> tuple[str, list[str]]:
    """Check and store ``requests``; return the task group id and task ids, in order.
    ``stream``: the group's results also go to its queue on ``lc.broker.streams``.
    ``existing_group``: a named ``task_group_id`` must be one the caller made (v3)."""
    ctx = lc.ctx
    if task_group_id and existing_group:
        await check_group(lc, who.user_id, task_group_id)
    if (len(requests) <= CHECK_ON_LOOP
            and sum(len(r.payload) for r in requests) <= CHECK_ON_LOOP_CHARS
            and _all_cached(ctx, requests)):
        checked = check(ctx, who, requests, task_group_id, options)  # no hop to a thread
    else:
        checked = await ctx.in_thread(check, ctx, who, requests, task_group_id, options)
    if stream:
        await open_stream(lc, checked.owner_id, checked.group, checked.now)
    tasks = checked.tasks
    lc.memory.accepted(
        checked.owner_id, checked.group, checked.now,
        ((task.id, eid, task.function_id) for eid, task in tasks))
    takers = _take_waiting_claims(lc, checked)
    handed = {eid: [task for e, task in tasks if e == eid][: taker.offer.max_tasks]
              for eid, taker in takers.items()}
    claimed = {eid: Handed([ClaimedTask(task.id, task.function_id,
                                        checked.functions[task.function_id].code + task.payload,
                                        options, owner_id=checked.owner_id)
                            for task in handed[eid]],
                           checked.owner_id, checked.group, checked.now)
               for eid in takers}
    # A claim waiting in another process gets its tasks before the commit starts,
    # once the broker holds them: a commit of tasks claimed by a session that never
    # gets them would leave them to nobody. Those that cannot reach it stay queued.
    remote = {eid: taker for eid, taker in takers.items() if taker.remote}
    if remote:
        for eid in await _hand_remote(lc, remote, claimed):
            del takers[eid], handed[eid], claimed[eid], remote[eid]
    work = ctx.start_in_thread(
        _store, lc, checked,
        {eid: (takers[eid].offer.session, [task.id for task in mine])
         for eid, mine in handed.items()},
        lc.recorder.take(),  # reports waiting for a commit to share
    )
    if handed:
        track(lc.submissions_in_flight,
              [task.id for mine in handed.values() for task in mine], work)
    # Handed at once, before the commit: the endpoint runs them while the commit is
    # on its way. A report of them through this process is recorded after the commit
    # (``submissions_in_flight``); through another one, it waits there for the word
    # that the commit is done (``dispatching.adopt``) or until it is visible
    # (``dispatching.report``).
    for eid, taker in takers.items():
        if not taker.remote:
            lc.broker.tasks.hand(taker, claimed[eid])
    if remote:
        work.add_done_callback(partial(_tell_committed, lc, remote, claimed))
    committed = asyncio.shield(work)  # in flight until the commit is through, whoever waits
    # Registered after the shield: the submitter is answered before the endpoints
    # whose reports shared the commit are acknowledged.
    work.add_done_callback(partial(_settle_folded, lc))
    await committed
    if task_group_id is None:  # the group made here is the caller's
        remember_group(lc, checked.owner_id, checked.group)
    return checked.group, [task.id for _eid, task in tasks]


async def check_group(lc: TaskLifecycle, owner_id: str, task_group_id: str) -> None:
    """Refuse a task group the caller did not make, as the 4.19 SDK's ``create_batch``
    documents ("If there is no Task Group associated with the given ID, or the user is
    not authorized to use it, the services will respond with an error"): adopting an
    unknown id would hide a typo, and a 404 for both keeps others' groups unseen."""
    if (owner_id, task_group_id) in lc.known_groups:
        return
    owner = await lc.ctx.in_thread(lc.ctx.store.get_task_group_owner, task_group_id)
    if owner != owner_id:
        raise ApiError(404, "TASK_GROUP_NOT_FOUND",
                       f"task group {task_group_id} not found: submit without a "
                       "task_group_id and the service makes one (its id is in the answer)")
    remember_group(lc, owner_id, task_group_id)


def remember_group(lc: TaskLifecycle, owner_id: str, task_group_id: str) -> None:
    """Groups are never handed to another owner, so a pair seen once stays true: the
    Executor's next submissions to its group skip the store."""
    if len(lc.known_groups) >= STREAMED_GROUPS_KEPT:
        lc.known_groups.clear()
    lc.known_groups.add((owner_id, task_group_id))


async def open_stream(lc: TaskLifecycle, owner_id: str, group: str, now: float) -> None:
    """Mark the group streamed and declare its queue, both before any of its tasks is
    stored: a result can then neither miss the outbox nor reach a queue not there yet.
    The queue is declared at every submission (idempotent, and it keeps a queue
    nobody reads yet from expiring); the mark only once per process."""
    streams = lc.broker.streams
    assert streams is not None
    if (owner_id, group) not in lc.streamed_groups:
        if not await lc.ctx.in_thread(lc.ctx.store.stream_group, group, owner_id, now):
            raise ApiError(409, "TASK_GROUP_TAKEN",
                           f"task group {group} was made by another user, so its results "
                           "cannot be streamed to you: submit to a new task group")
        if len(lc.streamed_groups) >= STREAMED_GROUPS_KEPT:
            lc.streamed_groups.clear()
        lc.streamed_groups.add((owner_id, group))
    try:
        await streams.open(owner_id, group)
    except BrokerError as exc:
        raise broker_unavailable(exc) from None


def broker_unavailable(exc: BrokerError) -> ApiError:
    """503: the message broker is away (the database still has every result). The
    broker's own words name hosts and vhosts: they go to the log, not to the caller."""
    log.warning("the message broker cannot be reached: %s", exc)
    return ApiError(503, "BROKER_UNAVAILABLE",
                    "the service's message broker cannot be reached; try again shortly "
                    "(results are kept meanwhile)", {"Retry-After": "5"})


#: How many streamed groups a process remembers having marked, at most.
STREAMED_GROUPS_KEPT = 10_000


def check(
    ctx: ServiceContext,
    who: Identity,
    requests: Sequence[Request],
    task_group_id: str | None,
    options: TaskOptions,
) -> Checked:
    """May the caller run every request? Reads through the caches (the store on a
    miss, and for a task group named by the caller). An endpoint deleted by another
    process since it was cached is caught by the store's transaction
    (``EndpointGone``)."""
    if not requests:
        raise bad_request("NO_TASKS", "the submission contains no tasks")
    endpoints = {}
    for eid in dict.fromkeys(r.endpoint_id for r in requests):
        endpoints[eid] = access.visible_endpoint(who, ctx.endpoint(eid), eid)
    functions = {}
    for fid in dict.fromkeys(r.function_id for r in requests):
        functions[fid] = access.visible_function(who, ctx.function(fid), fid)
    for eid, fid in dict.fromkeys((r.endpoint_id, r.function_id) for r in requests):
        access.check_runnable(functions[fid], endpoints[eid])
    for r in requests:
        check_task_payload(r.payload)
    return Checked(
        who.user_id, task_group_id or time_ordered_uuid(),
        [(r.endpoint_id, NewTask(time_ordered_uuid(), r.function_id, r.payload))
         for r in requests],
        options, endpoints, functions, time.time(),
    )


def check_task_count(count: int, cap: int) -> None:
    """At most ``cap`` tasks in one submission (0: no cap). A submission is one
    transaction under the database's write lock, so its size bounds how long every
    other writer waits; the SDK splits larger batches, each part all-or-nothing."""
    if cap and count > cap:
        raise ApiError(413, "TOO_MANY_TASKS",
                       f"the submission has {count} tasks; this service takes at most {cap} "
                       "per submission (max_tasks_per_submission): split it into several, "
                       "as the farcall SDK does")


def quota_error(exc: QuotaExceeded) -> ApiError:
    """429 for unfinished tasks (they finish: try again later), 413 for stored
    characters (they stay until removed); the message says which quota and how to free it."""
    if exc.which == "unfinished_tasks":
        return ApiError(
            429, "QUOTA_EXCEEDED",
            f"quota of unfinished tasks per user exceeded: you have {exc.used} queued or "
            f"running tasks, this submission adds {exc.adding}, the quota is {exc.limit} "
            "(max_queued_tasks_per_user); wait for some of your tasks to finish, then "
            "submit again", {"Retry-After": "5"})
    return ApiError(
        413, "QUOTA_EXCEEDED",
        f"quota of stored bytes per user exceeded: your tasks' payloads and results take "
        f"{exc.used} bytes, this submission adds {exc.adding}, the quota is {exc.limit} "
        "(max_stored_bytes_per_user); ask the service's administrator to delete your "
        "ended tasks ('farcall server tasks prune --user NAME --older-than DAYS') or to "
        "raise the quota")


def _all_cached(ctx: ServiceContext, requests: Sequence[Request]) -> bool:
    return all(ctx.endpoints.get(r.endpoint_id) is not MISSING
               and ctx.functions.get(r.function_id) is not MISSING for r in requests)


def _store(lc: TaskLifecycle, checked: Checked, claimed: dict[str, tuple[str, list[str]]],
           reports: list[Pending]) -> list[tuple[Pending, RecordedOutcomes]]:
    """The transaction, with the waiting ``reports``, and what follows it; in a
    worker thread, so a caller gone meanwhile (its channel closed) cannot leave it
    half done. Returns the reports recorded with it, for :func:`_settle_folded`."""
    settings = lc.ctx.settings
    try:
        submitted = lc.ctx.store.submit(
            checked.owner_id, checked.group, checked.tasks, checked.options, checked.now,
            claimed, [item.report for item in reports],
            Quota(settings.max_queued_tasks_per_user, settings.max_stored_bytes_per_user))
    except BaseException as exc:
        if reports:  # it may have been one of them: each goes its own way
            commit_alone(lc, reports)
            return _store(lc, checked, claimed, [])
        lc.memory.forget(task.id for _eid, task in checked.tasks)
        if isinstance(exc, QuotaExceeded):
            raise quota_error(exc) from None
        if isinstance(exc, EndpointGone):
            lc.ctx.endpoints.invalidate(exc.endpoint_id)
            raise not_found("endpoint", exc.endpoint_id) from None
        raise
    queued = Counter(eid for eid, _task in checked.tasks)
    for eid, (_session, handed) in claimed.items():
        queued[eid] -= 0 if eid in submitted.stale else len(handed)
    for eid in checked.endpoints:
        if queued[eid]:
            # Tasks left in the queue, which claims read without the write lock: wake
            # them only now that the commit is done.
            lc.broker.tasks.notify(eid)
    return list(zip(reports, submitted.recorded, strict=True))


def _settle_folded(lc: TaskLifecycle,
                   work: asyncio.Future[list[tuple[Pending, RecordedOutcomes]]]) -> None:
    """Settle the reports recorded with a submission (those of a failed one were
    settled on their own already)."""
    if not work.cancelled() and work.exception() is None:
        for item, recorded in work.result():
            settle(lc, item, recorded)


async def _hand_remote(lc: TaskLifecycle, takers: dict[str, Taken],
                       claimed: dict[str, Handed]) -> list[str]:
    """Send each claim in another process its tasks; returns the endpoints whose
    claim they could not reach (their tasks are queued instead)."""
    sent = {eid: lc.broker.tasks.hand(taker, claimed[eid]) for eid, taker in takers.items()}
    missed = []
    for eid, delivered in sent.items():
        if delivered is None or not await delivered:
            lc.broker.tasks.committed(takers[eid], False)
            missed.append(eid)
    return missed


def _tell_committed(lc: TaskLifecycle, takers: dict[str, Taken], claimed: dict[str, Handed],
                    work: asyncio.Future[Any]) -> None:
    """Tell the claims' processes elsewhere that the tasks they were handed are
    committed, or never will be; release those that did not reach their claim (it
    had stopped waiting, or its process is gone and says nothing): stored as claimed
    by its session, nothing else would ever give them out."""
    ok = not work.cancelled() and work.exception() is None
    for eid, taker in takers.items():
        reply = lc.broker.tasks.committed(taker, ok)
        if reply is not None:
            ids = [task.id for task in claimed[eid].tasks]
            asyncio.wrap_future(reply).add_done_callback(
                partial(_release_undelivered, lc, eid, taker.offer.session, ids))


def _release_undelivered(lc: TaskLifecycle, endpoint_id: str, session: str, ids: list[str],
                         delivered: asyncio.Future[bool]) -> None:
    if delivered.cancelled() or delivered.result():
        return
    release(lc, endpoint_id, session, ids)


def release(lc: TaskLifecycle, endpoint_id: str, session: str, ids: list[str]) -> None:
    """Put back in the queue the tasks of ``ids`` that ``session`` holds though they
    never reached it, and wake the endpoint's claims (on the event loop)."""

    def released(done: asyncio.Future[int]) -> None:
        if done.cancelled() or done.exception() is not None:
            log.warning("tasks handed to endpoint %s that never reached it were not put back "
                        "in the queue (%s); they are when its session changes", endpoint_id,
                        "cancelled" if done.cancelled() else done.exception())
        elif done.result():
            lc.broker.tasks.notify(endpoint_id)

    lc.ctx.start_in_thread(lc.ctx.store.release, endpoint_id, session, ids).add_done_callback(
        released)


def _take_waiting_claims(lc: TaskLifecycle, checked: Checked) -> dict[str, Taken]:
    """A waiting claim per endpoint to hand its tasks to directly, where one waits.

    Functions with an execution environment go through the queue: their claim
    answer carries the environment, which this path does not look up.
    """
    takers: dict[str, Taken] = {}
    if any(function.container_id for function in checked.functions.values()):
        return takers
    for eid in checked.endpoints:
        waiter = lc.broker.tasks.take(eid, remote=True)
        if waiter is not None:
            takers[eid] = waiter
    return takers
