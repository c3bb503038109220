"""Celery 5 on the machine's RabbitMQ, two prefork worker processes: latency and throughput.

The task queue a Python team would otherwise pick. Broker: RabbitMQ on 127.0.0.1:5672 in a
vhost of its own, made through the management API at the start and deleted at the end.
Result backend: Redis on 127.0.0.1:6379, database 14 (flushed before and after), or with
``--backend rpc`` Celery's ``rpc://`` (results sent back over AMQP): the two fastest
Celery has here (a database backend is slower still); ``benchmarks/scale.py`` runs both
and compares farcall with the faster. The worker runs with ``--without-gossip --without-mingle
--without-heartbeat``, as Celery's docs advise for speed; otherwise Celery's defaults.

Runs with an interpreter that has ``celery[redis]`` (``make bench`` makes
``.venv-peers``); it imports nothing from farcall. Prints one line as the other peers do
(round trips p50/p95, then throughput), with the p99 at its end.
"""

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from celery import Celery, group

HERE = Path(__file__).resolve().parent
VHOST_ENV = "FARCALL_CELERY_VHOST"
BACKEND_ENV = "FARCALL_CELERY_BACKEND"
REDIS = "redis://127.0.0.1:6379/14"
BACKENDS = {"redis": REDIS, "rpc": "rpc://"}

app = Celery("celery_bench")
app.conf.update(
    broker_url=f"amqp://guest:guest@127.0.0.1:5672/{os.environ.get(VHOST_ENV, '')}",
    result_backend=os.environ.get(BACKEND_ENV, REDIS),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="celery_bench.noop")  # the same name in __main__ and in the worker
def noop(x):
    return x


class Management:
    """RabbitMQ's management HTTP API, for the run's own vhost."""

    def __init__(self, base: str = "http://127.0.0.1:15672", user: str = "guest",
                 password: str = "guest") -> None:
        self.base = base
        self.auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.user = user

    def call(self, method: str, path: str, body: object = None) -> None:
        request = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {self.auth}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30):
            pass

    def make_vhost(self, vhost: str) -> None:
        self.call("PUT", f"/api/vhosts/{vhost}", {})
        self.call("PUT", f"/api/permissions/{vhost}/{self.user}",
                  {"configure": ".*", "write": ".*", "read": ".*"})

    def drop_vhost(self, vhost: str) -> None:
        try:
            self.call("DELETE", f"/api/vhosts/{vhost}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise


def flush_results() -> None:
    if app.conf.result_backend == REDIS:
        app.backend.client.flushdb()


def start_worker(vhost: str) -> subprocess.Popen:
    env = {**os.environ, VHOST_ENV: vhost, BACKEND_ENV: app.conf.result_backend,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_bench", "worker",
         "--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat",
         "--hostname", f"bench-{vhost}@%h"],
        env=env, stdout=subprocess.DEVNULL, start_new_session=True)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)  # a warm shutdown, children included
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def percentile(ordered, q):
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(n: int, samples: int) -> str:
    # Warm: the worker's pool, the connections, the result subscriptions.
    noop.delay(0).get(timeout=120)
    group(noop.s(i) for i in range(200)).apply_async().get(timeout=120)
    for i in range(20):
        noop.delay(i).get(timeout=30)

    latencies = []
    for i in range(samples):
        start = time.perf_counter()
        assert noop.delay(i).get(timeout=30) == i
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    # Submit all, then gather every result (a group's get joins on Redis natively).
    results = group(noop.s(i) for i in range(n)).apply_async().get(timeout=900)
    seconds = time.perf_counter() - start
    assert results == list(range(n)), "wrong results"

    latencies.sort()
    label = "celery-" + ("redis" if app.conf.result_backend == REDIS else "rpc")
    return (f"{label} roundtrip p50={percentile(latencies, 0.5) * 1e3:.2f}ms "
            f"p95={percentile(latencies, 0.95) * 1e3:.2f}ms  "
            f"throughput N={n} {n / seconds:.0f} tasks/s  "
            f"p99={percentile(latencies, 0.99) * 1e3:.2f}ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="tasks in the batch")
    parser.add_argument("--samples", type=int, default=1000, help="round trips, one at a time")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="redis",
                        help="result backend: Redis db 14 (default) or rpc:// (AMQP)")
    opts = parser.parse_args()
    app.conf.result_backend = BACKENDS[opts.backend]

    vhost = f"farcall-celery-{uuid.uuid4().hex[:8]}"
    management = Management()
    management.make_vhost(vhost)
    app.conf.broker_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    worker = None
    try:
        flush_results()
        worker = start_worker(vhost)
        print(measure(opts.n, opts.samples), flush=True)
    finally:
        if worker is not None:
            stop_worker(worker)
        try:
            flush_results()
        finally:
            management.drop_vhost(vhost)
    return 0


if __name__ == "__main__":
    sys.exit(main())
