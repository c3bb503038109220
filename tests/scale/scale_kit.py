"""Shared pieces of the scaled-stack tests: scale, figures, and submitting through a
proxy whose processes come and go.

``FARCALL_SOAK=1`` selects the long form. Figures recorded with ``record`` are printed
at the end of the run (and by each test, as it ends).
"""

from __future__ import annotations

import collections
import inspect
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from farcall_testkit import figures
from farcall_testkit.endpoint import Api, EndpointProcess
from farcall_testkit.scaled import Ledger, ScaledStack
from farcall_testkit.waiting import wait_for as wait_for  # the tests call kit.wait_for

SOAK = os.environ.get("FARCALL_SOAK", "") not in ("", "0")
T = TypeVar("T")

#: Figures of this run, by section then name (from every pytest-xdist worker).
FIGURES = figures.table("scaled-stack figures (soak)" if SOAK else "scaled-stack figures")


def scale(bounded: T, soak: T) -> T:
    """``soak`` in the long form, ``bounded`` otherwise."""
    return soak if SOAK else bounded


def record(section: str, **values: Any) -> None:
    """Note a test's figures, and print them (seen with ``-s``; always in the summary)."""
    FIGURES.record(section, **values)
    print(f"\n{section}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()))


def _fmt(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def logs(stack: ScaledStack, *endpoints: EndpointProcess) -> str:
    """The ends of the service processes' and ``endpoints``' logs, for a failure's
    message: CI keeps nothing else of a run, and a late result's cause is in them."""
    parts = [f"--- service process {i} ---\n{service.log()}"
             for i, service in enumerate(stack.services)]
    parts += [f"--- endpoint {endpoint.name} ---\n{endpoint.log()}" for endpoint in endpoints]
    return "\n".join(parts)


def register(api: Api, fn: Callable[..., Any], **extra: Any) -> str:
    """Register ``fn`` as source text, so workers need nothing of the test modules."""
    body = {"function_name": fn.__name__, "function_code": inspect.getsource(fn),
            "serialized": False, **extra}
    return str(api.call("POST", "/v3/functions", json=body)["function_uuid"])


#: What both SDKs retry (farcall's ``http_transport.RETRY_STATUSES``, globus-sdk's
#: ``transient_error_status_codes``), besides a dropped connection.
RETRIED = (429, 500, 502, 503, 504)


class Retrying:
    """Calls through the proxy that retry what the SDKs retry (a dropped connection,
    429/500/502/503/504), counting the retries by cause. A retried submission may
    have been accepted the first time: its tasks are orphans, which must end too."""

    def __init__(self, api: Api, patience: float = 120.0) -> None:
        self.api = api
        self.patience = patience
        self.causes: collections.Counter[str] = collections.Counter()

    @property
    def retries(self) -> int:
        return sum(self.causes.values())

    def call(self, method: str, path: str, **kw: Any) -> Any:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                answer = self.api.http.request(method, self.api.url + path, timeout=60, **kw)
            except requests.ConnectionError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return answer.json()
            if answer is not None and answer.status_code not in RETRIED:
                raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
            self.causes["dropped" if answer is None else str(answer.status_code)] += 1
            assert time.monotonic() < deadline, f"{method} {path} unanswered for {self.patience} s"
            time.sleep(0.2)

    def submit(self, endpoint_id: str, function_id: str, arg_lists: list[tuple[Any, ...]]
               ) -> list[str]:
        body = {"tasks": {function_id: [self.api.payload(*args) for args in arg_lists]}}
        answer = self.call("POST", f"/v3/endpoints/{endpoint_id}/submit", json=body)
        return list(answer["tasks"][function_id])

    def documents(self, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(task_ids), 5000):
            answer = self.call("POST", "/v2/batch_status",
                               json={"task_ids": task_ids[start:start + 5000]})
            out.update(answer["results"])
        return out


class Fault:
    """Injects one fault and undoes it (a killed process starts again)."""

    def __init__(self, stack: ScaledStack, endpoint: EndpointProcess, kind: str) -> None:
        self.stack, self.endpoint, self.kind = stack, endpoint, kind
        self.detail: dict[str, Any] = {}
        self.victim = -1

    def inject(self) -> None:
        if self.kind == "service":
            self.victim = self.stack.busiest()
            self.detail["connections_cut"] = self.stack.proxy.open_connections()[
                self.stack.services[self.victim].port]
            self.stack.kill(self.victim)
        elif self.kind == "endpoint":
            self.detail["claimed_at_kill"] = Ledger(self.stack.db_url).fetch(
                "SELECT count(*) FROM tasks WHERE endpoint_id = :e AND status = 'running'",
                e=self.endpoint.endpoint_id)[0][0]
            self.endpoint.kill_main()
            self.endpoint.start()
        elif self.kind == "broker":
            self.detail["connections_closed"] = self.stack.close_broker_connections()
        elif self.kind == "service broker":
            self.detail["connections_closed"] = self.stack.close_broker_connections(
                services_only=True)
        elif self.kind == "database":
            self.detail["backends_terminated"] = self.stack.terminate_backends()
        else:
            raise ValueError(f"no fault named {self.kind!r}")

    def undo(self) -> None:
        if self.victim >= 0:
            self.stack.services[self.victim].start()
