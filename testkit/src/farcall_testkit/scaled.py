"""farcall at scale, for tests: several ``farcall server start`` processes on one
PostgreSQL database and one RabbitMQ vhost, behind a round-robin proxy.

:class:`ScaledStack` starts the processes (the admin user and its token made first
with the CLI, which also migrates the database), a :class:`~farcall_testkit.proxy.
RoundRobinProxy` in front of them, and endpoints pointed at any one process or at the
proxy. It injects the faults a deployment sees: a process SIGKILLed and restarted on
its port, every broker connection of the vhost closed, every database backend of the
database terminated. :class:`Ledger` reads what the database holds, to check that no
task was lost and none was recorded twice.

The database and the vhost are made and removed by the caller (the ``postgresql`` and
``rabbitmq`` fixtures); every process is killed by :meth:`ScaledStack.close`.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

from farcall_testkit.endpoint import Api, EndpointProcess
from farcall_testkit.proxy import RoundRobinProxy
from farcall_testkit.service import ServiceProcess, admin

#: Service settings for tests: quick offline detection, no throttling.
SERVICE_ARGS = ("--offline-timeout", "3", "--requeue-timeout", "60", "--rate-limit", "0")
#: Endpoint settings for tests: quick heartbeats and reconnections.
FAST_ENDPOINT: dict[str, Any] = {"heartbeat_period": 1.0, "claim_wait": 2.0, "max_backoff": 1.0}
TERMINAL = ("success", "failed")


class ScaledStack:
    """``processes`` service processes on ``db_url`` and ``broker_url``, a proxy in
    front, the user ``user_name`` and its token; use as a context manager."""

    def __init__(self, home: Path, db_url: str, broker_url: str, processes: int = 3,
                 args: Sequence[str] = SERVICE_ARGS, user_name: str = "alice",
                 env: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.db_url = db_url
        self.broker_url = broker_url
        self.args = [*args, "--db", db_url, "--broker", broker_url]
        self.user_name = user_name
        self.token = ""
        self.services = [ServiceProcess(home, args=self.args, env=env)
                         for _ in range(processes)]
        self.proxy = RoundRobinProxy([("127.0.0.1", s.port) for s in self.services])
        self.endpoints: list[EndpointProcess] = []

    # -- lifetime ------------------------------------------------------------------------

    def start(self) -> ScaledStack:
        """Make the user (migrating the database), then start every process at once."""
        try:
            self.admin("user", "add", self.user_name)
            self.token = self.admin("token", "create", self.user_name)
            self._start_all(range(len(self.services)))
            self.proxy.start()
        except BaseException:
            self.close()
            raise
        return self

    def _start_all(self, which: Sequence[int] | range) -> None:
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                self.services[i].start()
            except BaseException as exc:  # reported below, with the process's log
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in which]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop the endpoints, the processes and the proxy."""
        for endpoint in self.endpoints:
            endpoint.stop()
        for service in self.services:
            service.kill()
        self.proxy.stop()

    def __enter__(self) -> ScaledStack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- addresses and clients -----------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's URL: what clients that must not be pinned to a process use."""
        return self.proxy.url

    @property
    def service(self) -> ServiceProcess:
        """The first process, for tests written for one (its pid, its own port)."""
        return self.services[0]

    def url_of(self, i: int) -> str:
        """Process ``i``'s own URL."""
        return self.services[i].url

    def api(self, i: int | None = None, token: str | None = None) -> Api:
        """A plain HTTP client of process ``i``, or of the proxy."""
        return Api(self.url if i is None else self.url_of(i), token or self.token)

    def admin(self, *args: str) -> str:
        """``farcall server ARGS... --db <the database>``; its output."""
        return admin(self.home, *args, "--db", self.db_url)

    def endpoint(self, name: str = "ep", via: int | None = None, workers: int = 2,
                 **settings: Any) -> EndpointProcess:
        """An endpoint (not started) connected to process ``via``, or to the proxy."""
        url = self.url if via is None else self.url_of(via)
        endpoint = EndpointProcess(self.home, name, url, self.token,
                                   engine={"type": "process", "workers": workers},
                                   **{**FAST_ENDPOINT, **settings})
        self.endpoints.append(endpoint)
        return endpoint

    # -- faults --------------------------------------------------------------------------

    def kill(self, i: int) -> None:
        """SIGKILL process ``i`` (its whole process group)."""
        self.services[i].kill()

    def busiest(self) -> int:
        """The process with the most connections open through the proxy now."""
        open_now = self.proxy.open_connections()
        return max(range(len(self.services)), key=lambda i: open_now[self.services[i].port])

    def restart(self, i: int, pause: float = 0.0) -> None:
        """SIGKILL process ``i``, wait ``pause`` seconds, start it again on its port."""
        self.kill(i)
        time.sleep(pause)
        self.services[i].start()

    def close_broker_connections(self) -> int:
        """Close every connection to the stack's vhost, as ``rabbitmqctl
        close_all_connections`` does (only this vhost's: others share the server);
        returns how many were open (the services' and any client's, such as an
        Executor's result stream)."""
        ctl = shutil.which("rabbitmqctl")
        if ctl is not None:
            listed = self._ctl(ctl, "list_connections", "--vhost", self.vhost, "-q", "user")
            found = len(listed.splitlines()) - 1  # a header line, then one per connection
            self._ctl(ctl, "close_all_connections", "--vhost", self.vhost, "--limit", "100000",
                      "fault injected by a farcall test")
            return max(found, 0)
        names = self.broker_connections()  # the management API's view (refreshed every ~5 s)
        for name in names:
            self._management("DELETE", f"/api/connections/{quote(name, safe='')}")
        return len(names)

    @property
    def vhost(self) -> str:
        return unquote(urlsplit(self.broker_url).path.lstrip("/")) or "/"

    @staticmethod
    def _ctl(ctl: str, *args: str) -> str:
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def broker_connections(self) -> list[str]:
        """Names of the connections open on the stack's vhost (management API)."""
        listed = self._management(
            "GET", f"/api/vhosts/{quote(self.vhost, safe='')}/connections")
        return [str(c["name"]) for c in listed or []]

    def _management(self, method: str, path: str) -> Any:
        where = urlsplit(self.broker_url)
        answer = requests.request(
            method, f"http://{where.hostname}:15672{path}", timeout=10,
            auth=(unquote(where.username or "guest"), unquote(where.password or "guest")))
        if method == "DELETE" and answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` every other backend on the stack's database; how many."""
        rows = Ledger(self.db_url).fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return sum(1 for (done,) in rows if done)


def broker_installed() -> bool:
    """Whether an installed broker serves ``amqp://`` URLs (farcall-broker-rabbitmq)."""
    from farcall.plugins import get_plugin_manager
    from farcall_service.kinds import BROKERS
    from farcall_service.plugin import ensure_registered

    manager = get_plugin_manager()
    ensure_registered(manager)
    return any("amqp" in record.schemes for record in manager.records(BROKERS).values())


@contextmanager
def scaled_stack(home: Path, postgresql: Any, rabbitmq: Any, processes: int = 3,
                 args: Sequence[str] = SERVICE_ARGS, env: Mapping[str, str] | None = None
                 ) -> Iterator[ScaledStack]:
    """A started stack on a scratch database and vhost of the ``postgresql`` and
    ``rabbitmq`` fixtures' servers, both removed when it stops. Without the RabbitMQ
    broker installed, the test is skipped."""
    import pytest

    if not broker_installed():
        pytest.skip("no installed broker serves amqp:// URLs: install plugins/broker_rabbitmq")
    db_url, broker_url = postgresql.create_database(), rabbitmq.create_vhost()
    try:
        with ScaledStack(home, db_url, broker_url, processes, args, env=env) as stack:
            yield stack
    finally:
        postgresql.drop_database(db_url)
        rabbitmq.delete_vhost(broker_url)


class Ledger:
    """What the stack's database holds about tasks, read with a connection of its own."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def fetch(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        import sqlalchemy as sa

        engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def tasks(self) -> dict[str, tuple[str, str | None, str | None]]:
        """Every task: id -> (status, result, exception). Asserts each id has one row."""
        rows = self.fetch("SELECT id, status, result, exception FROM tasks")
        ids = [str(row[0]) for row in rows]
        assert len(ids) == len(set(ids)), "a task id has more than one row"
        return {str(row[0]): (row[1], row[2], row[3]) for row in rows}

    def count(self, statuses: Sequence[str] = TERMINAL) -> int:
        rows = self.fetch("SELECT count(*) FROM tasks WHERE status = ANY(:s)",
                          s=list(statuses))
        return int(rows[0][0])


class OutcomeWatch(threading.Thread):
    """Reads the ended tasks again and again, noting any whose outcome changes once
    recorded: a result recorded twice (a fresh random value per execution) shows here."""

    def __init__(self, ledger: Ledger, period: float = 0.5) -> None:
        super().__init__(daemon=True, name="outcome-watch")
        self.ledger = ledger
        self.period = period
        self.seen: dict[str, tuple[Any, ...]] = {}
        self.changes: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.check()
            self._halt.wait(self.period)

    def check(self) -> None:
        try:
            rows = self.ledger.fetch("SELECT id, status, result, exception FROM tasks "
                                     "WHERE status IN ('success', 'failed')")
        except Exception:  # the database's backends are being terminated: look again
            return
        for task_id, *outcome in rows:
            before = self.seen.setdefault(str(task_id), tuple(outcome))
            if before != tuple(outcome):
                self.changes.append(str(task_id))

    def stop(self) -> None:
        self._halt.set()
        self.join(30)
        self.check()
