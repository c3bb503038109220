"""The SQL store's engine and transactions, shared by each part of the store.

SQLite is the embedded default: WAL journal, full fsync on commit (an accepted task
survives a crash), and write transactions that start with ``BEGIN IMMEDIATE`` behind
an in-process lock so concurrent writers queue instead of failing with "database is
locked". PostgreSQL needs none of that: its row locks (``FOR UPDATE``) keep
concurrent writers apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from farcall.errors import PluginError
from farcall.private_files import in_farcall_home, private_dir, private_sqlite
from sqlalchemy.engine import make_url

from farcall_service.storage.json_columns import loads_stored
from farcall_service.storage.prepared import Prepared, driver_connection

_WRITE = "farcall_write"


def missing_driver(drivername: str, exc: ImportError) -> str:
    """What to install for a database URL whose driver cannot be imported."""
    hint = ("pip install 'farcall-service[postgresql]'"
            if drivername.startswith("postgresql") else f"install the module {exc.name!r}")
    return (f"the database driver of {drivername}:// URLs is not installed "
            f"({exc.name or exc}): {hint}")


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url``, with SQLite set up for durability and concurrent writers.
    JSON columns are read through ``loads_stored``, so no stored value is too deep to
    send back."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        try:
            engine = sa.create_engine(url, json_deserializer=loads_stored)
        except ImportError as exc:
            raise PluginError(missing_driver(parsed.drivername, exc)) from None
        return _pinged_when_idle(engine)
    if parsed.database and parsed.database != ":memory:":
        # The database holds token hashes and everyone's code: owner-only, and so are
        # the folders farcall owns above it (a folder the user chose keeps its mode).
        database = Path(parsed.database).expanduser()
        private_dir(database.parent, tighten=in_farcall_home(database.parent))
        private_sqlite(database)
    # Last in, first out: a connection's page cache is dropped whenever another one
    # commits, so the hot path keeps reusing one warm connection instead of reading
    # every page it touches again (14 reads per round trip, first in, first out).
    engine = sa.create_engine(url, connect_args={"timeout": 30}, pool_use_lifo=True,
                              json_deserializer=loads_stored)

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
        driver_connection(connection).execute(f"BEGIN {mode}")

    return engine


#: Seconds a pooled connection may have been idle and still be used without first
#: asking the server whether it is there.
IDLE_BEFORE_PING = 1.0


def _pinged_when_idle(engine: sa.Engine) -> sa.Engine:
    """A connection back from the pool after ``IDLE_BEFORE_PING`` seconds or more is
    pinged first, and replaced if the server dropped it (a restart, a terminated
    backend). One in steady use is not: a ping per transaction was a round trip to
    the server in each, and under load each round trip waits for a core. A drop the
    ping would not see is an error of that one transaction (the client retries it),
    and the pool replaces every connection opened before it."""

    @sa.event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool tries another connection
            raise sa.exc.DisconnectionError(str(exc)) from exc

    return engine


class SqlConnections:
    """An engine and its transactions: the base of every part of the SQL store, so
    each part (identity, OAuth, catalogue, tasks) is also a store of its own."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else nullcontext()
        )
        #: The hot path's statements, run on SQLite's own connection.
        self._hot = Prepared(self.engine.dialect, direct=True)

    @property
    def one_writer(self) -> bool:
        """SQLite takes one writing transaction at a time; PostgreSQL commits side by side."""
        return self._sqlite

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[sa.Connection]:
        """A write transaction. ``durable=False`` is for changes whose loss in a power
        failure only repeats work (claims, heartbeats): their commit does not wait for
        the disk, though it still survives the service being killed (WAL mode), and the
        next durable commit flushes it anyway.
        """
        sqlite = self._sqlite
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            if not durable and sqlite:
                driver_connection(conn).execute("PRAGMA synchronous=NORMAL")
            try:
                with conn.begin():
                    if not durable and not sqlite:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
            finally:
                if not durable and sqlite:
                    driver_connection(conn).execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn
