"""Results are data, not code, from endpoints the caller does not own.

Two users of a real service: mallory owns a public endpoint that answers every task with
a forged pickle whose reading writes a file; alice submits to it with the farcall Client.
Alice's Client asks that endpoint for msgpack or JSON, refuses the forged result without reading it,
and leaves its forged exception data unread; with ``trusted_endpoints`` it reads them and
the file appears (so these tests can fail). Alice's own endpoint still sends dill.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_endpoint")

from farcall import Client, Executor, TaskExecutionFailed  # noqa: E402
from farcall.errors import FarcallError  # noqa: E402
from farcall.sdk.errors import UntrustedResultError  # noqa: E402
from farcall_testkit.forged import ForgingWorker  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402

#: What a Client asks of an endpoint it does not trust: msgpack, then JSON as the official
#: endpoint spells it.
ASKED = ["mp", "globus_compute_sdk.serialize.JSONData"]


def identity(x):
    return x


def as_complex(x):
    return complex(x, 1)  # neither msgpack nor JSON carries it


def as_set(x):
    return {x}


class HonestWorker(MiniWorker):
    """Runs tasks with the endpoint's own execution code, as ``farcall endpoint`` does."""

    def __init__(self, *args: Any, endpoint_id: str, **kwargs: Any) -> None:
        super().__init__(*args, endpoint_id=endpoint_id, **kwargs)
        self.endpoint_id = endpoint_id
        self.asked: dict[str, Any] = {}

    def _execute(self, task: dict[str, Any]) -> dict[str, Any]:
        from farcall_endpoint.execution import run_task

        self.asked[task["task_id"]] = task.get("result_serializers")
        return run_task({"task_id": task["task_id"], "payload": task["payload"],
                         "result_serializers": task.get("result_serializers")},
                        {"endpoint_id": self.endpoint_id})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home: Path = tmp_path_factory.mktemp("trust-home")
    with ServiceProcess(home) as svc:
        svc.tokens = {}  # type: ignore[attr-defined]
        for name in ("alice", "mallory"):
            admin(home, "user", "add", name)
            svc.tokens[name] = admin(home, "token", "create", name).splitlines()[-1].strip()  # type: ignore[attr-defined]
        yield svc


def client(service: ServiceProcess, user: str, **options: Any) -> Client:
    return Client(service.url, token=service.tokens[user], **options)  # type: ignore[attr-defined]


def public_endpoint(service: ServiceProcess, name: str) -> str:
    mallory = client(service, "mallory")
    answer = mallory.transport.request("POST", "/v3/endpoints",
                                       json={"endpoint_name": name, "public": True})
    return str(answer["endpoint_id"])


@pytest.fixture
def forging(service: ServiceProcess, tmp_path: Path) -> Iterator[Any]:
    """Start a forging worker on a new public endpoint of mallory's."""
    workers: list[ForgingWorker] = []

    def start(**options: Any) -> tuple[str, ForgingWorker]:
        endpoint_id = public_endpoint(service, "forger")
        worker = ForgingWorker(service.url, service.tokens["mallory"], endpoint_id,  # type: ignore[attr-defined]
                               tmp_path / "pwned", wait=1.0, **options)
        worker.start()
        workers.append(worker)
        return endpoint_id, worker

    yield start
    for worker in workers:
        worker.stop()


def test_forged_result_is_refused_unread(service: ServiceProcess, forging: Any,
                                         tmp_path: Path) -> None:
    endpoint_id, worker = forging()
    alice = client(service, "alice")
    fn = alice.register_function(identity)
    task_id = alice.run(3, endpoint_id=endpoint_id, function_id=fn)
    alice.wait([task_id], timeout=60, progress=False)
    with pytest.raises(UntrustedResultError) as refused:
        alice.get_result(task_id)
    assert not (tmp_path / "pwned").exists()
    message = str(refused.value)
    assert endpoint_id in message and "DillDataBase64 (00)" in message
    assert f'trusted_endpoints=["{endpoint_id}"]' in message
    assert worker.asked[task_id] == ASKED  # alice asked for no-code strategies only
    entry = alice.get_batch_result([task_id])[task_id]  # a failed entry, not a raise
    assert entry["status"] == "failed" and isinstance(entry["exception"], UntrustedResultError)
    assert not (tmp_path / "pwned").exists()

    # Trusting the endpoint reads it as before: the file is written.
    trusting = client(service, "alice", trusted_endpoints=[endpoint_id])
    trusting.get_result(task_id)
    assert (tmp_path / "pwned").exists()


@pytest.mark.parametrize("strategy", ["01", "02", "c0", "13"])
def test_other_code_strategies_and_nesting_are_refused(service: ServiceProcess, forging: Any,
                                                        tmp_path: Path, strategy: str) -> None:
    endpoint_id, _worker = forging(strategy=strategy)
    alice = client(service, "alice")
    task_id = alice.run(3, endpoint_id=endpoint_id, function_id=alice.register_function(identity))
    alice.wait([task_id], timeout=60, progress=False)
    with pytest.raises(FarcallError):
        alice.get_result(task_id)
    assert not (tmp_path / "pwned").exists()
    with contextlib.suppress(Exception):  # whatever the forged object does next
        client(service, "alice", trusted_endpoints="*").get_result(task_id)
    assert (tmp_path / "pwned").exists()


def test_forged_exception_data_is_not_read(service: ServiceProcess, forging: Any,
                                           tmp_path: Path) -> None:
    endpoint_id, _worker = forging(mode="exception")
    alice = client(service, "alice")
    task_id = alice.run(3, endpoint_id=endpoint_id, function_id=alice.register_function(identity))
    alice.wait([task_id], timeout=60, progress=False)
    with pytest.raises(TaskExecutionFailed) as failed:
        alice.get_result(task_id)
    assert "ValueError: forged" in str(failed.value)  # the remote traceback text
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(TaskExecutionFailed):
        client(service, "alice", trusted_endpoints=[endpoint_id]).get_result(task_id)
    assert (tmp_path / "pwned").exists()


def test_executor_refuses_forged_results(service: ServiceProcess, forging: Any,
                                         tmp_path: Path) -> None:
    endpoint_id, worker = forging()
    with Executor(endpoint_id, client=client(service, "alice")) as executor:
        future = executor.submit(identity, 3)
        with pytest.raises(UntrustedResultError):
            future.result(timeout=60)
    assert not (tmp_path / "pwned").exists()
    assert list(worker.asked.values()) == [ASKED]


def test_public_endpoint_results_arrive_as_plain_data(service: ServiceProcess) -> None:
    """An honest endpoint of another user: plain data comes through as msgpack; a result
    only dill can carry fails there, saying how to trust the endpoint."""
    endpoint_id = public_endpoint(service, "honest")
    worker = HonestWorker(service.url, service.tokens["mallory"],  # type: ignore[attr-defined]
                          endpoint_id=endpoint_id, wait=1.0)
    worker.start()
    try:
        alice = client(service, "alice")
        ok = alice.run((1, "a"), endpoint_id=endpoint_id,
                       function_id=alice.register_function(identity))
        bad = alice.run(2, endpoint_id=endpoint_id,
                        function_id=alice.register_function(as_complex))
        alice.wait([ok, bad], timeout=60, progress=False)
        assert alice.get_result(ok) == (1, "a")  # msgpack: the tuple stays a tuple
        with pytest.raises(TaskExecutionFailed) as failed:
            alice.get_result(bad)
        text = str(failed.value)
        assert "could not be serialized with any requested strategy" in text
        assert f'Client(trusted_endpoints=["{endpoint_id}"])' in text

        trusting = client(service, "alice", trusted_endpoints=[endpoint_id])
        again = trusting.run(2, endpoint_id=endpoint_id,
                             function_id=trusting.register_function(as_complex))
        trusting.wait([again], timeout=60, progress=False)
        assert trusting.get_result(again) == 2 + 1j
        assert worker.asked[again] is None  # a trusted endpoint is asked for nothing
    finally:
        worker.stop()


def test_own_endpoint_results_still_use_dill(service: ServiceProcess) -> None:
    alice = client(service, "alice")
    endpoint_id = alice.transport.request("POST", "/v3/endpoints",
                                          json={"endpoint_name": "mine"})["endpoint_id"]
    assert alice.get_endpoint_metadata(endpoint_id)["is_owner"] is True
    worker = HonestWorker(service.url, service.tokens["alice"],  # type: ignore[attr-defined]
                          endpoint_id=endpoint_id, wait=1.0)
    worker.start()
    try:
        task_id = alice.run(5, endpoint_id=endpoint_id,
                            function_id=alice.register_function(as_set))
        alice.wait([task_id], timeout=60, progress=False)
        assert alice.get_result(task_id) == {5}
        assert worker.asked[task_id] is None
    finally:
        worker.stop()


def test_allowed_deserializer_types_widens_what_is_read(service: ServiceProcess,
                                                        forging: Any, tmp_path: Path) -> None:
    """The official option's spelling: naming dill reads dill from every endpoint."""
    endpoint_id, worker = forging()
    alice = client(service, "alice", allowed_deserializer_types=[
        "globus_compute_sdk.serialize.JSONData", "globus_compute_sdk.serialize.DillDataBase64"])
    task_id = alice.run(3, endpoint_id=endpoint_id, function_id=alice.register_function(identity))
    alice.wait([task_id], timeout=60, progress=False)
    assert worker.asked[task_id] == ["globus_compute_sdk.serialize.JSONData",
                                     "globus_compute_sdk.serialize.DillDataBase64"]
    alice.get_result(task_id)
    assert (tmp_path / "pwned").exists()
    with pytest.raises(FarcallError, match="allowed_deserializer_types is empty"):
        client(service, "alice", allowed_deserializer_types=[])
