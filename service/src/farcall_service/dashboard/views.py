"""What each page shows, read from the store in a worker thread.

Every function takes the viewer's :class:`~farcall_service.auth.Identity` and asks
:mod:`farcall_service.access` what they may see, exactly as the API routes do:
something invisible raises the API's own 404 (the page then looks just as it does
for an id that never existed). Counts are of the viewer's own tasks, except on an
endpoint's owner's own endpoint: other users' work is theirs alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from farcall.errors import DeserializationError
from farcall.serialize import Serializer
from farcall.serialize.allowlist import data_only_identifiers
from farcall.serialize.registry import default_registry

from farcall_service import access
from farcall_service.auth import Identity
from farcall_service.context import ServiceContext
from farcall_service.errors import not_found
from farcall_service.storage.interface import (
    QUEUED,
    RUNNING,
    Endpoint,
    Function,
    Task,
    TaskFilter,
    TaskPage,
)

PAGE_SIZE = 50
#: Characters of a result shown on a task's page.
PREVIEW_CHARS = 2000
STATUSES = (QUEUED, RUNNING, "success", "failed", "cancelled")
#: The throughput sparkline: the last hour in buckets of five minutes.
HOUR = 3600.0
BUCKET = 300.0
#: The time filter's choices, in seconds.
SINCE = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}


@dataclass(frozen=True)
class EndpointRow:
    endpoint: Endpoint
    owner: str
    online: bool
    mine: bool
    total_workers: int
    #: Known to the owner only: from other users' tasks on a public endpoint.
    idle_workers: int | None
    queued: int
    running: int
    engine: str
    #: The viewer's tasks that ended on it in each :data:`BUCKET` of the last hour.
    throughput: tuple[int, ...] = ()

    @property
    def sparkline(self) -> str:
        """SVG polyline points for :attr:`throughput`, 120 by 24."""
        top = max(self.throughput, default=0) or 1
        step = 120 / max(len(self.throughput) - 1, 1)
        return " ".join(f"{i * step:.0f},{22 - 20 * n / top:.1f}"
                        for i, n in enumerate(self.throughput))


@dataclass(frozen=True)
class FunctionRow:
    function: Function
    owner: str
    sharing: str
    environment: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return sum(self.counts.values())

    @property
    def failure_rate(self) -> float | None:
        ended = self.counts.get("success", 0) + self.counts.get("failed", 0)
        return self.counts.get("failed", 0) / ended if ended else None


@dataclass(frozen=True)
class TaskView:
    task: Task
    function_name: str
    endpoint_name: str
    #: ``(state, when)`` in order: submitted, handed to an endpoint, the endpoint's own.
    timeline: list[tuple[str, float]]
    duration: float | None
    preview: str | None
    preview_note: str | None


def _names(ctx: ServiceContext) -> Any:
    seen: dict[str, str] = {}

    def name(user_id: str) -> str:
        if user_id not in seen:
            user = ctx.store.get_user(user_id)
            seen[user_id] = user.name if user else "(removed)"
        return seen[user_id]

    return name


def is_online(ctx: ServiceContext, ep: Endpoint, now: float) -> bool:
    recent = ep.last_seen is not None and now - ep.last_seen < ctx.settings.offline_timeout
    return recent or ctx.lifecycle.online(ep.id)


def throughput(ended: list[tuple[str, float]], endpoint_id: str, now: float
               ) -> tuple[int, ...]:
    buckets = [0] * int(HOUR / BUCKET)
    for eid, when in ended:
        index = int((when - (now - HOUR)) // BUCKET)
        if eid == endpoint_id and 0 <= index < len(buckets):
            buckets[index] += 1
    return tuple(buckets)


def endpoint_row(ctx: ServiceContext, who: Identity, ep: Endpoint, owner: str,
                 now: float, ended: list[tuple[str, float]]) -> EndpointRow:
    mine = ep.owner_id == who.user_id
    load = ctx.store.endpoint_load(ep.id, None if mine else who.user_id)
    beat = ep.heartbeat
    return EndpointRow(
        ep, owner, is_online(ctx, ep, now), mine, int(beat.get("total_workers", 0) or 0),
        int(beat.get("idle_workers", 0) or 0) if mine else None,
        load.get(QUEUED, 0), load.get(RUNNING, 0),
        str(ep.metadata.get("engine") or beat.get("engine") or "—"),
        throughput(ended, ep.id, now))


def endpoints(ctx: ServiceContext, who: Identity) -> list[EndpointRow]:
    name, now = _names(ctx), time.time()
    ended = ctx.store.ended_since(who.user_id, now - HOUR)
    return [endpoint_row(ctx, who, ep, name(ep.owner_id), now, ended)
            for ep in ctx.store.list_endpoints(who.user_id, include_public=True)]


def endpoint(ctx: ServiceContext, who: Identity, endpoint_id: str
             ) -> tuple[EndpointRow, TaskPage, list[Function]]:
    ep = access.visible_endpoint(who, ctx.store.get_endpoint(endpoint_id), endpoint_id)
    now = time.time()
    ended = ctx.store.ended_since(who.user_id, now - HOUR)
    row = endpoint_row(ctx, who, ep, _names(ctx)(ep.owner_id), now, ended)
    recent = ctx.store.list_tasks(who.user_id, TaskFilter(endpoint_id=ep.id), 20)
    allowed = [fn for fid in ep.allowed_functions or ()
               if (fn := ctx.store.get_function(fid)) is not None
               and access.can_see_function(who, fn)]
    return row, recent, allowed


def sharing(fn: Function) -> str:
    return "public" if fn.public else "group" if fn.group_id else "private"


def function_row(ctx: ServiceContext, who: Identity, fn: Function, owner: str) -> FunctionRow:
    environment = "the endpoint's own"
    if fn.container_id:
        container = ctx.store.get_container(fn.container_id)
        environment = (f"{container.type} container {container.name}"
                       if container and container.owner_id == who.user_id else "a container")
    counts = ctx.store.count_tasks(who.user_id, TaskFilter(function_id=fn.id))
    return FunctionRow(fn, owner, sharing(fn), environment, counts)


def functions(ctx: ServiceContext, who: Identity, query: str, offset: int
              ) -> tuple[list[FunctionRow], int]:
    found, total = ctx.store.search_functions(query, who.user_id, who.groups, offset, PAGE_SIZE)
    name = _names(ctx)
    return [function_row(ctx, who, fn, name(fn.owner_id)) for fn in found], total


def function(ctx: ServiceContext, who: Identity, function_id: str
             ) -> tuple[FunctionRow, TaskPage]:
    fn = access.visible_function(who, ctx.store.get_function(function_id), function_id)
    row = function_row(ctx, who, fn, _names(ctx)(fn.owner_id))
    return row, ctx.store.list_tasks(who.user_id, TaskFilter(function_id=fn.id), 20)


def tasks(ctx: ServiceContext, who: Identity, where: TaskFilter, before: int | None
          ) -> TaskPage:
    return ctx.store.list_tasks(who.user_id, where, PAGE_SIZE, before)


def task(ctx: ServiceContext, who: Identity, task_id: str) -> TaskView:
    found = access.visible_task(who, ctx.store.get_task(task_id), task_id)
    fn = ctx.store.get_function(found.function_id)
    ep = ctx.store.get_endpoint(found.endpoint_id)
    timeline: list[tuple[str, float]] = [("submitted", found.created_at)]
    claimed = ctx.store.claimed_at(found.id)
    if claimed is not None:
        timeline.append(("handed to the endpoint", claimed))
    steps = (found.details or {}).get("task_transitions") or {}
    if isinstance(steps, dict):
        timeline += [(str(state), float(when)) for state, when in steps.items()
                     if isinstance(when, int | float)]
    if found.completion_t is not None and not any(s in ("success", "failed")
                                                  for s, _ in timeline):
        timeline.append((found.status, found.completion_t))
    timeline.sort(key=lambda step: step[1])
    duration = (found.completion_t - found.created_at) if found.completion_t else None
    preview, note = result_preview(found.result)
    return TaskView(found, fn.name if fn else "(deleted)",
                    (ep.display_name or ep.name) if ep and access.can_see_endpoint(who, ep)
                    else "(not visible)", timeline, duration, preview, note)


def result_preview(result: str | None) -> tuple[str | None, str | None]:
    """The result as text when a data-only strategy wrote it; code is never run here,
    so a pickled result is described, not read."""
    if result is None:
        return None, None
    registry = default_registry()
    reader = Serializer(allowed=data_only_identifiers(registry), registry=registry)
    try:
        value = reader.deserialize(result)
    except DeserializationError:
        strategy = registry.types.get(result[:2])
        label = strategy.name if strategy else result[:2]
        return None, (f"serialized with {label}, which the service does not read: "
                      "fetch the result with the SDK")
    text = repr(value)
    return (text[:PREVIEW_CHARS] + " …" if len(text) > PREVIEW_CHARS else text), None


def task_group(ctx: ServiceContext, who: Identity, group_id: str) -> list[Task]:
    found = ctx.store.task_group_tasks(group_id, who.user_id)
    if not found:
        raise not_found("task_group", group_id)
    return found


def names_for(ctx: ServiceContext, who: Identity, shown: list[Task]) -> dict[str, str]:
    """The names of the functions and endpoints of the viewer's tasks that the viewer
    may still see (a function unshared since shows as its id)."""
    names: dict[str, str] = {}
    for fid in {task.function_id for task in shown}:
        fn = ctx.function(fid)
        if fn is not None and access.can_see_function(who, fn):
            names[fid] = fn.name
    for eid in {task.endpoint_id for task in shown}:
        ep = ctx.endpoint(eid)
        if ep is not None and access.can_see_endpoint(who, ep):
            names[eid] = ep.display_name or ep.name
    return names
