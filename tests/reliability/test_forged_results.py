"""Forged results from a public endpoint: a live service, two users, three endpoints.

Mallory owns two public endpoints that answer every task with a forged pickle (as a
result, or as the exception data of a failure) whose reading writes a file, in every
code-capable strategy and hidden inside a combined payload, and one honest public
endpoint (a real ``farcall endpoint``). Alice submits to them with the Client, the
Executor and batch reads. Not one forged payload is read (the files stay unwritten);
honest JSON results arrive; a result only dill can carry fails saying how to trust the
endpoint; and a Client that trusts the forger does write the file, so the check can
fail. Figures: forged results sent, refused, code run.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import reliability_kit as kit
from farcall import Client, Executor, TaskExecutionFailed
from farcall.sdk.errors import UntrustedResultError
from farcall_testkit.endpoint import Api, EndpointProcess, create_user
from farcall_testkit.forged import ForgingWorker

STRATEGIES = ("00", "01", "02", "c0", "c1", "13")


def identity(x):
    return x


def as_complex(x):
    return complex(x, 1)  # neither msgpack nor JSON carries it


@dataclass
class World:
    stack: kit.Stack
    mallory: str  # her token
    targets: dict[str, Path]  # the file each forger's payloads would write, by mode
    forgers: dict[str, ForgingWorker]  # by mode: "result", "exception"
    honest: str  # a real endpoint's id

    def alice(self, **options: object) -> Client:
        return Client(self.stack.url, token=self.stack.token, **options)  # type: ignore[arg-type]

    def code_ran(self) -> int:
        return sum(path.exists() for path in self.targets.values())


def public_endpoint(url: str, token: str, name: str, endpoint_id: str | None = None) -> str:
    api = Api(url, token)
    try:
        body = {"endpoint_name": name, "public": True}
        if endpoint_id:
            api.call("PUT", f"/v3/endpoints/{endpoint_id}", json=body)
            return endpoint_id
        return str(api.call("POST", "/v3/endpoints", json=body)["endpoint_id"])
    finally:
        api.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("forged")
    with kit.live_stack(home) as stack:
        mallory = create_user(home, "mallory")
        targets = {mode: home / f"written-by-forged-{mode}" for mode in ("result", "exception")}
        forgers = {}
        for mode, target in targets.items():
            endpoint_id = public_endpoint(stack.url, mallory, f"forger-{mode}")
            forgers[mode] = ForgingWorker(stack.url, mallory, endpoint_id, target,
                                          strategy=STRATEGIES, mode=mode, wait=1.0)
            forgers[mode].start()
        honest = EndpointProcess(home, "honest", stack.url, mallory,
                                 engine={"type": "thread", "workers": 2}, **kit.FAST_ENDPOINT)
        stack.endpoints.append(honest)
        public_endpoint(stack.url, mallory, "honest", honest.endpoint_id)
        honest.start()
        try:
            yield World(stack, mallory, targets, forgers, honest.endpoint_id)
        finally:
            for forger in forgers.values():
                forger.stop()


def test_no_forged_payload_is_read(world: World) -> None:
    count = kit.scale(len(STRATEGIES) * 4, len(STRATEGIES) * 50)
    alice = world.alice()
    fn = alice.register_function(identity)
    refused = 0
    for mode, forger in world.forgers.items():
        batch = alice.create_batch()
        for n in range(count):
            batch.add(n, endpoint_id=forger.endpoint_id, function_id=fn)
        task_ids = alice.batch_run(batch)
        entries = alice.wait(task_ids, timeout=120, progress=False)
        expected = UntrustedResultError if mode == "result" else TaskExecutionFailed
        refused += sum(isinstance(e.get("exception"), expected) for e in entries.values())
        for task_id in task_ids[: len(STRATEGIES)]:  # one read of each strategy by itself
            with pytest.raises(expected):
                alice.get_result(task_id)
        no_code = ["mp", "globus_compute_sdk.serialize.JSONData"]  # msgpack, then JSON
        assert all(asked == no_code for asked in forger.asked.values()), forger.asked
    with Executor(world.forgers["result"].endpoint_id, client=alice) as executor:
        futures = [executor.submit(identity, n) for n in range(len(STRATEGIES))]
        for future in futures:
            with pytest.raises(UntrustedResultError):
                future.result(timeout=120)
            refused += 1
    code_ran = world.code_ran()
    kit.record("forged_results", forged=2 * count + len(STRATEGIES), refused=refused,
               code_ran=code_ran)
    assert refused == 2 * count + len(STRATEGIES)
    assert code_ran == 0

    # The same payloads, read by a Client that trusts the forgers: the code runs.
    trusting = world.alice(trusted_endpoints="*")
    for forger in world.forgers.values():
        batch = trusting.create_batch()
        batch.add(0, endpoint_id=forger.endpoint_id, function_id=fn)
        [task_id] = trusting.batch_run(batch)
        trusting.wait([task_id], timeout=120, progress=False)
        with contextlib.suppress(Exception):
            trusting.get_result(task_id)
    kit.record("forged_results", control_code_ran=world.code_ran())
    assert world.code_ran() == 2


def test_an_honest_public_endpoint_answers_in_plain_data(world: World) -> None:
    alice = world.alice()
    # As source text: the endpoint's workers cannot import this test module.
    plain, odd = (alice.register_source_code(inspect.getsource(fn), fn.__name__)
                  for fn in (identity, as_complex))
    batch = alice.create_batch()
    for n in range(kit.scale(20, 500)):
        batch.add({"n": n, "pair": (n, n)}, endpoint_id=world.honest, function_id=plain)
    batch.add(1, endpoint_id=world.honest, function_id=odd)
    *plain_ids, odd_id = alice.batch_run(batch)
    entries = alice.wait([*plain_ids, odd_id], timeout=120, progress=False)
    results = [entries[t].get("result", entries[t]) for t in plain_ids]
    assert results == [{"n": n, "pair": (n, n)} for n in range(len(plain_ids))]  # msgpack
    failure = entries[odd_id]["exception"]
    assert isinstance(failure, TaskExecutionFailed)
    assert f'Client(trusted_endpoints=["{world.honest}"])' in str(failure)
    kit.record("forged_results", honest_plain_results=len(plain_ids))
