"""Fixtures: the service in-process (fast) and helpers to act as several users."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.context import ServiceContext
from farcall_service.settings import Settings
from farcall_service.storage import schema
from farcall_testkit.servers import PostgreSQL
from farcall_testkit.service import Caller
from fastapi.testclient import TestClient

#: Run the in-process tests against another database, e.g. a scratch PostgreSQL
#: database (it is emptied before each test), instead of a SQLite file per test.
TEST_DB_URL = os.environ.get("FARCALL_SERVICE_TEST_DB_URL", "")
#: Which in-process tests also run on a scratch PostgreSQL database (``[postgresql]``
#: in their ids) when a server answers: ``all`` (the default: about a minute more
#: on 2 cores), ``store`` (the modules in :data:`POSTGRESQL_MODULES`), or ``none``.
POSTGRESQL_PASS = os.environ.get("FARCALL_SERVICE_TEST_POSTGRESQL", "").strip().lower() or "all"
#: The modules of the ``store`` pass: those that reach the store's transactions in
#: ways the database decides (concurrent writers, row locks, SKIP LOCKED, the
#: hand-off, result streams, revocation and removal).
POSTGRESQL_MODULES = frozenset({
    "test_access", "test_cache_emptied", "test_channel", "test_following", "test_handoff",
    "test_revocation", "test_single_process", "test_streams", "test_submission_limits",
    "test_wait", "test_recorder", "test_shared_database",
})

#: Every table of the schema, children first (TRUNCATE names them all at once).
_TABLES = ", ".join(table.name for table in reversed(schema.metadata.sorted_tables))


def _empty_database(url: str) -> None:
    """Delete every row, keeping the migrated schema: far cheaper than migrating
    again. A database whose schema is not the current one is made again."""
    engine = sa.create_engine(url)
    try:
        try:
            with engine.begin() as conn:
                # A connection a previous test left in a transaction fails this
                # test instead of hanging the run.
                conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
                conn.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
                # The postgresql blob store's large objects are no table's rows.
                conn.execute(sa.text("SELECT lo_unlink(oid) FROM pg_largeobject_metadata"))
        except sa.exc.ProgrammingError:  # tables missing: start from nothing
            with engine.begin() as conn:
                schema.metadata.drop_all(conn)
                conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests on the ``settings`` fixture run on SQLite, and those of the chosen
    modules on PostgreSQL too (``[postgresql]`` in their ids)."""
    if "database" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    both = not TEST_DB_URL and (
        POSTGRESQL_PASS == "all" or (POSTGRESQL_PASS == "store" and module in POSTGRESQL_MODULES))
    metafunc.parametrize("database", ["sqlite", "postgresql"] if both else ["sqlite"],
                         indirect=True)


@pytest.fixture(scope="session")
def service_postgresql_url(postgresql: PostgreSQL, postgresql_template: str) -> str:
    """One scratch PostgreSQL database for the in-process tests of the run, emptied
    before each (dropped at the end of the run with the others)."""
    return postgresql.create_database(template=postgresql_template)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database for the test ("": a new SQLite file)."""
    if TEST_DB_URL:
        url = TEST_DB_URL
    elif getattr(request, "param", "sqlite") == "postgresql":
        url = request.getfixturevalue("service_postgresql_url")
    else:
        return ""
    _empty_database(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, database: str) -> Settings:
    return Settings(
        home=tmp_path, db_url=database, cache_ttl=0.0, rate_limit=0, max_claim_wait=5.0
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def ctx(client: TestClient) -> ServiceContext:
    return client.app.state.farcall  # type: ignore[attr-defined]


@pytest.fixture
def make_caller(client: TestClient, ctx: ServiceContext) -> Callable[..., Caller]:
    def make(name: str, groups: tuple[str, ...] = ()) -> Caller:
        user = admin.add_user(ctx.store, name)
        token = admin.create_token(ctx.store, name)
        for group in groups:
            if ctx.store.get_group(group) is None:
                admin.add_group(ctx.store, group)
            admin.add_member(ctx.store, group, name)
        return Caller(client, user.id, token)

    return make


@pytest.fixture
def alice(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("alice")


@pytest.fixture
def ep_fn(alice: Caller) -> tuple[str, str]:
    """An endpoint and a function of alice's."""
    return alice.register_endpoint(), alice.register_function()


@pytest.fixture(scope="session")
def postgresql_template(postgresql: PostgreSQL) -> str:
    """The name of a PostgreSQL database with the current schema, copied for each test."""
    from farcall_service.storage import open_store

    url = postgresql.create_database()
    open_store(url).close()
    return str(sa.engine.make_url(url).database)


@pytest.fixture
def postgresql_url(postgresql: PostgreSQL, postgresql_template: str) -> Iterator[str]:
    """A new PostgreSQL database with the current schema, dropped after the test."""
    url = postgresql.create_database(template=postgresql_template)
    yield url
    postgresql.drop_database(url)
