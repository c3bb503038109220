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
#: database (it is emptied before each test).
TEST_DB_URL = os.environ.get("FARCALL_SERVICE_TEST_DB_URL", "")


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
