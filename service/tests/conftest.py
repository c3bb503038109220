"""Fixtures: the service in-process (fast) and helpers to act as several users."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.context import ServiceContext
from farcall_service.settings import Settings
from farcall_service.storage import schema
from farcall_testkit.service import Caller
from fastapi.testclient import TestClient

#: Run the in-process tests against another database, e.g. a scratch PostgreSQL
#: database (it is emptied before each test).
TEST_DB_URL = os.environ.get("FARCALL_SERVICE_TEST_DB_URL", "")
#: A PostgreSQL server for the tests that need one (each makes and drops a database):
#: they skip when it does not answer, unless FARCALL_REQUIRE_SERVERS=1.
PG_ADMIN_URL = os.environ.get(
    "FARCALL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _empty_database(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if TEST_DB_URL:
        _empty_database(TEST_DB_URL)
    return Settings(
        home=tmp_path, db_url=TEST_DB_URL, cache_ttl=0.0, rate_limit=0, max_claim_wait=5.0
    )


@pytest.fixture
def store_url(settings: Settings) -> str:
    """The test database: SQLite under the test's home, or the emptied test database."""
    return settings.database_url


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        if os.environ.get("FARCALL_REQUIRE_SERVERS") == "1":
            raise
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL} ({type(exc).__name__}); set "
                    "FARCALL_TEST_POSTGRES_URL to run this test")
    name = f"farcall_test_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
