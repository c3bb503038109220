"""Database servers the tests use when the machine has them: scratch PostgreSQL
databases, made and dropped by the test run.

A server that is not reachable skips its tests, saying why; with
``FARCALL_REQUIRE_SERVERS=1`` (CI, where the servers are part of the job) it fails
them instead, so a missing server cannot pass silently.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

#: Set to 1 where the servers must be there: an unreachable one fails the tests.
REQUIRE_SERVERS = "FARCALL_REQUIRE_SERVERS"
#: A URL of the PostgreSQL server's maintenance database, for a superuser (or a
#: user allowed to create databases); scratch databases are made beside it.
POSTGRESQL_URL = "FARCALL_TEST_POSTGRESQL_URL"
DEFAULT_POSTGRESQL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def servers_required() -> bool:
    return os.environ.get(REQUIRE_SERVERS, "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``, or fail it where servers are required."""
    if servers_required():
        pytest.fail(f"{reason} (and {REQUIRE_SERVERS} is set)", pytrace=False)
    pytest.skip(reason)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class PostgreSQL:
    """A PostgreSQL server on which a test run makes scratch databases, each with a
    name of its own (``farcall_test_<run>_<n>``), and drops every one it made."""

    def __init__(self, admin_url: str) -> None:
        import sqlalchemy as sa

        self.admin_url = admin_url
        self._engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._prefix = f"farcall_test_{uuid.uuid4().hex[:12]}"
        self._made: list[str] = []

    @classmethod
    def from_environment(cls) -> PostgreSQL:
        """The server of ``FARCALL_TEST_POSTGRESQL_URL`` (default: local, user postgres),
        or skip (fail, where required) saying why it cannot be used."""
        url = os.environ.get(POSTGRESQL_URL) or DEFAULT_POSTGRESQL_URL
        where = urlsplit(url)
        host, port = where.hostname or "127.0.0.1", where.port or 5432
        if not reachable(host, port):
            unavailable(f"no PostgreSQL server on {host}:{port} (set {POSTGRESQL_URL})")
        try:
            server = cls(url)
            server.execute("SELECT 1")
        except ImportError as exc:
            unavailable(f"no PostgreSQL driver installed ({exc}): pip install 'psycopg[binary]'")
        except Exception as exc:  # the driver's own errors: refused, no such role, ...
            unavailable(f"PostgreSQL on {host}:{port} refused: {type(exc).__name__}: {exc}")
        return server

    def execute(self, sql: str) -> None:
        with self._engine.connect() as conn:
            conn.exec_driver_sql(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new, empty database (or a copy of ``template``'s); returns its URL."""
        name = f"{self._prefix}_{len(self._made)}"
        copy = f" TEMPLATE {template}" if template else ""
        self.execute(f"CREATE DATABASE {name}{copy}")
        self._made.append(name)
        return self.url_of(name)

    def url_of(self, database: str) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(database=database)
        return url.render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        """Drop a database this run made, closing whatever still connects to it."""
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        if name in self._made:
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._made.remove(name)

    def close(self) -> None:
        """Drop every database still left, and let go of the server."""
        for name in list(self._made):
            self.drop_database(self.url_of(name))
        self._engine.dispose()
