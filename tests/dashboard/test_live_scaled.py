"""A dashboard page served by one service process hears of results recorded by
another: its events come through the broker (PostgreSQL + RabbitMQ), not memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from farcall.serialize import Serializer
from farcall_testkit.scaled import scaled_stack
from farcall_testkit.service import payload


def test_a_page_on_one_process_hears_results_recorded_by_another(
        tmp_path: Path, postgresql: Any, rabbitmq: Any) -> None:
    with scaled_stack(tmp_path, postgresql, rabbitmq, processes=2) as stack:
        page = requests.get(f"{stack.url_of(0)}/dashboard/events", stream=True,
                            timeout=(10, 60), cookies={"farcall_session": stack.token})
        try:
            assert page.status_code == 200
            lines = (line for line in page.iter_lines(decode_unicode=True)
                     if line and not line.startswith(":"))
            assert next(lines).startswith("retry:")
            other = stack.api(1)
            ep = other.call("POST", "/v3/endpoints", json={"endpoint_name": "far"})["endpoint_id"]
            fn = other.call("POST", "/v3/functions", json={
                "function_name": "square", "function_code": "def square(x):\n    return x * x\n",
                "serialized": False})["function_uuid"]
            other.call("POST", f"/v3/endpoints/{ep}/submit",
                       json={"tasks": {fn: [payload(3)] * 4}})
            serve = f"/farcall/v1/endpoints/{ep}"
            claimed = other.call("POST", f"{serve}/claim",
                                 json={"session": "s", "max_tasks": 4, "wait": 0})["tasks"]
            result = Serializer().serialize(9)
            other.call("POST", f"{serve}/results", json={"session": "s", "results": [
                {"task_id": t["task_id"], "status": "success", "result": result}
                for t in claimed]})
            assert next(lines) == "event: changed"
            assert next(lines).startswith('data: {"wakeups": ')
        finally:
            page.close()
