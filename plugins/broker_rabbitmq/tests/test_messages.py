"""Result messages are what the official SDK's messagepack loads: checked by
``globus_compute_common.messagepack.unpack`` itself, in .venv-compat."""

from __future__ import annotations

import base64
import json
import subprocess

from farcall_broker_rabbitmq.messages import cancel_message, result_message
from farcall_service.storage.interface import Task

UNPACK = """
import base64, json, sys
from globus_compute_common import messagepack
out = []
for line in sys.stdin:
    result = messagepack.unpack(base64.b64decode(line))
    out.append({"task_id": str(result.task_id), "data": result.data,
                "details": result.details, "is_error": result.is_error,
                "error": result.error_details.model_dump() if result.error_details else None})
print(json.dumps(out))
"""

TRACEBACK = ("Traceback (most recent call last):\n  File \"<string>\", line 2, in f\n"
             "ZeroDivisionError: division by zero\n")


def test_the_official_messagepack_loads_results_and_failures(compat_python: str) -> None:
    tasks = [
        Task("3f1c3b8e-8f43-4a57-9d2e-6a0b5c1d2e3f", "owner", "f", "ep", "g", "success", 1.0,
             result="00\nresult-bytes", details={"os": "linux", "python_version": "3.11"},
             completion_t=2.0),
        Task("9a2b7c6d-1e0f-4a3b-8c5d-7e6f5a4b3c2d", "owner", "f", "ep", "g", "failed", 1.0,
             exception=TRACEBACK, completion_t=2.0),
        Task("0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "owner", "f", "ep", "g", "failed", 1.0),
    ]
    lines = "".join(base64.b64encode(result_message(t)).decode() + "\n" for t in tasks)
    loaded = json.loads(subprocess.run(
        [compat_python, "-c", UNPACK], input=lines, capture_output=True, text=True,
        check=True, timeout=120).stdout)
    success, failure, bare = loaded
    assert success == {"task_id": tasks[0].id, "data": "00\nresult-bytes",
                       "details": {"os": "linux", "python_version": "3.11"},
                       "is_error": False, "error": None}
    assert failure["is_error"] and failure["data"] == TRACEBACK
    assert failure["error"] == {"code": "RemoteExecutionError",
                                "user_message": "ZeroDivisionError: division by zero"}
    assert bare["is_error"] and bare["data"] == bare["error"]["user_message"]


UNPACK_CANCEL = """
import base64, json, sys
from globus_compute_common import messagepack
message = messagepack.unpack(base64.b64decode(sys.stdin.read()))
print(json.dumps({"type": type(message).__name__, "task_id": str(message.task_id)}))
"""


def test_a_cancelled_task_s_result_is_an_error_saying_so(compat_python: str) -> None:
    reason = "TaskCancelled: the task was cancelled by alice at 2026-12-06T20:00:00Z"
    task = Task("5d1c3b8e-8f43-4a57-9d2e-6a0b5c1d2e3f", "owner", "f", "ep", "g", "cancelled",
                1.0, exception=reason, completion_t=2.0)
    line = base64.b64encode(result_message(task)).decode() + "\n"
    (loaded,) = json.loads(subprocess.run(
        [compat_python, "-c", UNPACK], input=line, capture_output=True, text=True,
        check=True, timeout=120).stdout)
    assert loaded["is_error"] and loaded["data"] == reason
    assert loaded["error"] == {"code": "RemoteExecutionError", "user_message": reason}


def test_a_task_cancel_message_is_the_official_task_cancel(compat_python: str) -> None:
    task_id = "6e1c3b8e-8f43-4a57-9d2e-6a0b5c1d2e3f"
    loaded = json.loads(subprocess.run(
        [compat_python, "-c", UNPACK_CANCEL], input=base64.b64encode(cancel_message(task_id)),
        capture_output=True, check=True, timeout=120).stdout)
    assert loaded == {"type": "TaskCancel", "task_id": task_id}


def test_a_result_kept_as_a_blob_reaches_the_official_executor_as_max_result_size_exceeded(
        compat_python: str) -> None:
    from farcall.blob_refs import BlobReference

    task = Task("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", "owner", "f", "ep", "g", "success",
                1.0, result=BlobReference("0123456789abcdef0123456789abcdef", 52428800).text(),
                completion_t=2.0)
    line = base64.b64encode(result_message(task)).decode() + "\n"
    [loaded] = json.loads(subprocess.run(
        [compat_python, "-c", UNPACK], input=line, capture_output=True, text=True,
        check=True, timeout=120).stdout)
    assert loaded["is_error"]
    assert loaded["error"]["code"] == "MaxResultSizeExceeded"
    assert loaded["data"].startswith("MaxResultSizeExceeded: Task result of 52428800B ")
    assert f"GET /v2/tasks/{task.id}" in loaded["data"]
