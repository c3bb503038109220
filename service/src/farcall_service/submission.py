"""Accepting tasks: every check happens before anything is stored, then one commit.

A submission is all-or-nothing: the caller gets task ids only once every task is
durably queued, and the endpoints that have new work are woken at once. A claim
waiting for the endpoint is handed its tasks as soon as they are checked, while they
are written and committed: that commit is most of a submission's time, and the
endpoint runs the tasks meanwhile. Results for tasks handed over this way wait for
the commit before they are recorded (:mod:`farcall_service.inflight`). Should the commit fail,
the caller gets an error and the endpoint's results for those tasks are refused as
unknown, as for any task the service does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from farcall_service import access
from farcall_service.auth import Identity
from farcall_service.cache import MISSING
from farcall_service.context import ServiceContext
from farcall_service.errors import bad_request, not_found
from farcall_service.ids import time_ordered_uuid
from farcall_service.notifier import Taken
from farcall_service.payloads import check_task_payload
from farcall_service.storage.interface import (
    ClaimedTask,
    Endpoint,
    Function,
    NewTask,
    TaskGroupTaken,
    TaskOptions,
)

#: Submissions of up to this many tasks are checked on the event loop when every
#: lookup they need is cached; larger ones, and any that must read the database, in
#: a worker thread.
CHECKED_ON_THE_LOOP = 100


@dataclass(frozen=True)
class Request:
    """One task to create: where it runs, what it runs, with which arguments."""

    endpoint_id: str
    function_id: str
    payload: str


@dataclass(frozen=True)
class Checked:
    """A submission that passed every check, with its task group and new task ids."""

    group: str
    tasks: list[tuple[str, NewTask]]
    endpoints: dict[str, Endpoint]
    functions: dict[str, Function]


class NotCached(Exception):
    """A check needs a lookup that is not cached: make it in a worker thread."""


def canonical_id(raw: str, kind: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except (ValueError, AttributeError, TypeError):
        raise bad_request("INVALID_ID", f"{kind} id {raw!r} is not a UUID") from None


async def submit(
    ctx: ServiceContext,
    who: Identity,
    requests: Sequence[Request],
    task_group_id: str | None,
    options: TaskOptions,
) -> tuple[str, list[str]]:
    """Check and store ``requests``; return the task group id and task ids, in order."""
    checked = None
    if task_group_id is None and len(requests) <= CHECKED_ON_THE_LOOP:
        with contextlib.suppress(NotCached):
            checked = _check(ctx, who, requests, None, cached_only=True)
    if checked is None:
        checked = await ctx.in_thread(_check, ctx, who, requests, task_group_id, False)
    group, tasks = checked.group, checked.tasks
    ctx.unfinished.accepted(who.user_id, ((task.id, eid) for eid, task in tasks))
    takers = _take_waiting_claims(ctx, checked.endpoints, requests, checked.functions)
    try:
        _hand_over(ctx, takers, tasks, checked.functions, options)
    except BaseException:
        for waiter in takers.values():
            ctx.notifier.hand(waiter, [])  # no-op for one already handed its tasks
        ctx.unfinished.forget(task.id for _eid, task in tasks)
        raise
    commit = ctx.threads.submit(
        ctx.store.submit, who.user_id, group, tasks, options, time.time(),
        {eid: (w.offer.session, w.offer.max_tasks) for eid, w in takers.items()},
    )
    ctx.in_flight.add(takers, commit)  # type: ignore[arg-type]
    per_endpoint = Counter(eid for eid, _task in tasks)

    def settled(done: Future[dict[str, list[str]]]) -> None:
        # In the committing thread rather than after the await below: a caller that
        # went away meanwhile must not leave queued tasks unannounced.
        if done.cancelled() or done.exception() is not None:
            ctx.unfinished.forget(task.id for _eid, task in tasks)
            return
        handed = done.result()
        for eid in checked.endpoints:
            if len(handed.get(eid, [])) < per_endpoint[eid]:
                # Tasks left in the queue (not handed over, or their claim's session
                # ended meanwhile): wake the claims now that the commit is done.
                ctx.notifier.notify(eid)

    commit.add_done_callback(settled)
    try:
        await asyncio.shield(asyncio.wrap_future(commit))
    except TaskGroupTaken:
        raise not_found("task_group", group) from None
    return group, [task.id for _eid, task in tasks]


def _check(
    ctx: ServiceContext, who: Identity, requests: Sequence[Request],
    task_group_id: str | None, cached_only: bool,
) -> Checked:
    """Every check, with lookups from the caches only (or :class:`NotCached`) or
    from the database too (in a worker thread)."""
    if not requests:
        raise bad_request("NO_TASKS", "the submission contains no tasks")

    def endpoint(eid: str) -> Endpoint | None:
        if not cached_only:
            return ctx.endpoint(eid)
        found = ctx.endpoints.get(eid)
        if found is MISSING:
            raise NotCached(eid)
        return found  # type: ignore[return-value]

    def function(fid: str) -> Function | None:
        if not cached_only:
            return ctx.function(fid)
        found = ctx.functions.get(fid)
        if found is MISSING:
            raise NotCached(fid)
        return found  # type: ignore[return-value]

    endpoints = {}
    for eid in dict.fromkeys(r.endpoint_id for r in requests):
        endpoints[eid] = access.visible_endpoint(who, endpoint(eid), eid)
    functions = {}
    for fid in dict.fromkeys(r.function_id for r in requests):
        functions[fid] = access.visible_function(who, function(fid), fid)
    for eid, fid in dict.fromkeys((r.endpoint_id, r.function_id) for r in requests):
        access.check_runnable(functions[fid], endpoints[eid])
    for r in requests:
        check_task_payload(r.payload)
    if task_group_id is not None:
        owner = ctx.store.get_task_group_owner(task_group_id)
        if owner is not None and owner != who.user_id:
            raise not_found("task_group", task_group_id)
    group = task_group_id or time_ordered_uuid()
    tasks = [
        (r.endpoint_id, NewTask(time_ordered_uuid(), r.function_id, r.payload)) for r in requests
    ]
    return Checked(group, tasks, endpoints, functions)


def _hand_over(ctx: ServiceContext, takers: dict[str, Taken], tasks: list[tuple[str, NewTask]],
               functions: dict[str, Function], options: TaskOptions) -> None:
    """Each waiting claim gets up to its ``max_tasks`` of its endpoint's tasks: the
    ones ``Store.submit`` stores as claimed by its session."""
    for eid, waiter in takers.items():
        mine = [task for task_eid, task in tasks if task_eid == eid][:waiter.offer.max_tasks]
        ctx.notifier.hand(waiter, [
            ClaimedTask(task.id, task.function_id,
                        functions[task.function_id].code + task.payload, options)
            for task in mine
        ])


def _take_waiting_claims(
    ctx: ServiceContext, endpoints: dict[str, Endpoint], requests: Sequence[Request],
    functions: dict[str, Function],
) -> dict[str, Taken]:
    """A waiting claim per endpoint to hand its tasks to directly, where one waits.

    Functions with an execution environment go through the queue: their claim
    answer carries the environment, which this path does not look up.
    """
    takers: dict[str, Taken] = {}
    if any(functions[r.function_id].container_id for r in requests):
        return takers
    for eid in endpoints:
        waiter = ctx.notifier.take(eid)
        if waiter is not None:
            takers[eid] = waiter
    return takers
