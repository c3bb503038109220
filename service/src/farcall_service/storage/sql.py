"""The :class:`~farcall_service.storage.interface.Store` on SQLAlchemy Core.

SQLite is the embedded default: WAL journal, full fsync on commit (an accepted task
survives a crash), and write transactions that start with ``BEGIN IMMEDIATE`` behind
an in-process lock so concurrent writers queue instead of failing with "database is
locked". Queries use only portable constructs; ``FOR UPDATE SKIP LOCKED`` applies on
databases that have it and compiles away on SQLite.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from farcall_service.storage import schema as t
from farcall_service.storage.interface import (
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    ClaimedTask,
    Container,
    Endpoint,
    Function,
    Group,
    NewTask,
    Outcome,
    RecordedOutcomes,
    Report,
    Submitted,
    Task,
    TaskGroupTaken,
    TaskOptions,
    User,
)
from farcall_service.storage.oauth_sql import OAuthSqlMixin
from farcall_service.storage.prepared import Prepared

_WRITE = "farcall_write"


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``, with SQLite set up for durability and concurrent writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        # The database holds token hashes and everyone's code: keep its folder private.
        Path(parsed.database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Last in, first out: a connection's page cache is dropped whenever another one
    # commits, so the hot path keeps reusing one warm connection instead of reading
    # every page it touches again (14 reads per round trip, first in, first out).
    engine = sa.create_engine(url, connect_args={"timeout": 30}, pool_use_lifo=True)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "DEFERRED"
        # On the driver's connection: through SQLAlchemy this one statement cost as
        # much as the rest of an empty transaction.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")

    return engine


class SqlStore(OAuthSqlMixin):
    """Every operation is one transaction; it has committed when the method returns."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if sqlite else nullcontext()
        )
        self._hot = Prepared(self.engine.dialect, direct=sqlite)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[sa.Connection]:
        """A write transaction. ``durable=False`` is for changes whose loss in a power
        failure only repeats work (claims, heartbeats): their commit does not wait for
        the disk, though it still survives the service being killed (WAL mode), and the
        next durable commit flushes it anyway.
        """
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            sqlite = self.engine.dialect.name == "sqlite"
            if not durable and sqlite:
                conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    if not durable and not sqlite:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
            finally:
                if not durable and sqlite:
                    conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- identity -------------------------------------------------------------------

    def create_user(self, name: str) -> User:
        user = User(str(uuid.uuid4()), name)
        with self._write() as conn:
            conn.execute(
                sa.insert(t.users).values(id=user.id, name=name, created_at=time.time())
            )
        return user

    def get_user(self, name_or_id: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.users.c.id, t.users.c.name).where(
                    sa.or_(t.users.c.id == name_or_id, t.users.c.name == name_or_id)
                )
            ).first()
        return User(row.id, row.name) if row else None

    def add_token(self, user_id: str, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.tokens).values(
                    token_hash=token_hash, user_id=user_id, created_at=time.time()
                )
            )

    def user_for_token(self, token_hash: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.users.c.id, t.users.c.name)
                .join(t.tokens, t.tokens.c.user_id == t.users.c.id)
                .where(t.tokens.c.token_hash == token_hash)
            ).first()
        return User(row.id, row.name) if row else None

    def create_group(self, name: str) -> Group:
        group = Group(str(uuid.uuid4()), name)
        with self._write() as conn:
            conn.execute(
                sa.insert(t.groups).values(id=group.id, name=name, created_at=time.time())
            )
        return group

    def get_group(self, name_or_id: str) -> Group | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.groups.c.id, t.groups.c.name).where(
                    sa.or_(t.groups.c.id == name_or_id, t.groups.c.name == name_or_id)
                )
            ).first()
        return Group(row.id, row.name) if row else None

    def add_member(self, group_id: str, user_id: str) -> None:
        with self._write() as conn:
            exists = conn.execute(
                sa.select(t.memberships.c.user_id).where(
                    t.memberships.c.group_id == group_id, t.memberships.c.user_id == user_id
                )
            ).first()
            if not exists:
                conn.execute(sa.insert(t.memberships).values(group_id=group_id, user_id=user_id))

    def groups_of(self, user_id: str) -> frozenset[str]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.memberships.c.group_id).where(t.memberships.c.user_id == user_id)
            )
            return frozenset(row.group_id for row in rows)

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
        return _function(row) if row else None

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
        return [_function(row) for row in rows], count

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
        return _container(row) if row else None

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
        return _endpoint(row) if row else None

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
        return [_endpoint(row) for row in rows]

    def delete_endpoint(self, endpoint_id: str, now: float, reason: str) -> None:
        """Soft delete; tasks that can no longer run fail with ``reason``."""
        with self._write() as conn:
            conn.execute(
                sa.update(t.endpoints).where(t.endpoints.c.id == endpoint_id).values(deleted=True)
            )
            conn.execute(
                sa.update(t.tasks)
                .where(t.tasks.c.endpoint_id == endpoint_id, t.UNFINISHED)
                .values(status="failed", exception=reason, completion_t=now)
            )

    def lock_endpoint(self, endpoint_id: str, until: float) -> None:
        """Stop the endpoint: drop its session and put its claimed tasks back."""
        with self._write() as conn:
            conn.execute(
                sa.update(t.endpoints)
                .where(t.endpoints.c.id == endpoint_id)
                .values(locked_until=until, session_id=None)
            )
            _requeue(conn, t.tasks.c.endpoint_id == endpoint_id)

    def count_outstanding(self, endpoint_id: str) -> int:
        with self._read() as conn:
            result = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.tasks)
                .where(t.tasks.c.endpoint_id == endpoint_id, t.UNFINISHED)
            )
            return int(result.scalar_one())

    # -- tasks -------------------------------------------------------------------------------

    def submit(
        self,
        owner_id: str,
        task_group_id: str,
        tasks: Sequence[tuple[str, NewTask]],
        options: TaskOptions,
        now: float,
        claimed: Mapping[str, tuple[str, list[str]]] | None = None,
        reports: Sequence[Report] = (),
    ) -> Submitted:
        opts = {
            "resource_specification": options.resource_specification,
            "result_serializers": options.result_serializers,
            "user_endpoint_config": options.user_endpoint_config,
        }
        stale: set[str] = set()
        with self._write() as conn:
            exists = self._hot.first(conn, _GROUP_OWNER, {"group_id": task_group_id})
            if exists and exists.owner_id != owner_id:
                raise TaskGroupTaken(task_group_id)
            if not exists:
                self._hot.run(conn, _NEW_GROUP, {"id": task_group_id, "owner_id": owner_id,
                                                 "created_at": now})
            # Tasks handed to a waiting claim are stored as claimed by its session, if
            # that session is still the endpoint's (a newer one would never ask for them).
            claimed_by: dict[str, str] = {}
            for endpoint_id, (session, task_ids) in (claimed or {}).items():
                current = self._hot.first(conn, _ENDPOINT_SESSION, {"endpoint_id": endpoint_id})
                if current is not None and current.session_id == session:
                    claimed_by.update(dict.fromkeys(task_ids, session))
                elif task_ids:
                    stale.add(endpoint_id)
            if tasks:
                self._hot.run(
                    conn,
                    _NEW_TASK,
                    [
                        {
                            "id": task.id,
                            "owner_id": owner_id,
                            "function_id": task.function_id,
                            "endpoint_id": endpoint_id,
                            "task_group_id": task_group_id,
                            "payload": task.payload,
                            "options": opts,
                            "status": RUNNING if task.id in claimed_by else QUEUED,
                            "claim_session": claimed_by.get(task.id),
                            "claimed_at": now if task.id in claimed_by else None,
                            "created_at": now,
                        }
                        for endpoint_id, task in tasks
                    ],
                )
            recorded = [self._record(conn, report) for report in reports]
        return Submitted(stale, recorded)

    def get_task_group_owner(self, task_group_id: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(_GROUP_OWNER, {"group_id": task_group_id}).first()
        return row.owner_id if row else None

    def get_task(self, task_id: str) -> Task | None:
        found = self.get_tasks([task_id])
        return found[0] if found else None

    def get_tasks(self, task_ids: Iterable[str]) -> list[Task]:
        ids = list(dict.fromkeys(task_ids))
        found: list[Task] = []
        with self._read() as conn:
            for chunk in _chunks(ids):
                found.extend(_task(row) for row in conn.execute(_TASKS, {"ids": chunk}))
        return found

    def finished_tasks(self, task_ids: Iterable[str], owner_id: str) -> list[Task]:
        found: list[Task] = []
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(task_ids))):
                rows = conn.execute(_FINISHED_TASKS, {"ids": chunk, "owner_id": owner_id})
                found.extend(_task(row) for row in rows)
        return found

    def task_endpoints(self, task_ids: Iterable[str], owner_id: str) -> set[str]:
        found: set[str] = set()
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(task_ids))):
                found.update(conn.execute(
                    _TASK_ENDPOINTS, {"ids": chunk, "owner_id": owner_id}).scalars())
        return found

    def task_group_tasks(self, task_group_id: str) -> list[Task]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(*_TASK_COLUMNS)
                .where(t.tasks.c.task_group_id == task_group_id)
                .order_by(t.tasks.c.seq)
            )
            return [_task(row) for row in rows]

    # -- hand-off ------------------------------------------------------------------------------

    def claim(
        self, endpoint_id: str, session: str, max_tasks: int, now: float
    ) -> list[ClaimedTask]:
        # Most claims find nothing (they then wait for a submission to hand them work):
        # a read says so without taking the write lock from a results report.
        with self._read() as conn:
            current = self._hot.first(conn, _ENDPOINT_SESSION, {"endpoint_id": endpoint_id})
            queued = self._hot.first(conn, _FIRST_QUEUED, {"endpoint_id": endpoint_id})
        if current is not None and current.session_id == session and queued is None:
            return []
        with self._write(durable=False) as conn:
            _enter_session(conn, endpoint_id, session, now)
            rows = self._hot.rows(
                conn, _QUEUED_FOR_CLAIM, {"endpoint_id": endpoint_id, "max_tasks": max_tasks}
            )
            if not rows:
                return []
            self._hot.run(conn, _MARK_CLAIMED, {"seqs": [row.seq for row in rows],
                                                "b_session": session, "b_now": now})
            container_ids = {row.container_id for row in rows if row.container_id}
            found = (
                conn.execute(sa.select(t.containers).where(t.containers.c.id.in_(container_ids)))
                if container_ids
                else []
            )
            containers = {row.id: _container(row) for row in found}
        return [
            ClaimedTask(
                id=row.id,
                function_id=row.function_id,
                payload=row.code + row.payload,
                options=TaskOptions(**(row.options or {})),
                container=containers.get(row.container_id) if row.container_id else None,
            )
            for row in rows
        ]

    def heartbeat(
        self, endpoint_id: str, session: str, details: dict[str, Any], now: float
    ) -> int:
        with self._write(durable=False) as conn:
            requeued = _enter_session(conn, endpoint_id, session, now)
            conn.execute(
                sa.update(t.endpoints)
                .where(t.endpoints.c.id == endpoint_id)
                .values(heartbeat=details)
            )
        return requeued

    def record_reports(self, reports: Sequence[Report]) -> list[RecordedOutcomes]:
        with self._write() as conn:
            return [self._record(conn, report) for report in reports]

    def _record(self, conn: sa.Connection, report: Report) -> RecordedOutcomes:
        endpoint_id, outcomes, now = report.endpoint_id, report.outcomes, report.now
        recorded: list[str] = []
        duplicates: list[str] = []
        rejected: list[str] = []
        self._hot.run(conn, _TOUCH_ENDPOINT, {"b_endpoint_id": endpoint_id, "b_now": now,
                                              "b_stale": now - SEEN_GRANULARITY})
        # One look at every reported task, then one executemany: a batch of results
        # costs two statements, not one per task. The write lock (and FOR UPDATE
        # where the database has it) keeps the look valid until the commit.
        states: dict[str, str] = {}
        found: dict[str, Any] = {}
        for chunk in _chunks([o.task_id for o in outcomes]):
            for row in self._hot.rows(conn, _REPORTED_TASKS, {"ids": chunk}):
                if row.endpoint_id == endpoint_id:
                    states[row.id] = row.status
                    found[row.id] = row
        fresh: list[Outcome] = []
        for outcome in outcomes:
            status = states.get(outcome.task_id)
            if status is None:
                rejected.append(outcome.task_id)
            elif status in TERMINAL_STATES:
                duplicates.append(outcome.task_id)
            else:
                states[outcome.task_id] = outcome.status  # a repeat in this batch
                fresh.append(outcome)
                recorded.append(outcome.task_id)
        if fresh:
            self._hot.run(conn, _RECORD_OUTCOME, [
                {"b_id": o.task_id, "b_status": o.status, "b_result": o.result,
                 "b_exception": o.exception, "b_exception_data": o.exception_data,
                 "b_details": o.details, "b_completion_t": now}
                for o in fresh
            ])
        finished = [
            Task(o.task_id, found[o.task_id].owner_id, found[o.task_id].function_id,
                 endpoint_id, found[o.task_id].task_group_id, o.status,
                 found[o.task_id].created_at, o.result, o.exception, o.details, now,
                 o.exception_data)
            for o in fresh
        ]
        return RecordedOutcomes(recorded, duplicates, rejected, finished)

    def requeue_stale(self, cutoff: float, alive: Collection[str] = ()) -> list[str]:
        e = t.endpoints.c
        with self._write() as conn:
            # From the endpoints: each one's running tasks are one index lookup, where
            # starting from the tasks would read every task ever run.
            holding = (
                sa.select(t.tasks.c.seq)
                .where(t.tasks.c.endpoint_id == e.id, t.tasks.c.status == RUNNING, t.UNFINISHED)
                .exists()
            )
            silent = sa.or_(e.last_seen.is_(None), e.last_seen < cutoff)
            stale = [
                endpoint_id
                for endpoint_id in conn.scalars(sa.select(e.id).where(silent, holding))
                if endpoint_id not in alive
            ]
            if stale:
                _requeue(conn, t.tasks.c.endpoint_id.in_(stale))
        return stale


# -- helpers -------------------------------------------------------------------------------

_TASK_COLUMNS = (
    t.tasks.c.id,
    t.tasks.c.owner_id,
    t.tasks.c.function_id,
    t.tasks.c.endpoint_id,
    t.tasks.c.task_group_id,
    t.tasks.c.status,
    t.tasks.c.created_at,
    t.tasks.c.result,
    t.tasks.c.exception,
    t.tasks.c.exception_data,
    t.tasks.c.details,
    t.tasks.c.completion_t,
)


def _requeue(conn: sa.Connection, *where: Any) -> int:
    result = conn.execute(
        sa.update(t.tasks)
        .where(t.tasks.c.status == RUNNING, t.UNFINISHED, *where)
        .values(status=QUEUED, claim_session=None, claimed_at=None)
    )
    return int(result.rowcount)


def _enter_session(conn: sa.Connection, endpoint_id: str, session: str, now: float) -> int:
    """Mark the endpoint alive; a new session takes over and frees the old one's tasks.
    Returns how many tasks went back to the queue."""
    row = conn.execute(_ENDPOINT_SESSION, {"endpoint_id": endpoint_id}).first()
    requeued = 0
    if row is not None and row.session_id != session:
        requeued = _requeue(
            conn,
            t.tasks.c.endpoint_id == endpoint_id,
            sa.or_(t.tasks.c.claim_session.is_(None), t.tasks.c.claim_session != session),
        )
    conn.execute(_ENTER_SESSION, {"b_endpoint_id": endpoint_id, "b_session": session,
                                  "b_now": now})
    return requeued


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _function(row: Any) -> Function:
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


def _container(row: Any) -> Container:
    return Container(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        type=row.type,
        location=row.location,
        description=row.description,
        created_at=row.created_at,
    )


def _endpoint(row: Any) -> Endpoint:
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


# The hot path's statements, built once: building a statement costs more than
# running it on SQLite. Bind parameter names differ from the columns they set, as
# SQLAlchemy reserves those names for its own parameters.
_b = sa.bindparam
_task_c, _fn_c = t.tasks.c, t.functions.c
_GROUP_OWNER = sa.select(t.task_groups.c.owner_id).where(t.task_groups.c.id == _b("group_id"))
_NEW_GROUP = sa.insert(t.task_groups)
_NEW_TASK = sa.insert(t.tasks)
_ENDPOINT_SESSION = sa.select(t.endpoints.c.session_id).where(
    t.endpoints.c.id == _b("endpoint_id"))
_ENTER_SESSION = (
    sa.update(t.endpoints).where(t.endpoints.c.id == _b("b_endpoint_id"))
    .values(session_id=_b("b_session"), last_seen=_b("b_now"))
)
#: Seconds ``last_seen`` may lag a report: an endpoint that reports all the time
#: then rewrites its row once a second, not in every transaction of results.
SEEN_GRANULARITY = 1.0
_TOUCH_ENDPOINT = (
    sa.update(t.endpoints)
    .where(t.endpoints.c.id == _b("b_endpoint_id"),
           sa.or_(t.endpoints.c.last_seen.is_(None), t.endpoints.c.last_seen < _b("b_stale")))
    .values(last_seen=_b("b_now"))
)
_FIRST_QUEUED = sa.select(_task_c.seq).where(
    _task_c.endpoint_id == _b("endpoint_id"), _task_c.status == QUEUED, t.UNFINISHED).limit(1)
_QUEUED_FOR_CLAIM = (
    sa.select(_task_c.seq, _task_c.id, _task_c.function_id, _task_c.payload, _task_c.options,
              _fn_c.code, _fn_c.container_id)
    .join(t.functions, _fn_c.id == _task_c.function_id)
    .where(_task_c.endpoint_id == _b("endpoint_id"), _task_c.status == QUEUED, t.UNFINISHED)
    .order_by(_task_c.seq)
    .limit(_b("max_tasks"))
    .with_for_update(skip_locked=True, of=t.tasks)
)
_MARK_CLAIMED = (
    sa.update(t.tasks).where(_task_c.seq.in_(_b("seqs", expanding=True)))
    .values(status=RUNNING, claim_session=_b("b_session"), claimed_at=_b("b_now"))
)
# The endpoint is compared in Python: given ``endpoint_id = ?`` as well, SQLite's
# planner walks the endpoint's whole queue index instead of looking up the ids, and
# recording results slowed down with every task the endpoint had ever run.
_REPORTED_TASKS = (
    sa.select(_task_c.id, _task_c.endpoint_id, _task_c.status, _task_c.owner_id,
              _task_c.function_id, _task_c.task_group_id, _task_c.created_at)
    .where(_task_c.id.in_(_b("ids", expanding=True)))
    .with_for_update()
)
_TASKS = sa.select(*_TASK_COLUMNS).where(_task_c.id.in_(_b("ids", expanding=True)))
_FINISHED_TASKS = sa.select(*_TASK_COLUMNS).where(
    _task_c.id.in_(_b("ids", expanding=True)),
    _task_c.owner_id == _b("owner_id"),
    _task_c.status.in_(TERMINAL_STATES),
)
_TASK_ENDPOINTS = sa.select(_task_c.endpoint_id).distinct().where(
    _task_c.id.in_(_b("ids", expanding=True)), _task_c.owner_id == _b("owner_id"))

_RECORD_OUTCOME = (
    sa.update(t.tasks)
    .where(t.tasks.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        result=sa.bindparam("b_result"),
        exception=sa.bindparam("b_exception"),
        exception_data=sa.bindparam("b_exception_data"),
        details=sa.bindparam("b_details", type_=sa.JSON),
        completion_t=sa.bindparam("b_completion_t"),
    )
)


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """Slices small enough for an ``IN (...)`` on every database."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _task(row: Any) -> Task:
    return Task(
        id=row.id,
        owner_id=row.owner_id,
        function_id=row.function_id,
        endpoint_id=row.endpoint_id,
        task_group_id=row.task_group_id,
        status=row.status,
        created_at=row.created_at,
        result=row.result,
        exception=row.exception,
        exception_data=row.exception_data,
        details=row.details,
        completion_t=row.completion_t,
    )
