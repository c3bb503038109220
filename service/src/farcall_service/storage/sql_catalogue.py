"""The SQL store's :class:`~farcall_service.storage.interface.CatalogueStore`:
functions, containers and endpoints.

Functions and endpoints are deleted softly: queued tasks still find their function,
and an endpoint's id is never given out again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage import sql_queue as q
from farcall_service.storage.records import Container, Endpoint, Function
from farcall_service.storage.sql_engine import SqlConnections
from farcall_service.storage.sql_queue import fail_unfinished, requeue


class CatalogueSql(SqlConnections):
    """What tasks run, and where."""

    # -- functions and containers ---------------------------------------------------------

    def create_function(self, function: Function) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.functions).values(
                    id=function.id,
                    owner_id=function.owner_id,
                    name=function.name,
                    code=function.code,
                    description=function.description,
                    metadata=function.metadata,
                    public=function.public,
                    group_id=function.group_id,
                    container_id=function.container_id,
                    ha_endpoint_id=function.ha_endpoint_id,
                    created_at=function.created_at,
                    deleted=False,
                )
            )

    def get_function(self, function_id: str) -> Function | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.functions).where(
                    t.functions.c.id == function_id, t.functions.c.deleted.is_(False)
                )
            ).first()
        return function_from_row(row) if row else None

    def delete_function(self, function_id: str) -> None:
        """Soft delete: tasks already queued for the function still run."""
        with self._write() as conn:
            conn.execute(
                sa.update(t.functions)
                .where(t.functions.c.id == function_id)
                .values(deleted=True)
            )

    def set_function_container(self, function_id: str, container_id: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(t.functions)
                .where(t.functions.c.id == function_id)
                .values(container_id=container_id)
            )

    def search_functions(
        self, query: str, user_id: str, group_ids: Iterable[str], offset: int, limit: int
    ) -> tuple[list[Function], int]:
        f = t.functions.c
        visible = [f.owner_id == user_id, f.public.is_(True)]
        groups = list(group_ids)
        if groups:
            visible.append(f.group_id.in_(groups))
        conditions: list[Any] = [f.deleted.is_(False), sa.or_(*visible)]
        for term in query.split():
            pattern = "%" + _escape_like(term) + "%"
            conditions.append(
                sa.or_(
                    f.name.ilike(pattern, escape="\\"),
                    f.description.ilike(pattern, escape="\\"),
                )
            )
        where = sa.and_(*conditions)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t.functions).where(where))
            count = int(total.scalar_one())
            rows = conn.execute(
                sa.select(t.functions)
                .where(where)
                .order_by(f.created_at, f.id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [function_from_row(row) for row in rows], count

    def create_container(self, container: Container) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.containers).values(
                    id=container.id,
                    owner_id=container.owner_id,
                    name=container.name,
                    type=container.type,
                    location=container.location,
                    description=container.description,
                    created_at=container.created_at,
                )
            )

    def get_container(self, container_id: str) -> Container | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.containers).where(t.containers.c.id == container_id)
            ).first()
        return container_from_row(row) if row else None

    # -- endpoints --------------------------------------------------------------------------

    def save_endpoint(self, endpoint: Endpoint) -> None:
        values = {
            "owner_id": endpoint.owner_id,
            "name": endpoint.name,
            "display_name": endpoint.display_name,
            "metadata": endpoint.metadata,
            "public": endpoint.public,
            "allowed_functions": (
                list(endpoint.allowed_functions)
                if endpoint.allowed_functions is not None
                else None
            ),
        }
        with self._write() as conn:
            exists = conn.execute(
                sa.select(t.endpoints.c.id).where(t.endpoints.c.id == endpoint.id)
            ).first()
            if exists:
                conn.execute(
                    sa.update(t.endpoints).where(t.endpoints.c.id == endpoint.id).values(values)
                )
            else:
                conn.execute(
                    sa.insert(t.endpoints).values(
                        id=endpoint.id,
                        locked_until=0.0,
                        heartbeat={},
                        created_at=endpoint.created_at,
                        deleted=False,
                        **values,
                    )
                )

    def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.endpoints).where(
                    t.endpoints.c.id == endpoint_id, t.endpoints.c.deleted.is_(False)
                )
            ).first()
        return endpoint_from_row(row) if row else None

    def endpoint_id_taken(self, endpoint_id: str) -> bool:
        """True also for deleted endpoints, whose id may not be reused."""
        with self._read() as conn:
            return (
                conn.execute(
                    sa.select(t.endpoints.c.id).where(t.endpoints.c.id == endpoint_id)
                ).first()
                is not None
            )

    def list_endpoints(self, user_id: str, include_public: bool) -> list[Endpoint]:
        e = t.endpoints.c
        whose = sa.or_(e.owner_id == user_id, e.public.is_(True)) if include_public else (
            e.owner_id == user_id
        )
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.endpoints)
                .where(e.deleted.is_(False), whose)
                .order_by(e.created_at, e.id)
            ).all()
        return [endpoint_from_row(row) for row in rows]

    def delete_endpoint(self, endpoint_id: str, now: float, reason: str) -> None:
        """Soft delete; tasks that can no longer run fail with ``reason``."""
        with self._write() as conn:
            conn.execute(q.LOCK_ENDPOINT_ROW, {"endpoint_id": endpoint_id})  # see ENDPOINT_STATE
            conn.execute(
                sa.update(t.endpoints).where(t.endpoints.c.id == endpoint_id).values(deleted=True)
            )
            fail_unfinished(self._hot, conn, reason, now, t.tasks.c.endpoint_id == endpoint_id)

    def lock_endpoint(self, endpoint_id: str, until: float) -> None:
        """Stop the endpoint: drop its session and put its claimed tasks back."""
        with self._write() as conn:
            conn.execute(
                sa.update(t.endpoints)
                .where(t.endpoints.c.id == endpoint_id)
                .values(locked_until=until, session_id=None)
            )
            requeue(conn, t.tasks.c.endpoint_id == endpoint_id)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def function_from_row(row: Any) -> Function:
    return Function(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        code=row.code,
        description=row.description,
        metadata=dict(row.metadata or {}),
        public=bool(row.public),
        group_id=row.group_id,
        container_id=row.container_id,
        ha_endpoint_id=row.ha_endpoint_id,
        created_at=row.created_at,
    )


def container_from_row(row: Any) -> Container:
    return Container(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        type=row.type,
        location=row.location,
        description=row.description,
        created_at=row.created_at,
    )


def endpoint_from_row(row: Any) -> Endpoint:
    allowed = row.allowed_functions
    return Endpoint(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        display_name=row.display_name,
        metadata=dict(row.metadata or {}),
        public=bool(row.public),
        allowed_functions=tuple(allowed) if allowed is not None else None,
        locked_until=row.locked_until,
        session_id=row.session_id,
        last_seen=row.last_seen,
        heartbeat=dict(row.heartbeat or {}),
        created_at=row.created_at,
    )
