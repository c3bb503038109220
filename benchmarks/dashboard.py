"""The dashboard with 100,000 tasks in the store: how long its pages take.

One user owns 100,000 tasks (a third succeeded, some failed, the rest queued) on one
endpoint, of two functions, in a SQLite store (``--postgresql URL``: a scratch
database there instead). A ``farcall server start`` process serves them; this script
fetches each page over loopback HTTP as a signed-in browser would (the session
cookie), ``--samples`` times, and prints p50 and p95 against issue #23's target: a
page renders in under 300 ms at p95. The pages: the newest page of tasks, a page
50 pages deep (keyset pagination: it should cost what the first does), tasks
filtered by status and by function, the endpoints, functions and one function's
page (failure rate of the newest 1,000 runs), and a task's page.

``--quick``: 10,000 tasks and fewer samples, in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

TARGET_MS = 300.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fill(db_url: str, tasks: int) -> dict[str, Any]:
    """The user, endpoint, functions and ``tasks`` tasks; the ids the pages need."""
    from farcall_service import admin
    from farcall_service.storage import open_store
    from farcall_service.storage.interface import Endpoint, Function, NewTask, TaskOptions

    store = open_store(db_url)
    try:
        user = admin.add_user(store, "bench")
        token = admin.create_token(store, "bench")
        now = time.time()
        ep = Endpoint(str(uuid.uuid4()), user.id, "bench-ep", created_at=now)
        store.save_endpoint(ep)
        fns = [Function(str(uuid.uuid4()), user.id, name, "code", created_at=now)
               for name in ("square", "divide")]
        for fn in fns:
            store.create_function(fn)
        batch = 5000
        for start in range(0, tasks, batch):
            chunk = [(ep.id, NewTask(str(uuid.uuid4()), fns[i % 2].id, "payload"))
                     for i in range(start, min(tasks, start + batch))]
            store.submit(user.id, str(uuid.uuid4()), chunk, TaskOptions(), now)
        engine = sa.create_engine(db_url)
        with engine.begin() as conn:  # end most of them as endpoints would have
            conn.execute(sa.text(
                "UPDATE tasks SET status = 'success', result = '11\n4', "
                "completion_t = created_at + 0.02 WHERE seq % 3 = 0"))
            conn.execute(sa.text(
                "UPDATE tasks SET status = 'failed', exception = 'ZeroDivisionError', "
                "completion_t = created_at + 0.02 WHERE seq % 3 = 1 AND seq % 2 = 0"))
            task_id = conn.execute(sa.text("SELECT id FROM tasks ORDER BY seq LIMIT 1")).scalar()
        engine.dispose()
        return {"token": token, "endpoint": ep.id, "function": fns[1].id, "task": task_id}
    finally:
        store.close()


def measure(url: str, token: str, path: str, samples: int) -> list[float]:
    http = requests.Session()
    http.cookies.set("farcall_session", token, path="/dashboard")
    timings = []
    for _ in range(samples + 2):
        started = time.perf_counter()
        answer = http.get(url + path, timeout=60)
        timings.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return timings[2:]  # the first two warm caches


def deep_page(url: str, token: str, pages: int) -> str:
    """The path of the tasks page ``pages`` pages from the newest, by its links."""
    http = requests.Session()
    http.cookies.set("farcall_session", token, path="/dashboard")
    path = "/dashboard/tasks"
    for _ in range(pages):
        found = re.search(r'href="(/dashboard/tasks\?[^"]*before=\d+)"',
                          http.get(url + path, timeout=60).text)
        assert found, "no next page"
        path = found.group(1).replace("&amp;", "&")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 tasks, fewer samples")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--postgresql", default="", help="a scratch PostgreSQL database URL")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    opts = parser.parse_args()
    tasks = opts.tasks or (10_000 if opts.quick else 100_000)
    samples = opts.samples or (20 if opts.quick else 100)

    from farcall_testkit.service import ServiceProcess

    with tempfile.TemporaryDirectory(prefix="farcall-dashboard-bench-") as tmp:
        home = Path(tmp)
        db_url = opts.postgresql or f"sqlite:///{home / 'farcall.db'}"
        began = time.perf_counter()
        ids = fill(db_url, tasks)
        took = time.perf_counter() - began
        print(f"{tasks:,} tasks stored in {took:.1f} s ({db_url.split(':')[0]})")
        args = ["--db", db_url, "--rate-limit", "0"]
        with ServiceProcess(home, args=args) as service:
            pages = {
                "tasks, newest page": "/dashboard/tasks",
                "tasks, 50 pages deep": deep_page(service.url, ids["token"], 50),
                "tasks, failed only": "/dashboard/tasks?status=failed",
                "tasks, one function": f"/dashboard/tasks?function={ids['function']}",
                "endpoints": "/dashboard/endpoints",
                "functions": "/dashboard/functions",
                "a function (failure rate)": f"/dashboard/functions/{ids['function']}",
                "a task": f"/dashboard/tasks/{ids['task']}",
            }
            figures = {}
            for name, path in pages.items():
                timings = measure(service.url, ids["token"], path, samples)
                figures[name] = {"p50_ms": statistics.median(timings),
                                 "p95_ms": percentile(timings, 0.95)}
    width = max(map(len, figures))
    print(f"\nthe dashboard with {tasks:,} tasks, {samples} samples a page "
          f"(target: p95 < {TARGET_MS:.0f} ms)")
    print(f"{'':<{width}}  {'p50 ms':>7}  {'p95 ms':>7}")
    for name, x in figures.items():
        verdict = "ok" if x["p95_ms"] < TARGET_MS else "OVER"
        print(f"{name:<{width}}  {x['p50_ms']:>7.1f}  {x['p95_ms']:>7.1f}  {verdict}")
    if opts.json:
        opts.json.write_text(json.dumps({"tasks": tasks, "pages": figures}, indent=2))
    return 0 if all(x["p95_ms"] < TARGET_MS for x in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
