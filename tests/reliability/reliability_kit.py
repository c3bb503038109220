"""Shared pieces of the reliability tests: scale, figures, a live stack, database checks.

``FARCALL_SOAK=1`` selects the long form (more tasks, longer runs). Figures recorded
with ``record`` are printed at the end of the run and written to a JSON file.
"""

from __future__ import annotations

import inspect
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from farcall_testkit import figures
from farcall_testkit.endpoint import Api, EndpointProcess, create_user
from farcall_testkit.scaled import Ledger
from farcall_testkit.service import ServiceProcess
from farcall_testkit.waiting import wait_for as wait_for  # the tests call kit.wait_for

SOAK = os.environ.get("FARCALL_SOAK", "") not in ("", "0")
T = TypeVar("T")

#: Service settings for the live tests: quick offline detection, no throttling.
SERVICE_ARGS = ["--offline-timeout", "3", "--requeue-timeout", "60", "--rate-limit", "0"]
FAST_ENDPOINT: dict[str, Any] = {"heartbeat_period": 1.0, "claim_wait": 2.0, "max_backoff": 1.0}
TERMINAL = ("success", "failed")

#: Figures of this run, by section then name; summed when recorded twice (and across
#: pytest-xdist workers); printed at the end of the run and written as JSON.
FIGURES = figures.table("reliability figures (soak)" if SOAK else "reliability figures",
                        json_name="reliability-figures.json", meta={"soak": SOAK})


def scale(bounded: T, soak: T) -> T:
    """``soak`` in the long form, ``bounded`` otherwise."""
    return soak if SOAK else bounded


def record(section: str, **values: Any) -> None:
    """Add figures; numbers add up across calls, anything else is replaced."""
    FIGURES.record(section, **values)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the service database -------------------------------------------------------------


def db_path(home: Path) -> Path:
    return home / "service" / "farcall.db"


def query(home: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the service's SQLite database (read-only; safe while the service runs)."""
    conn = sqlite3.connect(f"file:{db_path(home)}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, tuple(args)).fetchall()
    finally:
        conn.close()


def ledger(home: Path) -> Ledger:
    """The service's SQLite database, read as the scaled tests read PostgreSQL."""
    return Ledger(f"sqlite:///{db_path(home)}")


def task_rows(home: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """Every task in the database: id -> (status, result, exception). Asserts ids are unique."""
    return ledger(home).tasks()


def count_terminal(home: Path) -> int:
    return int(query(home, "SELECT count(*) FROM tasks WHERE status IN ('success', 'failed')")
               [0][0])


# -- a live service and endpoint ------------------------------------------------------


@dataclass
class Stack:
    """A real ``farcall server start`` and the first user's token; endpoints on demand."""

    home: Path
    token: str
    service: ServiceProcess
    endpoints: list[EndpointProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.service.url

    def endpoint(self, name: str = "ep", workers: int = 2, **settings: Any) -> EndpointProcess:
        endpoint = EndpointProcess(self.home, name, self.url, self.token,
                                   engine={"type": "process", "workers": workers},
                                   **{**FAST_ENDPOINT, **settings})
        self.endpoints.append(endpoint)
        return endpoint

    def api(self, token: str | None = None) -> Api:
        return Api(self.url, token or self.token)

    def restart_service(self, pause: float = 0.0) -> None:
        self.service.kill()
        time.sleep(pause)
        self.service.start()

    def close(self) -> None:
        for endpoint in self.endpoints:
            endpoint.stop()
        self.service.kill()


@contextmanager
def live_stack(home: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
               ) -> Iterator[Stack]:
    token = create_user(home)
    service = ServiceProcess(home, args=[*SERVICE_ARGS, *args], env=env)
    stack = Stack(home, token, service)
    try:
        service.start()
        yield stack
    finally:
        stack.close()


#: The stacks the suites that only speak HTTP run against: the embedded one (one
#: process, SQLite, the local broker) and the scaled one (three processes on
#: PostgreSQL and RabbitMQ behind a round-robin proxy).
STACKS = ("embedded", "scaled")


@contextmanager
def any_stack(kind: str, request: Any, home: Path, env: dict[str, str] | None = None
              ) -> Iterator[Any]:
    """A started stack of ``kind`` (see ``STACKS``); the scaled one on scratch servers
    of the ``postgresql`` and ``rabbitmq`` fixtures (skipped without them)."""
    if kind == "embedded":
        with live_stack(home, env=env) as stack:
            yield stack
        return
    from farcall_testkit.scaled import scaled_stack

    postgresql = request.getfixturevalue("postgresql")
    rabbitmq = request.getfixturevalue("rabbitmq")
    with scaled_stack(home, postgresql, rabbitmq, args=SERVICE_ARGS, env=env) as stack:
        yield stack


def database_url(stack: Any) -> str:
    """The SQLAlchemy URL of a stack's database."""
    return getattr(stack, "db_url", "") or f"sqlite:///{db_path(stack.home)}"


def register(api: Api, fn: Callable[..., Any], **extra: Any) -> str:
    """Register ``fn`` as source text, so workers need nothing of the test modules."""
    body = {"function_name": fn.__name__, "function_code": inspect.getsource(fn),
            "serialized": False, **extra}
    return api.call("POST", "/v3/functions", json=body)["function_uuid"]


def assert_still_serving(api: Api, endpoint_id: str, fn: str) -> None:
    """A normal task still runs and succeeds."""
    [task] = api.submit(endpoint_id, fn, [(20,)])
    doc = api.wait([task], timeout=60)[task]
    assert api.result(doc) == 21, doc


def plus_one(x: int) -> int:
    return x + 1
