"""farcall at scale against the embedded stack and Celery, in one run on one machine.

Three farcall stacks run side by side, each with a ``process`` endpoint of 2 workers:

* ``embedded``: ``farcall dev``'s stack (one service process on SQLite, the local broker);
* ``scaled-1`` and ``scaled-3``: 1 and 3 ``farcall server start`` processes on one
  PostgreSQL database and one RabbitMQ vhost (``--broker amqp://...``). The SDK talks to
  the first process and the endpoint to the last, so with 3 processes every task and
  every result crosses processes through the broker's wake-ups, as behind a balancer.

They take turns round by round (this machine's speed drifts by half over a minute at
times, and ratios of runs minutes apart moved with it). Measured on each: a batch of N
no-op tasks (one ``batch_run``, every result gathered), single ``run`` + ``wait`` round
trips (p50, p99), farcall's ``Executor`` with N futures, and on the scaled stacks the
**official** globus-compute-sdk 4.19 ``Executor`` (``FARCALL_COMPAT_PYTHON``) with N
futures, its results through the AMQP result queues. Then Celery 5 on the same RabbitMQ
(``peers/celery_bench.py``, ``FARCALL_PEERS_PYTHON``), with either result backend.

The run makes a scratch PostgreSQL database and RabbitMQ vhost per scaled stack and
removes them, and the RabbitMQ users the service made on them (the testkit's servers). Prints a
table with the targets of issue #19 and writes it as JSON. ``--quick``: a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from e2e import say, start_stack  # noqa: E402

POSTGRESQL = os.environ.get("FARCALL_BENCH_POSTGRESQL_URL",
                            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("FARCALL_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MANAGEMENT = os.environ.get("FARCALL_BENCH_RABBITMQ_MANAGEMENT_URL",
                            "http://guest:guest@127.0.0.1:15672")


def noop(x: Any) -> Any:
    """Defined here, in ``__main__``, so it travels by value: the endpoint has no e2e."""
    return x


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# -- scratch servers ---------------------------------------------------------------------


# -- the stacks --------------------------------------------------------------------------


@dataclass
class Side:
    """One stack under measurement: where the SDK and the endpoint talk to, its token."""

    name: str
    sdk_url: str
    token: str
    endpoint_id: str
    stop: Callable[[], None]
    client: Any = None
    function_id: str = ""
    figures: dict[str, list[float]] = field(default_factory=dict)

    def connect(self) -> None:
        from farcall import Client

        self.client = Client(self.sdk_url, token=self.token)
        self.function_id = self.client.register_function(noop)

    def add(self, key: str, value: float) -> None:
        self.figures.setdefault(key, []).append(value)


def embedded_side() -> Side:
    home = Path(tempfile.mkdtemp(prefix="farcall-bench-embedded-"))
    stack, token, endpoint_id = start_stack(home)

    def stop() -> None:
        stack.stop()
        shutil.rmtree(home, ignore_errors=True)

    assert endpoint_id is not None
    return Side("embedded", stack.base_url, token, endpoint_id, stop)


def scaled_side(processes: int, postgresql: Any, rabbitmq: Any | None,
                cleanup: list[Callable[[], None]]) -> Side:
    """``processes`` service processes (the testkit's ScaledStack, with the service's
    default settings), the SDK on the first, a 2-worker endpoint on the last. Not
    through the testkit's proxy: it runs in this process and would take the SDK's
    CPU; a deployment's proxy (nginx) is another program."""
    from farcall_testkit.scaled import ScaledStack

    db_url = postgresql.create_database()
    cleanup.append(lambda: postgresql.drop_database(db_url))
    broker = rabbitmq.create_vhost() if rabbitmq is not None else "local"
    if rabbitmq is not None:
        cleanup.append(lambda: rabbitmq.delete_vhost(broker))
    home = Path(tempfile.mkdtemp(prefix=f"farcall-bench-scaled{processes}-"))
    stack = ScaledStack(home, db_url, broker, processes=processes, args=(), user_name="bench")

    def stop() -> None:
        stack.close()
        shutil.rmtree(home, ignore_errors=True)

    try:
        stack.start()
        endpoint = stack.endpoint("bench", via=processes - 1, workers=2,
                                  heartbeat_period=2.0).start()
    except BaseException:
        stop()
        raise
    return Side(f"scaled-{processes}", stack.url_of(0), stack.token, endpoint.endpoint_id, stop)


# -- measurements ------------------------------------------------------------------------


def warm(side: Side) -> None:
    client = side.client
    batch = client.create_batch()
    for i in range(200):
        batch.add(i, endpoint_id=side.endpoint_id, function_id=side.function_id)
    client.wait(client.batch_run(batch), progress=False)
    # The first round trips after a batch are slower: measure the steady state.
    for i in range(20):
        client.wait([client.run(i, endpoint_id=side.endpoint_id,
                                function_id=side.function_id)], progress=False)


def round_trips(side: Side, count: int) -> None:
    client = side.client
    for i in range(count):
        start = time.perf_counter()
        task_id = client.run(i, endpoint_id=side.endpoint_id, function_id=side.function_id)
        client.wait([task_id], progress=False)
        side.add("latency", time.perf_counter() - start)


def batch(side: Side, n: int) -> None:
    client = side.client
    tasks = client.create_batch()
    for i in range(n):
        tasks.add(i, endpoint_id=side.endpoint_id, function_id=side.function_id)
    start = time.perf_counter()
    ids = client.batch_run(tasks)
    results = client.wait(ids, progress=False)
    side.add("batch_s", time.perf_counter() - start)
    wrong = [results[t] for t in ids if "result" not in results[t]]
    assert not wrong, f"{side.name}: {len(wrong)} tasks without a result: {wrong[0]}"
    assert [results[t]["result"] for t in ids] == list(range(n)), f"{side.name}: wrong results"


def farcall_executor(side: Side, n: int) -> None:
    from farcall import Executor

    with Executor(side.endpoint_id, client=side.client) as executor:
        start = time.perf_counter()
        futures = [executor.submit(noop, i) for i in range(n)]
        assert [f.result() for f in futures] == list(range(n)), f"{side.name}: wrong results"
        side.add("executor_s", time.perf_counter() - start)


OFFICIAL_EXECUTOR = textwrap.dedent('''
    import json, sys, time

    import globus_sdk
    from globus_compute_sdk.sdk import client as client_module

    url, token, endpoint_id, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client_module.get_web_service_url = lambda *_args, **_kwargs: url

    from globus_compute_sdk import Client, Executor

    def noop(x):
        return x

    client = Client(authorizer=globus_sdk.AccessTokenAuthorizer(token))
    with Executor(endpoint_id=endpoint_id, client=client) as executor:
        assert [f.result(timeout=120) for f in [executor.submit(noop, i) for i in range(50)]] \\
            == list(range(50))  # warm: registration, the result queue's connection
        start, cpu_start = time.perf_counter(), time.process_time()
        futures = [executor.submit(noop, i) for i in range(n)]
        values = [f.result(timeout=900) for f in futures]
        seconds = time.perf_counter() - start
    assert values == list(range(n)), "wrong results"
    print(json.dumps({"seconds": seconds, "cpu": time.process_time() - cpu_start}), flush=True)
''')


def official_executor(side: Side, n: int, python: str) -> None:
    done = subprocess.run([python, "-c", OFFICIAL_EXECUTOR, side.sdk_url, side.token,
                           side.endpoint_id, str(n)],
                          capture_output=True, text=True, timeout=1200)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        say(f"  {side.name}: the official Executor failed: {tail}")
        side.add("official_failed", 1)
        return
    measured = json.loads(lines[-1])
    side.add("official_s", measured["seconds"])
    side.add("official_cpu_s", measured["cpu"])


def summary(side: Side, n: int) -> dict[str, Any]:
    f = side.figures
    out: dict[str, Any] = {
        "throughput": n / statistics.median(f["batch_s"]),
        "p50_ms": percentile(f["latency"], 0.5) * 1e3,
        "p99_ms": percentile(f["latency"], 0.99) * 1e3,
        "executor_throughput": n / statistics.median(f["executor_s"]),
        # Each round's, beside the medians: they move with the machine's load.
        "throughput_by_round": [round(n / x) for x in f["batch_s"]],
    }
    if f.get("official_s"):
        out["official_executor_throughput"] = n / statistics.median(f["official_s"])
        # The official SDK's own CPU (all its threads) over the same futures: how much
        # of its time is the client's.
        out["official_client_cpu_share"] = (statistics.median(f["official_cpu_s"])
                                            / statistics.median(f["official_s"]))
    return out


# -- Celery ------------------------------------------------------------------------------

CELERY_LINE = re.compile(r"p50=([\d.]+)ms p95=([\d.]+)ms\s+throughput N=\d+ (\d+) tasks/s"
                         r"\s+p99=([\d.]+)ms")


def measure_celery(n: int, samples: int, backend: str) -> dict[str, float] | None:
    python = os.environ.get("FARCALL_PEERS_PYTHON")
    if not python:
        say("  Celery skipped: FARCALL_PEERS_PYTHON is not set (make bench sets it)")
        return None
    with tempfile.TemporaryDirectory(prefix="farcall-celery-") as cwd:
        try:
            done = subprocess.run(
                [python, str(HERE / "peers" / "celery_bench.py"), str(n),
                 "--samples", str(samples), "--backend", backend],
                capture_output=True, text=True, timeout=1200, cwd=cwd)
        except subprocess.TimeoutExpired:
            say(f"  Celery ({backend}) timed out")
            return None
    match = CELERY_LINE.search(done.stdout)
    if not match:
        say(f"  Celery ({backend}) failed: {done.stderr.strip().splitlines()[-3:]}")
        return None
    p50, p95, rate, p99 = match.groups()
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "throughput": float(rate)}


# -- the run -----------------------------------------------------------------------------


def missing_servers(celery: bool) -> list[str]:
    wanted = [("PostgreSQL", "127.0.0.1", 5432), ("RabbitMQ", "127.0.0.1", 5672),
              ("RabbitMQ's management API", "127.0.0.1", 15672)]
    if celery:
        wanted.append(("Redis (Celery's result backend)", "127.0.0.1", 6379))
    return [f"{what} on {host}:{port}" for what, host, port in wanted
            if not reachable(host, port)]


def measure(opts: argparse.Namespace, n: int, samples: int, rounds: int) -> dict[str, Any]:
    from farcall_testkit.servers import PostgreSQL, RabbitMQ

    compat = os.environ.get("FARCALL_COMPAT_PYTHON")
    postgresql = PostgreSQL(POSTGRESQL)
    rabbitmq = None if opts.local_broker else RabbitMQ(AMQP, MANAGEMENT)
    sides: list[Side] = []
    cleanup: list[Callable[[], None]] = []
    try:
        say("starting the embedded stack ...")
        sides.append(embedded_side())
        for processes in opts.processes:
            say(f"starting {processes} service process(es) on PostgreSQL + "
                f"{'the local broker' if rabbitmq is None else 'RabbitMQ'} ...")
            sides.append(scaled_side(processes, postgresql, rabbitmq, cleanup))
        for side in sides:
            side.connect()
            warm(side)

        say(f"round trips: {samples} on each, in 8 blocks taking turns ...")
        for _ in range(8):
            for side in sides:
                round_trips(side, samples // 8)
        official = compat is not None and rabbitmq is not None
        for r in range(rounds):
            say(f"round {r + 1}/{rounds}: {n}-task batch, farcall Executor"
                f"{', official Executor' if official else ''} on each ...")
            for side in sides:
                batch(side, n)
                farcall_executor(side, n)
                if official and side.name != "embedded":
                    official_executor(side, n, compat)  # type: ignore[arg-type]
        return {side.name: summary(side, n) for side in sides}
    finally:
        for side in sides:
            side.stop()
        for step in cleanup:
            try:
                step()
            except Exception as exc:  # keep removing the rest
                say(f"  cleanup: {type(exc).__name__}: {exc}")
        if rabbitmq is not None:
            rabbitmq.close()
        postgresql.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, a few minutes")
    parser.add_argument("--no-celery", action="store_true", help="farcall only")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 3],
                        help="service process counts of the scaled stacks [1 3]")
    parser.add_argument("--local-broker", action="store_true",
                        help="the scaled stack on the local broker (one process only)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "scale.json")
    opts = parser.parse_args()
    if opts.local_broker:
        opts.processes = [1]
    n, samples, rounds = (2000, 200, 2) if opts.quick else (10_000, 1000, 3)

    missing = missing_servers(not opts.no_celery)
    if missing:
        say("scale.py needs servers on this machine that do not answer: " + "; ".join(missing)
            + ". Start them (PostgreSQL 15, RabbitMQ with the management plugin, Redis) "
            "and run again.")
        return 2

    # Other work on the machine shows in the figures: the load is written with them.
    load_at_start = list(os.getloadavg())
    figures: dict[str, Any] = measure(opts, n, samples, rounds)
    if not opts.no_celery:
        for backend in ("redis", "rpc"):
            say(f"Celery, {backend} result backend: {n} tasks, {samples} round trips ...")
            figures[f"celery_{backend}"] = measure_celery(n, samples, backend)

    report(figures, n)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps({
        "benchmark": "scale", "tasks": n, "round_trips": samples, "rounds": rounds,
        "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                    "platform": platform.platform(), "load_at_start": load_at_start,
                    "load_at_end": list(os.getloadavg())},
        "figures": figures,
    }, indent=2))
    print(f"\nwritten to {opts.json}")
    return 0


def report(f: dict[str, Any], n: int) -> None:
    rows: list[tuple[str, str, str]] = []

    def row(name: str, value: str, verdict: str = "") -> None:
        rows.append((name, value, verdict))

    def check(ok: bool, target: str) -> str:
        return ("holds" if ok else "MISSED") + f" ({target})"

    stacks = [name for name in f if name == "embedded" or name.startswith("scaled-")]
    celeries = {name: f[name] for name in ("celery_redis", "celery_rpc") if f.get(name)}
    names = stacks + list(celeries)
    width = max(len(name) for name in names)
    print(f"\nfarcall at scale, {n:,} tasks ({platform.python_version()}, "
          f"{os.cpu_count()} cores)")
    print(f"{'':<{width}}  {'batch/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  "
          f"{'Executor/s':>10}  {'official/s':>10}")
    for name in names:
        x = f[name]
        executor, official = (x.get(key) for key in ("executor_throughput",
                                                     "official_executor_throughput"))
        print(f"{name:<{width}}  {x['throughput']:>8.0f}  {x['p50_ms']:>7.2f}  "
              f"{x['p99_ms']:>7.2f}  {f'{executor:.0f}' if executor else '-':>10}  "
              f"{f'{official:.0f}' if official else '-':>10}")

    embedded, one, three = f.get("embedded"), f.get("scaled-1"), f.get("scaled-3")
    if embedded and one:
        ratio = one["throughput"] / embedded["throughput"]
        row("1 process / embedded, throughput", f"{ratio:.2f}x", check(ratio >= 0.4, ">= 0.4x"))
    if one and three:
        ratio = three["throughput"] / one["throughput"]
        row("3 processes / 1, throughput", f"{ratio:.2f}x", check(ratio >= 0.8, ">= 0.8x"))
    if celeries:
        best_name = max(celeries, key=lambda name: celeries[name]["throughput"])
        best = celeries[best_name]
        for name in stacks:
            if name.startswith("scaled-"):
                ratio = f[name]["throughput"] / best["throughput"]
                row(f"{name} / {best_name.replace('_', ' ')}, throughput", f"{ratio:.2f}x",
                    check(ratio >= 2, ">= 2x"))
    for name in stacks:
        if name.startswith("scaled-"):
            p50 = f[name]["p50_ms"]
            row(f"{name} p50 (ms)", f"{p50:.2f}", check(p50 <= 5, "<= 5 ms"))
            official = f[name].get("official_executor_throughput")
            if official:
                ratio = official / f[name]["executor_throughput"]
                row(f"{name} official Executor / farcall Executor", f"{ratio:.2f}x")
                share = f[name]["official_client_cpu_share"]
                row("  the official SDK's own CPU / its wall time", f"{share:.2f}")
    print()
    label = max(len(r[0]) for r in rows) if rows else 0
    for name, value, verdict in rows:
        print(f"{name:<{label}}  {value:>8}  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
