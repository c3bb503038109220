"""Schema-driven fuzz of every route of /openapi.json against a live service with a
serving endpoint: no 5xx, every error has the documented shape, and a normal task still
succeeds afterwards. Longer in the soak run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import reliability_kit as kit

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

EXAMPLES_PER_OPERATION = kit.scale(6, 60)
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _documented_501(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """Operations whose schema says the service may not do them (no message broker):
    their 501 ``NOT_IMPLEMENTED`` is an answer, not a fault."""
    return {(method.upper(), path) for path, item in spec["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "501" in operation.get("responses", {})}


def test_fuzz_every_route_then_serve(tmp_path: Path) -> None:
    with kit.live_stack(tmp_path, env={"FARCALL_SERVICE_MAX_CLAIM_WAIT": "0.05"}) as stack:
        endpoint = stack.endpoint("fuzzed")
        endpoint.start()
        api = stack.api()
        fn = kit.register(api, kit.plus_one)
        schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
        may_not = _documented_501(schema.raw_schema)
        assert ("POST", "/v3/endpoints") in may_not  # an official endpoint, without a broker
        operations = [result.ok() for result in schema.get_all_operations()]
        failures: list[str] = []
        calls = 0
        for operation in operations:
            if operation.path.endswith("/claim"):
                continue  # a claim under a new session would requeue the endpoint's tasks

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), derandomize=not kit.SOAK)
            @given(case=operation.as_strategy())
            def check(case) -> None:
                nonlocal calls
                calls += 1
                answer = case.call(base_url=stack.url, timeout=30,
                                   headers={"Authorization": f"Bearer {stack.token}"})
                where = f"{case.method} {case.formatted_path}"
                if (answer.status_code == 501 and (case.method.upper(), case.path) in may_not
                        and answer.json().get("code") == "NOT_IMPLEMENTED"):
                    return
                if answer.status_code >= 500:
                    failures.append(f"{where}: {answer.status_code} {answer.text[:300]}")
                elif answer.status_code >= 400:
                    body = answer.json()
                    if set(body) != {"code", "message"} or not CODE_RE.match(body["code"]):
                        failures.append(f"{where}: bad error body {body}")

            check()
        kit.record("route fuzz", fuzz_cases=calls, server_errors=len(failures))
        assert not failures, "\n".join(failures[:20])
        assert calls >= 5 * len(operations) // 2
        # A fuzzed lock or delete may have hit the endpoint: a fresh one must still serve.
        fresh = stack.endpoint("after-fuzz")
        fresh.start()
        kit.assert_still_serving(api, fresh.endpoint_id, fn)
        api.close()
