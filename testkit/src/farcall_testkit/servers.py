"""Servers the tests use when the machine has them: scratch PostgreSQL databases and
scratch RabbitMQ vhosts, made and removed by the test run.

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
#: The RabbitMQ server's AMQP URL for a user who may create vhosts and users.
AMQP_URL = "FARCALL_TEST_AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: The same server's management API (credentials in the URL).
RABBITMQ_MANAGEMENT_URL = "FARCALL_TEST_RABBITMQ_MANAGEMENT_URL"
DEFAULT_RABBITMQ_MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"


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


class RabbitMQ:
    """A RabbitMQ server on which a test run makes scratch vhosts
    (``farcall_test_<run>_<n>``, the AMQP user given every permission on each), and
    removes every vhost it made and every user whose name carries :attr:`prefix`
    (brokers under test name the users they make with it: ``?user_prefix=`` in the
    URLs :meth:`create_vhost` returns)."""

    def __init__(self, amqp_url: str, management_url: str) -> None:
        import requests

        self.amqp_url = amqp_url
        where = urlsplit(management_url)
        self.management_url = f"{where.scheme}://{where.hostname}:{where.port or 15672}"
        self._http = requests.Session()
        self._http.auth = (where.username or "guest", where.password or "guest")
        self.prefix = f"farcall_test_{uuid.uuid4().hex[:12]}"
        self._made: list[str] = []
        self._count = 0

    @classmethod
    def from_environment(cls) -> RabbitMQ:
        """The server of ``FARCALL_TEST_AMQP_URL`` and its management API
        (``FARCALL_TEST_RABBITMQ_MANAGEMENT_URL``), or skip (fail, where required)
        saying why it cannot be used."""
        url = os.environ.get(AMQP_URL) or DEFAULT_AMQP_URL
        management = os.environ.get(RABBITMQ_MANAGEMENT_URL) or DEFAULT_RABBITMQ_MANAGEMENT_URL
        where = urlsplit(url)
        host, port = where.hostname or "127.0.0.1", where.port or 5672
        if not reachable(host, port):
            unavailable(f"no RabbitMQ server on {host}:{port} (set {AMQP_URL})")
        server = cls(url, management)
        try:
            server._request("GET", "/api/overview")
        except Exception as exc:  # refused, 401, ...
            unavailable(
                f"the RabbitMQ management API at {server.management_url} does not answer: "
                f"{type(exc).__name__}: {exc} (rabbitmq-plugins enable rabbitmq_management, "
                f"or set {RABBITMQ_MANAGEMENT_URL})"
            )
        return server

    def _request(self, method: str, path: str, json: dict[str, str] | None = None) -> object:
        response = self._http.request(method, self.management_url + path, json=json, timeout=10)
        if response.status_code == 404 and method == "DELETE":
            return None
        response.raise_for_status()
        return response.json() if response.content else None

    @property
    def user(self) -> str:
        return urlsplit(self.amqp_url).username or "guest"

    def create_vhost(self) -> str:
        """A new, empty vhost on which the AMQP user may do anything; returns its
        AMQP URL (with ``?user_prefix=`` naming the users made on it after this run)."""
        from urllib.parse import quote

        name = f"{self.prefix}_{self._count}"
        self._count += 1
        self._request("PUT", f"/api/vhosts/{quote(name, safe='')}")
        self._made.append(name)
        self._request(
            "PUT",
            f"/api/permissions/{quote(name, safe='')}/{quote(self.user, safe='')}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        )
        return self.url_of(name)

    def url_of(self, vhost: str) -> str:
        from urllib.parse import quote

        where = urlsplit(self.amqp_url)
        return f"{where.scheme}://{where.netloc}/{quote(vhost, safe='')}?user_prefix={self.prefix}_"

    def delete_vhost(self, url: str) -> None:
        """Delete a vhost this run made (its queues, exchanges and connections go too)."""
        from urllib.parse import quote, unquote

        name = unquote(urlsplit(url).path.lstrip("/"))
        if name in self._made:
            self._request("DELETE", f"/api/vhosts/{quote(name, safe='')}")
            self._made.remove(name)

    def users(self) -> list[str]:
        """Names of the RabbitMQ users this run made."""
        listed = self._request("GET", "/api/users")
        assert isinstance(listed, list)
        return [u["name"] for u in listed if str(u["name"]).startswith(self.prefix)]

    def close(self) -> None:
        """Delete every vhost still left and every user named with this run's prefix."""
        from urllib.parse import quote

        try:
            for name in list(self._made):
                self.delete_vhost(self.url_of(name))
            for user in self.users():
                self._request("DELETE", f"/api/users/{quote(user, safe='')}")
        finally:
            self._http.close()
