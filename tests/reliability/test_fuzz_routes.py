"""Schema-driven fuzz of every route of /openapi.json against a live service with a
serving endpoint: no 5xx, every error has the documented shape, and a normal task still
succeeds afterwards. Longer in the soak run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import reliability_kit as kit

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

EXAMPLES_PER_OPERATION = kit.scale(6, 60)
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
NOT_IMPLEMENTED = {"/v2/get_amqp_result_connection_url"}


def test_fuzz_every_route_then_serve(tmp_path: Path) -> None:
    with kit.live_stack(tmp_path, env={"FARCALL_SERVICE_MAX_CLAIM_WAIT": "0.05"}) as stack:
        endpoint = stack.endpoint("fuzzed")
        endpoint.start()
        api = stack.api()
        fn = kit.register(api, kit.plus_one)
        schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
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
                if answer.status_code == 501 and case.path in NOT_IMPLEMENTED:
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
