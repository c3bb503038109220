"""The PostgreSQL engine's pool: a connection in steady use goes straight to work,
one that sat idle is pinged first and replaced if the server dropped it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from farcall_service.storage import sql_engine
from farcall_testkit.servers import PostgreSQL


@pytest.fixture
def engine(postgresql: PostgreSQL, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setattr(sql_engine, "IDLE_BEFORE_PING", 0.2)
    url = postgresql.create_database()
    engine = sql_engine.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        postgresql.drop_database(url)


def _pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_in_steady_use_is_not_pinged_and_an_idle_one_is(
        engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _pings(engine, monkeypatch)
    first = _backend(engine)  # a new connection: pinged
    assert len(pings) == 1
    for _ in range(5):
        assert _backend(engine) == first
    assert len(pings) == 1
    time.sleep(0.3)
    assert _backend(engine) == first
    assert len(pings) == 2


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(
        engine: sa.Engine) -> None:
    dropped = _backend(engine)
    killer = sa.create_engine(engine.url)
    try:
        with killer.connect() as other:
            assert other.exec_driver_sql(
                f"SELECT pg_terminate_backend({dropped})").scalar_one()
    finally:
        killer.dispose()
    time.sleep(0.3)
    with engine.connect() as conn:  # no error: the ping found it gone
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != dropped
