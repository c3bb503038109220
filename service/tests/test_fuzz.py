"""Fuzz every route of ``/openapi.json`` against a running service: no answer is a 5xx.

Bounded: a handful of generated requests per operation, a few hundred in all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from farcall_testkit.service import ServiceProcess, admin  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

EXAMPLES_PER_OPERATION = 10
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
#: Routes documented to answer 501 without a message broker: the official Executor's
#: result queues, and the official endpoint's registration (it needs AMQP queues).
NOT_IMPLEMENTED = {"/v2/get_amqp_result_connection_url", "/v3/endpoints",
                   "/v3/endpoints/{endpoint_id}", "/v2/endpoints"}


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    home: Path = tmp_path_factory.mktemp("fuzz")
    admin(home, "user", "add", "fuzzer")
    token = admin(home, "token", "create", "fuzzer")
    env = {"FARCALL_SERVICE_MAX_CLAIM_WAIT": "0.05", "FARCALL_SERVICE_RATE_LIMIT": "0",
           "FARCALL_SERVICE_LOG_LEVEL": "WARNING"}
    with ServiceProcess(home, env=env) as service:
        yield service.url, token


def test_no_server_errors(live_service: tuple[str, str]) -> None:
    url, token = live_service
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    calls: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case) -> None:
            response = case.call(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            where = f"{case.method} {case.formatted_path}"
            calls.append(where)
            if response.status_code == 501 and case.path in NOT_IMPLEMENTED:
                return
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400:
                body = response.json()
                if set(body) != {"code", "message"} or not CODE_RE.match(body["code"]):
                    failures.append(f"{where}: bad error body {body}")

        check()
    assert not failures, "\n".join(failures[:20])
    assert 100 <= len(calls) <= 600
