"""What the SQL store guarantees beyond the store contract: the schema comes from the
migrations and matches the tables the queries use on SQLite and PostgreSQL, the fast
path reads and writes as SQLAlchemy does, and no statement reads every task.

The contract itself (``farcall_service.testing.store_contract``) runs in
``test_store_contract.py``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from farcall_service.storage import Store, open_store
from farcall_service.storage import schema as t
from farcall_service.storage.interface import (
    Endpoint,
    Function,
    NewTask,
    Outcome,
    Report,
    TaskFilter,
    TaskOptions,
)
from farcall_service.storage.migrate import alembic_config, current_revision
from farcall_service.storage.sql import SqlStore
from sqlalchemy.dialects import postgresql


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def seed(store: SqlStore) -> tuple[Any, float]:
    """A user, a function ("f" * 8) and an endpoint ("e" * 8) of theirs."""
    user = store.create_user("a")
    now = time.time()
    store.create_function(Function("f" * 8, user.id, "f", "1\nx", created_at=now))
    store.save_endpoint(Endpoint("e" * 8, user.id, "ep", created_at=now))
    return user, now


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without tables: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'farcall.db'}"
        return
    postgresql = request.getfixturevalue("postgresql")
    url = postgresql.create_database()
    yield url
    postgresql.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with the current schema and no rows."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'farcall.db'}"
    return str(request.getfixturevalue("postgresql_url"))


def test_migrations_match_the_query_schema(empty_database_url: str) -> None:
    store = open_store(empty_database_url)
    try:
        assert isinstance(store, Store)
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
        assert diff == []
    finally:
        store.close()


def test_opening_again_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = open_store(url)
    user = store.create_user("alice")
    store.close()
    again = open_store(url)
    try:
        assert again.get_user("alice") == user
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        again.close()


def test_the_database_folder_is_private(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'service' / 'farcall.db'}")
    store.close()
    assert (tmp_path / "service").stat().st_mode & 0o077 == 0


def test_hot_path_statements_are_portable_to_postgresql() -> None:
    from farcall_service.storage import sql_queue

    claim = str(sql_queue.QUEUED_FOR_CLAIM.compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE OF tasks SKIP LOCKED" in claim
    assert "LIMIT %(max_tasks)s" in claim
    for name in dir(sql_queue):
        statement = getattr(sql_queue, name)
        if name.isupper() and isinstance(statement, sa.sql.ClauseElement):
            str(statement.compile(dialect=postgresql.dialect()))
    for table in t.metadata.sorted_tables:
        str(sa.schema.CreateTable(table).compile(dialect=postgresql.dialect()))


def test_no_task_statement_reads_every_task(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement on the tasks table finds its rows through an index by id, by
    group, or by endpoint *and* status: one that walks all tasks (or all of an
    endpoint's tasks, finished ones included) slows down with every task ever run."""
    from farcall_service.storage import prepared

    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    assert isinstance(store, SqlStore)
    statements: list[tuple[str, Any]] = []

    def keep(statement: str, parameters: Any) -> None:
        if " tasks" in statement and not statement.lstrip().upper().startswith("INSERT"):
            statements.append((statement, parameters))

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any,
                 executemany: bool) -> None:
        keep(statement, parameters[0] if executemany else parameters)

    arguments = prepared._Plan.arguments

    def remember_direct(plan: Any, params: Any) -> tuple[Any, ...]:
        args = arguments(plan, params)
        keep(plan.sql, args)  # run on the driver connection: SQLAlchemy never sees it
        return args

    monkeypatch.setattr(prepared._Plan, "arguments", remember_direct)

    try:
        user, now = seed(store)
        sa.event.listen(store.engine, "before_cursor_execute", remember)
        group = str(uuid.uuid4())
        tasks = [("e" * 8, NewTask(str(uuid.uuid4()), "f" * 8, "p")) for _ in range(10)]
        store.submit(user.id, group, tasks, TaskOptions(), now)
        ids = [task.id for _e, task in tasks]
        claimed = store.claim("e" * 8, "s1", 8, now)
        # Several at once: SQLite's planner weighs a long id list differently.
        outcomes = [Outcome(task.id, "success", "r") for task in claimed[:6]]
        store.record_reports([Report("e" * 8, "s1", outcomes, now)])
        store.heartbeat("e" * 8, "s2", {}, now)  # a new session requeues the old one's
        store.claim("e" * 8, "s2", 1, now)
        store.get_task(ids[0])
        store.finished_tasks(ids, user.id)
        store.task_endpoints(ids, user.id)
        store.task_group_tasks(group, user.id)
        store.count_outstanding("e" * 8)
        # The dashboard's reads: one owner's tasks by index, whatever the filter.
        for where in (TaskFilter(), TaskFilter(status="failed", since=now),
                      TaskFilter(endpoint_id="e" * 8, function_id="f" * 8)):
            store.list_tasks(user.id, where, 50, 10**9)
            store.count_tasks(user.id, where)
        store.endpoint_load("e" * 8, user.id)
        store.ended_since(user.id, now)
        store.claimed_at(ids[0])
        store.requeue_stale(now + 1)
        assert store.purge_ended(now + 1, 500).deleted == 6  # walks by seq, deletes by seq
        store.lock_endpoint("e" * 8, now + 1)
        store.delete_endpoint("e" * 8, now, "gone")
        sa.event.remove(store.engine, "before_cursor_execute", remember)
        assert len(statements) >= 14
        with store.engine.connect() as conn:
            for statement, parameters in statements:
                plan = [row[-1] for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", tuple(parameters))]
                for step in plan:
                    assert not step.startswith("SCAN tasks"), (statement, plan)
                    assert "(endpoint_id=?)" not in step, (statement, plan)
    finally:
        store.close()


def test_upgrade_from_the_first_schema_keeps_tasks(tmp_path: Path) -> None:
    """A database made by an older release is migrated in place at start."""
    from farcall_service.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
    assert "exception_data" not in columns
    engine.dispose()
    store = open_store(url)
    try:
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
        assert "exception_data" in columns
    finally:
        store.close()


def test_statements_run_directly_read_and_write_as_through_sqlalchemy(tmp_path: Path) -> None:
    """The SQLite fast path converts parameters and results (JSON, a statement's own
    LIMIT, IN lists) exactly as SQLAlchemy does."""
    from farcall_service.storage import sql_queue as q
    from farcall_service.storage.prepared import Prepared

    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    assert isinstance(store, SqlStore)
    try:
        user, now = seed(store)
        group = str(uuid.uuid4())
        store.submit(user.id, group, [], TaskOptions(), now)
        direct = Prepared(store.engine.dialect, direct=True)
        through = Prepared(store.engine.dialect, direct=False)
        options = {"resource_specification": {"cores": 2}, "result_serializers": None}

        def task(tid: str) -> dict[str, Any]:
            return {"id": tid, "owner_id": user.id, "function_id": "f" * 8,
                    "endpoint_id": "e" * 8, "task_group_id": group, "payload": "p",
                    "options": options, "status": "waiting-for-ep", "claim_session": None,
                    "claimed_at": None, "created_at": now}

        with store.engine.begin() as conn:
            direct.run(conn, q.NEW_TASK, [task("t1"), task("t2")])
            through.run(conn, q.NEW_TASK, [task("t3")])
            args = {"endpoint_id": "e" * 8, "max_tasks": 10}
            fast = direct.rows(conn, q.QUEUED_FOR_CLAIM, args)
            slow = through.rows(conn, q.QUEUED_FOR_CLAIM, args)
            assert [tuple(r) for r in fast] == [tuple(r) for r in slow]
            assert [r.id for r in fast] == ["t1", "t2", "t3"]
            assert all(r.options == options for r in fast)
            assert direct.first(conn, q.FIRST_QUEUED, {"endpoint_id": "e" * 8}) is not None
            outcome = {"b_status": "success", "b_result": "r", "b_exception": None,
                       "b_exception_data": None, "b_details": {"k": [1]}, "b_completion_t": now}
            direct.run(conn, q.RECORD_OUTCOME, {"b_id": "t1", **outcome})
            # A list for a JSON column is a value, not an IN list to expand.
            direct.run(conn, q.RECORD_OUTCOME, {"b_id": "t3", **outcome, "b_details": [1, 2]})
            reported = direct.rows(conn, q.REPORTED_TASKS, {"ids": ["t1", "t2"]})
            assert sorted((r.id, r.status) for r in reported) == [
                ("t1", "success"), ("t2", "waiting-for-ep")]
        assert store.get_task("t1").details == {"k": [1]}  # type: ignore[union-attr]
        assert store.get_task("t3").details == [1, 2]  # type: ignore[union-attr]
    finally:
        store.close()


def test_reports_keep_last_seen_within_a_second_without_writing_it_each_time(
        database_url: str) -> None:
    store = open_store(database_url)
    assert isinstance(store, SqlStore)
    try:
        user, now = seed(store)
        tasks = [("e" * 8, NewTask(str(uuid.uuid4()), "f" * 8, "p")) for _ in range(3)]
        store.submit(user.id, str(uuid.uuid4()), tasks, TaskOptions(), now)
        ids = [task.id for task in store.claim("e" * 8, "s", 10, now)]

        def report(task_id: str, at: float) -> float | None:
            store.record_reports([Report("e" * 8, "s", [Outcome(task_id, "success", "r")], at)])
            endpoint = store.get_endpoint("e" * 8)
            assert endpoint is not None
            return endpoint.last_seen

        assert report(ids[0], now + 0.5) == now  # seen at the claim, half a second ago
        assert report(ids[1], now + 1.5) == now + 1.5
        assert report(ids[2], now + 1.6) == now + 1.5
    finally:
        store.close()


def test_a_stream_of_reports_keeps_last_seen_within_a_second_of_each(
        database_url: str) -> None:
    store = open_store(database_url)
    assert isinstance(store, SqlStore)
    try:
        user, now = seed(store)
        times = [now + 0.13 * n for n in range(1, 40)]
        tasks = [("e" * 8, NewTask(str(uuid.uuid4()), "f" * 8, "p")) for _ in times]
        store.submit(user.id, str(uuid.uuid4()), tasks, TaskOptions(), now)
        ids = [task.id for task in store.claim("e" * 8, "s", len(times), now)]
        seen = []
        for task_id, at in zip(ids, times, strict=True):
            store.record_reports([Report("e" * 8, "s", [Outcome(task_id, "success", "r")], at)])
            endpoint = store.get_endpoint("e" * 8)
            assert endpoint is not None and endpoint.last_seen is not None
            assert at - endpoint.last_seen <= 1.0, f"last_seen lags the report at {at - now:.2f}"
            seen.append(endpoint.last_seen)
        assert len(set(seen)) <= len(times) // 3  # rewritten now and then, not each time
    finally:
        store.close()


def test_upgrade_counts_each_owner_s_usage_from_the_tasks(tmp_path: Path) -> None:
    """The quotas' counters start from what a database made before them holds."""
    from farcall_service.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, name, created_at) VALUES ('u', 'ada', 0)"))
        conn.execute(sa.text(
            "INSERT INTO functions (id, owner_id, name, code, metadata, public, created_at,"
            " deleted) VALUES ('f', 'u', 'f', 'c', '{}', 0, 0, 0)"))
        conn.execute(sa.text(
            "INSERT INTO endpoints (id, owner_id, name, metadata, public, locked_until,"
            " heartbeat, created_at, deleted) VALUES ('e', 'u', 'e', '{}', 0, 0, '{}', 0, 0)"))
        conn.execute(sa.text(
            "INSERT INTO task_groups (id, owner_id, created_at) VALUES ('g', 'u', 0)"))
        for tid, status, result in (("t1", "waiting-for-ep", None), ("t2", "running", None),
                                    ("t3", "success", "12345")):
            conn.execute(sa.text(
                "INSERT INTO tasks (id, owner_id, function_id, endpoint_id, task_group_id,"
                " payload, options, status, result, created_at) VALUES"
                " (:id, 'u', 'f', 'e', 'g', 'pp', '{}', :status, :result, 0)"),
                {"id": tid, "status": status, "result": result})
    engine.dispose()
    store = open_store(url)
    try:
        assert store.usage("u") == (2, 3 * 2 + 5)
    finally:
        store.close()


def test_every_migration_runs_in_turn_with_data_in_place(empty_database_url: str) -> None:
    """A database made by the first release, with users, tasks and results in it,
    is brought to the current schema one revision at a time, and the store then
    serves what it held: read, claimed, recorded, streamed."""
    from alembic.script import ScriptDirectory
    from farcall_service.storage.migrate import upgrade
    from farcall_service.testing.store_outbox_contract import drained

    revisions = [script.revision for script in
                 reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))]
    assert revisions[0] == "0001" and revisions[-1] == head_revision()
    engine = sa.create_engine(empty_database_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as conn:
            run = conn.execute
            run(sa.text("INSERT INTO users (id, name, created_at) VALUES ('u', 'ada', 0)"))
            run(sa.text("INSERT INTO tokens (token_hash, user_id, created_at)"
                        " VALUES (:h, 'u', 0)"), {"h": "h" * 64})
            run(sa.text("INSERT INTO functions (id, owner_id, name, code, metadata, public,"
                        " created_at, deleted) VALUES ('f', 'u', 'f', 'c\n', '{}', :no, 0, :no)"),
                {"no": False})
            run(sa.text("INSERT INTO endpoints (id, owner_id, name, metadata, public,"
                        " locked_until, heartbeat, created_at, deleted)"
                        " VALUES ('e', 'u', 'e', '{}', :no, 0, '{}', 0, :no)"), {"no": False})
            run(sa.text("INSERT INTO task_groups (id, owner_id, created_at)"
                        " VALUES ('g', 'u', 0)"))
            for tid, status, result in (("t1", "waiting-for-ep", None),
                                        ("t2", "waiting-for-ep", None),
                                        ("t3", "success", "12345")):
                run(sa.text(
                    "INSERT INTO tasks (id, owner_id, function_id, endpoint_id, task_group_id,"
                    " payload, options, status, result, created_at) VALUES"
                    " (:id, 'u', 'f', 'e', 'g', 'pp', '{}', :status, :result, 0)"),
                    {"id": tid, "status": status, "result": result})
        for revision in revisions[1:]:
            upgrade(engine, revision)
    finally:
        engine.dispose()
    store = open_store(empty_database_url)
    try:
        assert current_revision(store.engine) == head_revision()
        assert store.user_for_token("h" * 64) == store.get_user("ada")
        assert store.usage("u") == (2, 3 * 2 + 5)
        assert [task.id for task in store.task_group_tasks("g", "u")] == ["t1", "t2", "t3"]
        assert store.get_task("t3").result == "12345"  # type: ignore[union-attr]
        assert not store.group_streamed("g", "u")
        assert store.stream_group("g", "u", 1.0)  # an old group may be streamed
        assert [task.id for task in store.claim("e", "s", 10, 1.0)] == ["t1", "t2"]
        store.record_reports([Report("e", "s", [Outcome("t1", "success", "r")], 2.0)])
        assert [task.id for task in drained(store)] == ["t1"]
    finally:
        store.close()
