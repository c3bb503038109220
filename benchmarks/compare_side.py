"""One side's turn in ``compare_commits.py``: start a stack, measure it, stop it.

Runs under the interpreter of that side's virtual environment, so the service, the
endpoint, its workers and the SDK are all that side's code. It uses only what every
commit compared has (``farcall_dev.stack.DevStack``, the ``Client``), starts the stack
as ``benchmarks/e2e.py`` does (``farcall dev``'s: the service on SQLite and a
``process`` endpoint with 2 workers, on 127.0.0.1) in the home directory it is given,
and prints its figures as one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, NoReturn


def noop(x: Any) -> Any:
    return x


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(home: Path, tasks: int, samples: int, warmup: int) -> dict[str, float]:
    from farcall import Client
    from farcall_dev.stack import DevStack

    stack = DevStack(port=free_port(), workers=2, home=home)
    try:
        token = stack.token()
        stack.start_service(token)
        endpoint_id = stack.start_endpoint(token)
        client = Client(stack.base_url, token=token)
        fid = client.register_function(noop)
        warm = client.create_batch()
        for i in range(200):
            warm.add(i, endpoint_id=endpoint_id, function_id=fid)
        client.wait(client.batch_run(warm), progress=False)
        # The first round trips after a batch are slower: measure the steady state.
        for i in range(warmup):
            client.wait([client.run(i, endpoint_id=endpoint_id, function_id=fid)],
                        progress=False)

        latencies = []
        for i in range(samples):
            start = time.perf_counter()
            tid = client.run(i, endpoint_id=endpoint_id, function_id=fid)
            client.wait([tid], progress=False)
            latencies.append(time.perf_counter() - start)

        batch = client.create_batch()
        for i in range(tasks):
            batch.add(i, endpoint_id=endpoint_id, function_id=fid)
        start = time.perf_counter()
        ids = client.batch_run(batch)
        results = client.wait(ids, progress=False)
        elapsed = time.perf_counter() - start
        if [results[t]["result"] for t in ids] != list(range(tasks)):
            raise RuntimeError("the batch came back with wrong results")
    finally:
        stack.stop()
    return {
        "throughput": tasks / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(143)  # runs the ``finally`` that stops the stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    opts = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    figures = measure(opts.home, opts.tasks, opts.samples, opts.warmup)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
