"""What the endpoint survives: being killed, its workers dying, the service going away."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from farcall_endpoint.spool import spooled_count
from farcall_testkit.endpoint import start_service
from farcall_testkit.waiting import wait_for


def slow_identity(i):
    import time

    time.sleep(0.002)
    return i


def count_done(api, ids) -> int:
    docs = api.documents(ids)
    return sum(1 for d in docs.values() if d["status"] in ("success", "failed"))


def test_sigkill_mid_batch_then_restart(api, make_endpoint) -> None:
    endpoint = make_endpoint("crashy", engine={"type": "process", "workers": 2})
    endpoint.start()
    fn = api.register_function(slow_identity)
    ids = api.submit(endpoint.endpoint_id, fn, [(i,) for i in range(2000)])
    wait_for(lambda: count_done(api, ids) >= 200, what="200 results")
    workers = endpoint.worker_pids()
    assert workers
    endpoint.kill_main()  # SIGKILL the endpoint process alone, as a crash would
    assert count_done(api, ids) < 2000, "the batch finished before the endpoint was killed"
    # Its workers notice the endpoint died and exit: nothing is left behind.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 30,
             "workers exiting after the endpoint died")

    endpoint.start()  # same directory: same id, and the spool of unsent results
    docs = api.wait(ids, timeout=120)
    assert [d["status"] for d in docs.values()].count("success") == 2000
    assert [api.result(docs[t]) for t in ids] == list(range(2000))
    endpoint.stop()
    assert spooled_count(endpoint.config.directory) == 0


def sleeper(path, seconds):
    import os
    import time

    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


def exiter(code):
    import os

    os._exit(code)


def quick(x):
    return x + 1


def test_worker_deaths_fail_only_their_task(api, make_endpoint, tmp_path: Path) -> None:
    endpoint = make_endpoint("sturdy", engine={"type": "process", "workers": 2})
    endpoint.start()
    f_sleep, f_exit, f_quick = (api.register_function(f) for f in (sleeper, exiter, quick))
    marker = tmp_path / "worker.pid"
    [victim] = api.submit(endpoint.endpoint_id, f_sleep, [(str(marker), 60)])
    pid = int(wait_for(lambda: marker.exists() and marker.read_text(), what="the task running"))
    others = api.submit(endpoint.endpoint_id, f_quick, [(i,) for i in range(20)])
    os.kill(pid, signal.SIGKILL)
    [exited] = api.submit(endpoint.endpoint_id, f_exit, [(3,)])
    more = api.submit(endpoint.endpoint_id, f_quick, [(i,) for i in range(20, 40)])

    docs = api.wait([victim, exited, *others, *more])
    assert docs[victim]["status"] == "failed"
    assert "worker process running this task died (killed by SIGKILL)" in docs[victim]["exception"]
    assert docs[exited]["status"] == "failed"
    assert "died (exit code 3)" in docs[exited]["exception"]
    assert [api.result(docs[t]) for t in others + more] == [i + 1 for i in range(40)]
    status = api.status(endpoint.endpoint_id)
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == 2
    assert len(wait_for(lambda: len(endpoint.worker_pids()) == 2 and endpoint.worker_pids(),
                        what="replacement workers")) == 2


@pytest.mark.parametrize("outage", ["restart", "freeze"])
def test_service_outage_mid_batch(service, api, make_endpoint, outage: str) -> None:
    """Ten seconds without a service: stopped and restarted on the same port and
    database (connections refused), or frozen with SIGSTOP (requests hang)."""
    endpoint = make_endpoint("patient", engine={"type": "process", "workers": 2})
    endpoint.start()
    fn = api.register_function(slow_identity)
    ids = api.submit(endpoint.endpoint_id, fn, [(i,) for i in range(1500)])
    wait_for(lambda: count_done(api, ids) >= 100, what="100 results")
    assert count_done(api, ids) < 1500, "the batch finished before the outage"
    if outage == "restart":
        port = service.process.port
        service.process.stop()
        time.sleep(10)
        service.process = start_service(service.home, service.process.args, port=port)
    else:
        group = service.process.process.pid
        os.killpg(group, signal.SIGSTOP)
        try:
            time.sleep(10)
        finally:
            os.killpg(group, signal.SIGCONT)
    docs = api.wait(ids, timeout=120)
    assert [api.result(docs[t]) for t in ids] == list(range(1500))
    assert api.status(endpoint.endpoint_id)["status"] == "online"
    if outage == "restart":
        assert "reconnecting" in endpoint.log() or "will retry" in endpoint.log()


def test_offline_within_bound_after_kill(api, make_endpoint) -> None:
    """Documented bound: max(offline_timeout, claim_wait) after the endpoint dies."""
    endpoint = make_endpoint("mortal", engine={"type": "thread", "workers": 3})
    endpoint.start()
    status = wait_for(lambda: (s := api.status(endpoint.endpoint_id))["details"]["total_workers"]
                      and s, what="a heartbeat")
    assert status["status"] == "online"
    assert status["details"]["total_workers"] == 3
    assert status["details"]["idle_workers"] == 3
    endpoint.kill()
    killed = time.monotonic()
    bound = max(3.0, endpoint.config.claim_wait)  # the service's offline_timeout is 3 s here
    wait_for(lambda: api.status(endpoint.endpoint_id)["status"] == "offline", bound + 10,
             "offline")
    assert time.monotonic() - killed <= bound + 10


def record(path, i):
    """Note the run, then finish only once the test allows it (``path + ".go"``)."""
    import os
    import time

    with open(path, "a") as handle:
        handle.write(f"{i}\n")
    deadline = time.monotonic() + 60
    while not os.path.exists(path + ".go") and time.monotonic() < deadline:
        time.sleep(0.02)
    return i


def test_results_wait_on_disk_for_the_service(service, api, make_endpoint, tmp_path) -> None:
    """Finished while the service is down, then the endpoint is killed: the results are
    sent from disk at the next start, and no task runs twice."""
    endpoint = make_endpoint("keeper", engine={"type": "process", "workers": 2})
    endpoint.start()
    fn = api.register_function(record)
    log = tmp_path / "executions.txt"
    ids = api.submit(endpoint.endpoint_id, fn, [(str(log), i) for i in range(20)])
    wait_for(lambda: log.exists() and log.read_text(), what="the first execution")
    port = service.process.port
    service.process.stop()  # before any result could reach it: none has finished yet
    (tmp_path / "executions.txt.go").touch()
    wait_for(lambda: len(log.read_text().split()) == 20, what="all 20 executions")
    wait_for(lambda: spooled_count(endpoint.config.directory) == 20, 30, "20 spooled results")
    endpoint.kill()

    service.process = start_service(service.home, service.process.args, port=port)
    endpoint.start()
    docs = api.wait(ids)
    assert [api.result(docs[t]) for t in ids] == list(range(20))
    assert sorted(map(int, log.read_text().split())) == list(range(20))  # each ran once
    wait_for(lambda: spooled_count(endpoint.config.directory) == 0, 30, "an empty spool")
