"""The SQL store's :class:`~farcall_service.storage.interface.BrowseStore`: the reads
behind the dashboard's pages, off the hot path.

A page of tasks walks ``ix_tasks_owner`` (owner, seq) from a cursor, newest first,
so every page costs the same however many tasks the owner has; counts that feed a
rate read only the last :data:`RECENT` tasks.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage import sql_queue as q
from farcall_service.storage.records import TaskFilter, TaskPage
from farcall_service.storage.sql_engine import SqlConnections

#: How many of the newest tasks a function's or endpoint's counts look at.
RECENT = 1000


class BrowseSql(SqlConnections):
    """Read-only views for people; nothing here takes a write lock."""

    def list_tasks(self, owner_id: str, where: TaskFilter, limit: int,
                   before: int | None = None) -> TaskPage:
        c = t.tasks.c
        query = (sa.select(c.seq, *q.TASK_COLUMNS).where(c.owner_id == owner_id, *_filters(where))
                 .order_by(c.seq.desc()).limit(limit + 1))
        if before is not None:
            query = query.where(c.seq < before)
        with self._read() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return TaskPage([q.task_from_row(row) for row in rows],
                        rows[-1].seq if more and rows else None)

    def count_tasks(self, owner_id: str, where: TaskFilter) -> dict[str, int]:
        c = t.tasks.c
        recent = (sa.select(c.status).where(c.owner_id == owner_id, *_filters(where))
                  .order_by(c.seq.desc()).limit(RECENT).subquery())
        with self._read() as conn:
            rows = conn.execute(sa.select(recent.c.status, sa.func.count())
                                .group_by(recent.c.status)).all()
        return {row[0]: int(row[1]) for row in rows}

    def ended_since(self, owner_id: str, since: float) -> list[tuple[str, float]]:
        c = t.tasks.c
        recent = (sa.select(c.endpoint_id, c.completion_t).where(c.owner_id == owner_id)
                  .order_by(c.seq.desc()).limit(RECENT).subquery())
        with self._read() as conn:
            rows = conn.execute(sa.select(recent.c.endpoint_id, recent.c.completion_t)
                                .where(recent.c.completion_t >= since)).all()
        return [(row[0], float(row[1])) for row in rows]

    def endpoint_load(self, endpoint_id: str, owner_id: str | None) -> dict[str, int]:
        c = t.tasks.c
        query = (sa.select(c.status, sa.func.count())
                 .where(c.endpoint_id == endpoint_id, t.UNFINISHED).group_by(c.status))
        if owner_id is not None:
            query = query.where(c.owner_id == owner_id)
        with self._read() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    def claimed_at(self, task_id: str) -> float | None:
        with self._read() as conn:
            return conn.execute(sa.select(t.tasks.c.claimed_at)
                                .where(t.tasks.c.id == task_id)).scalar()

    def list_memberships(self) -> list[tuple[str, str, str]]:
        g, m, u = t.groups.c, t.memberships.c, t.users.c
        query = (sa.select(g.name, u.name, g.id).select_from(t.groups)
                 .outerjoin(t.memberships, m.group_id == g.id)
                 .outerjoin(t.users, sa.and_(u.id == m.user_id, u.removed_at.is_(None)))
                 .order_by(g.name, u.name))
        with self._read() as conn:
            return [(row[0], row[1] or "", row[2]) for row in conn.execute(query)]


def _filters(where: TaskFilter) -> list[Any]:
    c = t.tasks.c
    found: list[Any] = []
    if where.status is not None:
        found.append(c.status == where.status)
    if where.endpoint_id is not None:
        found.append(c.endpoint_id == where.endpoint_id)
    if where.function_id is not None:
        found.append(c.function_id == where.function_id)
    if where.since is not None:
        found.append(c.created_at >= where.since)
    return found
