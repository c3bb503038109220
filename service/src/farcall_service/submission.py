"""Accepting tasks: every check happens before anything is stored, then one commit.

A submission is all-or-nothing: the caller gets task ids only once every task is
durably queued, and the endpoints that have new work are woken at once. A claim
waiting for the endpoint may be handed its tasks while the commit is still on its
way to the disk (see ``Store.submit``); should that commit fail, the caller gets an
error and the endpoint's results for those tasks are refused as unknown.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from farcall_service import access
from farcall_service.auth import Identity
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


def submit(
    ctx: ServiceContext,
    who: Identity,
    requests: Sequence[Request],
    task_group_id: str | None,
    options: TaskOptions,
) -> tuple[str, list[str]]:
    """Check and store ``requests``; return the task group id and task ids, in order."""
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

    group = task_group_id or time_ordered_uuid()
    tasks = [
        (r.endpoint_id, NewTask(time_ordered_uuid(), r.function_id, r.payload)) for r in requests
    ]
    now = time.time()
    ctx.unfinished.accepted(
        who.user_id, group, now, ((task.id, eid, task.function_id) for eid, task in tasks))
    takers = _take_waiting_claims(ctx, endpoints, requests, functions)
    by_id = {task.id: task for _eid, task in tasks}

    def hand_over(handed: dict[str, list[str]]) -> None:
        for eid, waiter in takers.items():
            ctx.notifier.hand(waiter, [
                ClaimedTask(tid, by_id[tid].function_id,
                            functions[by_id[tid].function_id].code + by_id[tid].payload, options)
                for tid in handed.get(eid, [])
            ])

    try:
        handed = ctx.store.submit(
            who.user_id, group, tasks, options, now,
            claims={eid: (w.offer.session, w.offer.max_tasks) for eid, w in takers.items()},
            on_claimed=hand_over,
        )
    except BaseException as exc:
        ctx.unfinished.forget(task.id for _eid, task in tasks)
        for waiter in takers.values():
            ctx.notifier.hand(waiter, [])  # no-op for one already handed its tasks
        if isinstance(exc, TaskGroupTaken):
            raise not_found("task_group", group) from None
        raise
    per_endpoint = Counter(eid for eid, _task in tasks)
    for eid in endpoints:
        if len(handed.get(eid, [])) < per_endpoint[eid]:
            # Tasks left in the queue, which claims read without the write lock: wake
            # them only now that the commit is done.
            ctx.notifier.notify(eid)
    return group, [task.id for _eid, task in tasks]


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
