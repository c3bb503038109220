"""Faults in the middle of a batch submitted through the proxy in front of three
processes: one process SIGKILLed, the endpoint SIGKILLed (its claimed tasks come back
after the requeue timeout), every broker connection closed, every database backend
terminated. Each time: no task lost, none recorded twice, every result arrives, and
the figures are printed (tasks, lost, recorded twice, requests retried, seconds).

Tasks return a fresh random token, so a result recorded twice would change what the
database holds; ``OutcomeWatch`` looks for any such change while the batch runs.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import scale_kit as kit
from farcall import Client
from farcall_testkit.scaled import TERMINAL, Ledger, OutcomeWatch, ScaledStack

TASKS = kit.scale(1000, 5000)
CHUNK = 50
#: Submitting threads, each with connections of its own: requests are in flight on
#: every process when one dies.
SUBMITTERS = 3
FAULTS = ("service", "endpoint", "broker", "database")


def stamp(i, log):
    import time
    import uuid

    with open(log, "a") as handle:  # one short append per execution
        handle.write(f"{i}\n")
    time.sleep(0.01)  # a backlog builds: the fault finds tasks claimed and running
    return i, uuid.uuid4().hex


@pytest.mark.parametrize("kind", FAULTS)
def test_a_fault_in_the_middle_of_a_batch_loses_nothing(scaled: ScaledStack, kind: str) -> None:
    log = scaled.home / f"executions-{kind}.log"
    endpoint = scaled.endpoint(f"crash-{kind}", max_batch=100, prefetch=50)
    endpoint.start()
    calls = kit.Retrying(scaled.api())
    callers = [calls]  # one per submitting thread, with its own connections
    mine = threading.local()
    fn = kit.register(calls.api, stamp)
    ledger = Ledger(scaled.db_url)
    fault = kit.Fault(scaled, endpoint, kind)
    before = scaled.proxy.snapshot()
    watch = OutcomeWatch(ledger)
    watch.start()
    accepted: dict[str, int] = {}
    began = time.monotonic()
    midway = threading.Event()
    failed: list[BaseException] = []
    injector = threading.Thread(target=_guarded(lambda: midway.wait(120) and fault.inject(),
                                                failed))
    injector.start()
    lock = threading.Lock()

    def submit(chunk: range) -> None:
        caller = getattr(mine, "caller", None)
        if caller is None:
            caller = mine.caller = kit.Retrying(scaled.api())
            with lock:
                callers.append(caller)
        ids = caller.submit(endpoint.endpoint_id, fn, [(i, str(log)) for i in chunk])
        with lock:
            accepted.update(zip(ids, chunk, strict=True))
            if len(accepted) >= TASKS * 2 // 5:
                midway.set()  # the fault lands while the rest is being submitted

    chunks = [range(start, min(start + CHUNK, TASKS)) for start in range(0, TASKS, CHUNK)]
    try:
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(submit, chunks))
        injector.join(120)
        assert not failed, failed
        try:
            kit.wait_for(lambda: ledger.fetch(
                "SELECT count(*) FROM tasks WHERE function_id = :f "
                "AND status NOT IN ('success', 'failed')", f=fn)[0][0] == 0,
                kit.scale(180, 900), "every task ending")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_unended(ledger, fn, endpoint.endpoint_id)}") from None
    finally:
        watch.stop()
        fault.undo()
    seconds = time.monotonic() - began

    ids = _ids_of(ledger, fn)
    rows = {t: r for t, r in ledger.tasks().items() if t in ids}
    lost = [t for t in accepted if t not in rows or rows[t][0] not in TERMINAL]
    assert not lost, f"{len(lost)} accepted tasks lost"
    assert not [t for t, r in rows.items() if r[0] != "success"], "a task failed"
    for task_id, number in accepted.items():
        value, _token = calls.api.serializer.deserialize(rows[task_id][1])
        assert value == number, (task_id, value, number)
    assert not watch.changes, f"results recorded twice: {watch.changes[:5]}"

    # Every result arrives at a client through the proxy, as recorded.
    waiter = Client(scaled.url, token=scaled.token)
    entries = waiter.wait(list(accepted), timeout=120, progress=False)
    assert all(entries[t]["result"][0] == n for t, n in accepted.items())

    # Recorded once: a conflicting late report is acknowledged and changes nothing.
    endpoint.stop()
    resend = [{"task_id": t, "status": "success", "result": calls.api.serializer.serialize(-1)}
              for t in accepted]
    answer = calls.call("POST", f"/farcall/v1/endpoints/{endpoint.endpoint_id}/results",
                        json={"session": "late", "results": resend})
    assert sorted(answer["acknowledged"]) == sorted(accepted)
    assert {t: r for t, r in ledger.tasks().items() if t in rows} == rows

    executions = log.read_text().split()
    causes = sum((c.causes for c in callers), collections.Counter[str]())
    after = scaled.proxy.snapshot()
    proxy_retried = sum(after.get(k, 0) - before.get(k, 0) for k in ("cut", "bad_gateway"))
    kit.record(f"crash: {kind}", tasks=len(accepted), orphans=len(set(rows) - set(accepted)),
               lost=len(lost), recorded_twice=len(watch.changes),
               executions=len(executions), re_executions=len(executions) - len(rows),
               requests_retried=sum(c.retries for c in callers),
               **{f"retried_{cause}": n for cause, n in sorted(causes.items())},
               proxy_cut_or_502=proxy_retried,
               seconds=seconds, **fault.detail)


def _unended(ledger: Ledger, fn: str, endpoint_id: str) -> str:
    """Where the tasks that did not end are: how many per status and holding session,
    and the endpoint's session now."""
    held = ledger.fetch("SELECT status, claim_session, count(*) FROM tasks WHERE function_id = :f "
                        "AND status NOT IN ('success', 'failed') GROUP BY status, claim_session",
                        f=fn)
    (session,) = ledger.fetch("SELECT session_id FROM endpoints WHERE id = :e", e=endpoint_id)[0]
    return f"unended {[tuple(row) for row in held]}; the endpoint's session is {session}"


def _ids_of(ledger: Ledger, fn: str) -> set[str]:
    return {str(t) for (t,) in ledger.fetch("SELECT id FROM tasks WHERE function_id = :f",
                                            f=fn)}


def _guarded(action: Callable[[], object], failed: list[BaseException]) -> Callable[[], None]:
    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported by the test
            failed.append(exc)

    return run
