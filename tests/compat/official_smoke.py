"""The checks of the official globus-compute repository's smoke tests (its
``smoke_tests/tests``: ``test_version.py``, ``test_running_functions.py``,
``test_s3_indirect.py``), made with the unmodified 4.19 SDK against a farcall service;
run by the interpreter of .venv-compat, never imported by the tests.

Usage: ``official_smoke.py URL TOKEN ENDPOINT_ID``. Prints one JSON line mapping each
smoke test's name to ``"passed"`` or ``"failed: why"``, and ``"environment warnings"``
to the SDK's environment-difference warnings seen meanwhile.

The smoke tests' own fixtures are adapted as their ``local`` configuration does for a
service of one's own: the Client is pointed at the service and given a token (instead
of client credentials from Globus Auth), the endpoint is the one ``farcall dev``
serves, and the "pre-registered public hello function" is registered here first (their
``COMPUTE_LOCAL_KNOWN_FUNCTION_ID``). Their version checks call ``GET /version`` with no
credentials; farcall asks every caller who it is, so the token goes with them.
"""

import concurrent.futures
import json
import sys
import time
import traceback
import warnings

import globus_sdk
import requests
from globus_compute_sdk.sdk import client as client_module
from packaging.version import Version

url, token, endpoint_id = sys.argv[1:4]
client_module.get_web_service_url = lambda *_args, **_kwargs: url

from globus_compute_sdk import Client, Executor  # noqa: E402
from globus_compute_sdk.errors import TaskExecutionFailed, TaskPending  # noqa: E402
from globus_compute_sdk.serialize import DillCodeSource  # noqa: E402

#: The smoke tests' minimum API version for every deployment they know.
API_MIN_VERSION = "0.3.5"
#: The version from which their Executor test runs rather than skips.
EXECUTOR_MIN_VERSION = "1.0.5"
SIZES = (200, 2000, 20000, 200000)

gcc = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token),
             code_serialization_strategy=DillCodeSource())
auth = {"Authorization": f"Bearer {token}"}


def say_hello():
    return "Hello World!"


def double(x):
    return x * 2


def ohai():
    import time

    time.sleep(5)
    return "ohai"


def large_result_producer(size):
    return bytearray(size)


def large_arg_consumer(data):
    return len(data)


hello_id = gcc.register_function(say_hello)


def submit_and_get(func, args=()):
    """Their ``submit_function_and_get_result``: run, then read the task until done."""
    func_id = gcc.register_function(func) if callable(func) else func
    task_id = gcc.run(*args, endpoint_id=endpoint_id, function_id=func_id)
    deadline = time.monotonic() + 60
    while True:
        response = gcc.get_task(task_id)  # raises TaskExecutionFailed for a failed task
        if response.get("pending") is False:
            return response.get("result")
        assert time.monotonic() < deadline, "the task did not finish"
        time.sleep(0.2)


def served_version():
    answer = requests.get(f"{url}/v2/version", headers=auth, timeout=30)
    assert answer.status_code == 200, answer.status_code
    return Version(answer.json())


# -- test_version.py ------------------------------------------------------------------


def test_web_service():
    assert served_version() >= Version(API_MIN_VERSION)


def test_simple_function():
    assert gcc.register_function(say_hello) is not None


def test_ep_status():
    assert gcc.get_endpoint_status(endpoint_id)["status"] == "online"


# -- test_running_functions.py ----------------------------------------------------------


def test_run_pre_registered_function():
    assert submit_and_get(hello_id) == "Hello World!"


def test_batch():
    fn = gcc.register_function(double)
    batch = gcc.create_batch()
    for x in range(10):
        batch.add(fn, args=(x,))
    task_ids = gcc.batch_run(endpoint_id, batch)["tasks"][fn]
    deadline = time.monotonic() + 60
    while True:
        results = gcc.get_batch_result(task_ids)
        if all(not r["pending"] for r in results.values()):
            break
        assert time.monotonic() < deadline, results
        time.sleep(0.2)
    assert sum(r["result"] for r in results.values()) == 2 * sum(range(10))


def test_wait_on_new_hello_world_func():
    task_id = gcc.run(endpoint_id=endpoint_id, function_id=gcc.register_function(ohai))
    deadline = time.monotonic() + 30
    while True:
        try:
            result = gcc.get_result(task_id)
            break
        except TaskPending:
            assert time.monotonic() < deadline, "no result within 30 s"
            time.sleep(0.5)
    assert result == "ohai"


def test_executor():
    assert served_version() >= Version(EXECUTOR_MIN_VERSION)
    with Executor(endpoint_id=endpoint_id, client=gcc) as gce:
        for _ in range(2):  # an Executor used twice
            futures = [gce.submit_to_registered_function(hello_id) for _ in range(10)]
            done = [f.result() for f in concurrent.futures.as_completed(futures, timeout=30)]
            assert done == ["Hello World!"] * 10, done
        reloaded = list(gce.reload_tasks())
        assert len(reloaded) == 20, len(reloaded)
        done = [f.result() for f in concurrent.futures.as_completed(reloaded, timeout=30)]
        assert done == ["Hello World!"] * 20, done


# -- test_s3_indirect.py ----------------------------------------------------------------


def allowed_result_size(size):
    def check():
        assert len(submit_and_get(large_result_producer, (size,))) == size
    return check


def test_result_size_too_large():
    try:
        submit_and_get(large_result_producer, (11 * 1024 * 1024,))
    except TaskExecutionFailed:
        return
    raise AssertionError("an 11 MiB result did not fail")


def allowed_arg_size(size):
    def check():
        assert submit_and_get(large_arg_consumer, (bytearray(size),)) == size
    return check


CHECKS = {
    "test_version.py::test_web_service": test_web_service,
    "test_version.py::test_simple_function": test_simple_function,
    "test_version.py::test_ep_status": test_ep_status,
    "test_running_functions.py::test_run_pre_registered_function":
        test_run_pre_registered_function,
    "test_running_functions.py::test_batch": test_batch,
    "test_running_functions.py::test_wait_on_new_hello_world_func":
        test_wait_on_new_hello_world_func,
    "test_running_functions.py::test_executor": test_executor,
    **{f"test_s3_indirect.py::test_allowed_result_sizes[{n}]": allowed_result_size(n)
       for n in SIZES},
    "test_s3_indirect.py::test_result_size_too_large": test_result_size_too_large,
    **{f"test_s3_indirect.py::test_allowed_arg_sizes[{n}]": allowed_arg_size(n)
       for n in SIZES},
}

outcomes = {}
with warnings.catch_warnings(record=True) as seen:
    # The SDK's environment check runs on every result (the Executor's, from AMQP,
    # too): the endpoint runs the same Python and dill, so it must stay silent.
    warnings.simplefilter("always")
    for name, check in CHECKS.items():
        try:
            check()
            outcomes[name] = "passed"
        except Exception:
            outcomes[name] = "failed: " + traceback.format_exc(limit=3)
outcomes["environment warnings"] = [str(w.message) for w in seen
                                    if "Environment differences" in str(w.message)]
print(json.dumps(outcomes), flush=True)
