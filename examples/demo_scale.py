"""farcall demo at scale: the User Guide's examples against three service processes on
PostgreSQL and RabbitMQ, behind a round-robin proxy.

Makes a scratch database and a scratch RabbitMQ vhost, starts three ``farcall server
start --db ... --broker amqp://...`` processes, a TCP proxy in front of them (standing
in for nginx, docs/deploy.md) and an endpoint connected through it, runs the demo of
``examples/demo.py`` and a 200-future Executor batch, shows how the connections were
spread, and removes everything it made. Exits 0 only if every step worked; 2 when a
server is missing (saying what to start).

Servers (defaults: this machine's loopback): ``FARCALL_DEMO_POSTGRESQL_URL``
(a database for a user who may create databases), ``FARCALL_DEMO_AMQP_URL`` and
``FARCALL_DEMO_RABBITMQ_MANAGEMENT_URL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo  # noqa: E402  (the guide's steps, shared with `make demo`)

POSTGRESQL_URL = os.environ.get("FARCALL_DEMO_POSTGRESQL_URL",
                                "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("FARCALL_DEMO_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MANAGEMENT_URL = os.environ.get("FARCALL_DEMO_RABBITMQ_MANAGEMENT_URL",
                                "http://guest:guest@127.0.0.1:15672")
PROCESSES = 3
FUTURES = 200

START_POSTGRESQL = (
    "Start PostgreSQL 13+ on 127.0.0.1:5432 with a user that may create databases, e.g.\n"
    "    docker run -d --name farcall-pg -p 5432:5432 "
    "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:15\n"
    "or point FARCALL_DEMO_POSTGRESQL_URL at one "
    "(postgresql+psycopg://user:password@host:5432/postgres).")
START_RABBITMQ = (
    "Start RabbitMQ 3.8+ with its management plugin on 127.0.0.1 (5672 and 15672), e.g.\n"
    "    docker run -d --name farcall-rabbitmq -p 5672:5672 -p 15672:15672 "
    "rabbitmq:3-management\n"
    "(or `rabbitmq-plugins enable rabbitmq_management` on an installed server), or set "
    "FARCALL_DEMO_AMQP_URL and FARCALL_DEMO_RABBITMQ_MANAGEMENT_URL.")


class Missing(Exception):
    """A server or package the demo needs is not there; the message says what to do."""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def reachable(url: str, default_port: int) -> bool:
    where = urlsplit(url)
    try:
        with socket.create_connection((where.hostname or "127.0.0.1",
                                       where.port or default_port), timeout=2):
            return True
    except OSError:
        return False


# -- scratch servers ----------------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new database beside ``POSTGRESQL_URL``'s, dropped at the end; yields its URL."""
    if not reachable(POSTGRESQL_URL, 5432):
        raise Missing(f"PostgreSQL does not answer at {_host(POSTGRESQL_URL, 5432)}.\n"
                      + START_POSTGRESQL)
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    engine = sa.create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    name = f"farcall_demo_{uuid.uuid4().hex[:10]}"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:
        raise Missing(f"PostgreSQL at {_host(POSTGRESQL_URL, 5432)} refused to make a "
                      f"database: {type(exc).__name__}: {str(exc).splitlines()[0]}\n"
                      + START_POSTGRESQL) from None
    print(f"made database {name}")
    try:
        yield make_url(POSTGRESQL_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        engine.dispose()
        print(f"dropped database {name}")


class Management:
    """The few RabbitMQ management API calls the demo makes."""

    def __init__(self, url: str) -> None:
        import requests

        where = urlsplit(url)
        self.base = f"{where.scheme}://{where.hostname}:{where.port or 15672}"
        self.http = requests.Session()
        self.http.auth = (where.username or "guest", where.password or "guest")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, self.base + path, json=body, timeout=10)
        if method == "DELETE" and answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json() if answer.content else None


@contextmanager
def scratch_vhost() -> Iterator[str]:
    """A new vhost, deleted at the end with the users the broker made for it; yields
    its AMQP URL."""
    if not reachable(AMQP_URL, 5672):
        raise Missing(f"RabbitMQ does not answer at {_host(AMQP_URL, 5672)}.\n" + START_RABBITMQ)
    management = Management(MANAGEMENT_URL)
    try:
        management.call("GET", "/api/overview")
    except Exception as exc:
        raise Missing(f"the RabbitMQ management API at {management.base} does not answer "
                      f"({type(exc).__name__}).\n" + START_RABBITMQ) from None
    name = f"farcall_demo_{uuid.uuid4().hex[:10]}"
    user = urlsplit(AMQP_URL).username or "guest"
    management.call("PUT", f"/api/vhosts/{name}")
    management.call("PUT", f"/api/permissions/{name}/{quote(user, safe='')}",
                    {"configure": ".*", "write": ".*", "read": ".*"})
    print(f"made RabbitMQ vhost {name}")
    where = urlsplit(AMQP_URL)
    try:
        yield f"{where.scheme}://{where.netloc}/{name}?user_prefix={name}-"
    finally:
        management.call("DELETE", f"/api/vhosts/{name}")
        for found in management.call("GET", "/api/users") or []:
            if str(found["name"]).startswith(f"{name}-"):
                management.call("DELETE", f"/api/users/{quote(found['name'], safe='')}")
        print(f"deleted RabbitMQ vhost {name}")


def _host(url: str, port: int) -> str:
    where = urlsplit(url)
    return f"{where.hostname or '127.0.0.1'}:{where.port or port}"


# -- the stack ----------------------------------------------------------------------------


def prepare_users(stack: Any) -> tuple[str, str]:
    """A group of the stack's ``dev`` user and a guest (as ``demo.prepare_sharing``)."""
    from farcall_service.storage import open_store

    with contextlib.closing(open_store(stack.db_url)) as store:
        return demo.share_with_guest(store)


def write_profile(home: Path, url: str, token: str, endpoint_id: str) -> None:
    """What ``farcall dev`` writes, so ``Client()`` finds the proxy, the token and the
    endpoint (0600: it holds the token)."""
    path = home / "dev.json"
    path.write_text(json.dumps({"base_url": url, "token": token, "endpoint_id": endpoint_id}))
    path.chmod(0o600)


def double(x):
    return 2 * x


def run_demo(home: Path, db_url: str, broker_url: str) -> None:
    from farcall_testkit.scaled import ScaledStack, broker_installed

    if not broker_installed():
        raise Missing("farcall-broker-rabbitmq is not installed: `make install` "
                      "(or pip install -e plugins/broker_rabbitmq).")
    step(f"Starting {PROCESSES} service processes on PostgreSQL and RabbitMQ")
    began = time.monotonic()
    stack = ScaledStack(home, db_url, broker_url, processes=PROCESSES,
                        args=("--rate-limit", "0"), user_name="dev")
    with stack:
        for i, service in enumerate(stack.services, 1):
            print(f"process {i}: farcall server start --port {service.port} "
                  f"--db <scratch database> --broker <scratch vhost>  (ready)")
        print(f"round-robin proxy on {stack.url}  ({time.monotonic() - began:.1f} s)")
        sharing = prepare_users(stack)

        step("Starting an endpoint, connected through the proxy")
        endpoint = stack.endpoint("demo-scale", workers=2)
        endpoint.start()
        print(f"endpoint {endpoint.endpoint_id} serving")
        write_profile(home, stack.url, stack.token, endpoint.endpoint_id)

        # The guide's functions are sent by value, as from a script (they live in the
        # imported ``demo`` module here, which the endpoint's workers do not have).
        for fn in (demo.platform_func, demo.hello, demo.double, demo.divide, double):
            fn.__module__ = "__main__"
        demo.run_guide(home, sharing)

        step(f"An Executor: {FUTURES} futures through the proxy")
        from farcall import Client, Executor

        began = time.monotonic()
        with Executor(endpoint.endpoint_id, client=Client()) as executor:
            futures = [executor.submit(double, i) for i in range(FUTURES)]
            values = [f.result(timeout=120) for f in futures]
        assert values == [2 * i for i in range(FUTURES)], "wrong results"
        print(f"{FUTURES} results, all right, in {time.monotonic() - began:.2f} s")

        step("How the proxy spread the connections")
        counts = stack.proxy.snapshot()
        for i, service in enumerate(stack.services, 1):
            print(f"process {i} (port {service.port}): "
                  f"{counts.get(f'to:{service.port}', 0)} connections")


def preflight() -> None:
    """Both servers answer, or say what to start for each that does not."""
    missing = []
    if not reachable(POSTGRESQL_URL, 5432):
        missing.append(f"PostgreSQL does not answer at {_host(POSTGRESQL_URL, 5432)}.\n"
                       + START_POSTGRESQL)
    if not reachable(AMQP_URL, 5672):
        missing.append(f"RabbitMQ does not answer at {_host(AMQP_URL, 5672)}.\n"
                       + START_RABBITMQ)
    if missing:
        raise Missing("\n\n".join(missing))


def main() -> int:
    # Stopped with SIGTERM (Ctrl-C is KeyboardInterrupt), it still stops its processes
    # and removes the scratch database and vhost on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    home = Path(tempfile.mkdtemp(prefix="farcall-demo-scale-"))
    os.environ["FARCALL_HOME"] = str(home)
    for var in ("FARCALL_BASE_URL", "FARCALL_TOKEN"):
        os.environ.pop(var, None)
    try:
        preflight()
        with scratch_database() as db_url, scratch_vhost() as broker_url:
            run_demo(home, db_url, broker_url)
    except Missing as exc:
        print(f"\nCannot run the demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nStopped; everything the demo made is removed.", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print("\nDemo finished: every step worked on three processes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
