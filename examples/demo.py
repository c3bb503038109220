"""farcall demo: the User Guide's examples on a local service and endpoint.

Starts ``farcall dev`` on a free port with a throw-away ``FARCALL_HOME``, runs each
example with ``from farcall import Client``, prints what a user would want to see,
and stops everything. Exits 0 only if every step worked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def step(title: str) -> None:
    print(f"\n== {title}")


def platform_func():
    import platform

    return platform.platform()


def hello(firstname, lastname):
    return f"Hello {firstname} {lastname}"


def double(x):
    return 2 * x


def divide(a, b):
    return a / b


def run_guide(home: Path, sharing: tuple[str, str]) -> None:
    from farcall import Client

    gcc = Client()
    tutorial_endpoint = gcc.profile.endpoint_id
    print(f"Client() found the service at {gcc.base_url} and endpoint {tutorial_endpoint}")

    step("Registering and running a function")
    func_uuid = gcc.register_function(platform_func)
    task_id = gcc.run(endpoint_id=tutorial_endpoint, function_id=func_uuid)
    try:
        print("right away:", gcc.get_result(task_id))
    except Exception as e:
        print(f"right away: {type(e).__name__}: {e}")
    gcc.wait([task_id], timeout=60)
    print("platform of the endpoint:", gcc.get_result(task_id))

    step("Arguments and data")
    func_id = gcc.register_function(hello)
    task_id = gcc.run("Bob", "Smith", endpoint_id=tutorial_endpoint, function_id=func_id)
    gcc.wait([task_id], timeout=60)
    greeting = gcc.get_result(task_id)
    print(greeting)
    assert greeting == "Hello Bob Smith", greeting

    step("Batching: five tasks, then get_batch_result")
    double_id = gcc.register_function(double, description="doubles a number")
    batch = gcc.create_batch()
    for x in range(0, 5):
        batch.add(x, endpoint_id=tutorial_endpoint, function_id=double_id)
    batch_res = gcc.batch_run(batch)
    gcc.wait(batch_res, timeout=60)
    results = gcc.get_batch_result(batch_res)
    for tid, entry in results.items():
        print(f"  {tid}: {entry}")
    assert [results[t]["result"] for t in batch_res] == [0, 2, 4, 6, 8]

    step("An exception, raised again here")
    divide_id = gcc.register_function(divide)
    task_id = gcc.run(1, 0, endpoint_id=tutorial_endpoint, function_id=divide_id)
    gcc.wait([task_id], timeout=60)
    try:
        gcc.get_result(task_id)
        raise AssertionError("the remote exception was not raised")
    except Exception as e:
        print(f"Exception: {e}".splitlines()[-1])
        assert "division by zero" in str(getattr(e, "remote_traceback", e))

    step("Sharing with a group and publicly")
    group_id, guest_token = sharing
    guest = Client(gcc.base_url, token=guest_token)
    shared = gcc.register_function(hello, function_name="hello_lab",
                                   description="My function for the lab", group=group_id)
    public = gcc.register_function(double, function_name="double_public",
                                   description="My function for everyone", public=True)
    print(f"shared with group {group_id}: {shared}; public: {public}")

    step("Discovering functions")
    mine = gcc.search_function("my function", offset=0, limit=5)
    theirs = guest.search_function("my function", offset=0, limit=5)
    print("search as the owner:", sorted(r["function_name"] for r in mine["results"]))
    print("search as the guest:", sorted(r["function_name"] for r in theirs["results"]))
    assert {r["function_uuid"] for r in theirs["results"]} == {shared, public}
    try:
        guest.get_function(func_id)
        raise AssertionError("the guest saw a private function")
    except Exception as e:
        print("the guest asking for a private function:", str(e).splitlines()[0])


def prepare_sharing(home: Path) -> tuple[str, str]:
    """A group with the dev user and a guest in it, made before the service starts.

    (Membership changes made while the service runs reach it within its cache
    lifetime, a few seconds; making them first keeps the demo deterministic.)
    """
    from farcall_service import admin
    from farcall_service.storage import open_store

    with contextlib.closing(open_store(f"sqlite:///{home / 'dev' / 'farcall.db'}")) as store:
        admin.add_user(store, "dev")
        return share_with_guest(store)


def share_with_guest(store: Any) -> tuple[str, str]:
    """Add the user ``guest`` and a group ``demo-lab`` of ``dev`` and ``guest``; the
    group's id and the guest's token."""
    from farcall_service import admin

    admin.add_user(store, "guest")
    group = admin.add_group(store, "demo-lab")
    for user in ("dev", "guest"):
        admin.add_member(store, "demo-lab", user)
    return group.id, admin.create_token(store, "guest")


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="farcall-demo-"))
    os.environ["FARCALL_HOME"] = str(home)
    for var in ("FARCALL_BASE_URL", "FARCALL_TOKEN"):
        os.environ.pop(var, None)
    sharing = prepare_sharing(home)
    port = free_port()
    print(f"starting `farcall dev --port {port}` (FARCALL_HOME={home}) ...")
    dev = subprocess.Popen([*FARCALL, "dev", "--port", str(port), "--workers", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _ready(home / "dev.json"):
            if dev.poll() is not None or time.monotonic() > deadline:
                print(dev.stdout.read() if dev.stdout else "", file=sys.stderr)
                print("FAILED: farcall dev did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"dashboard, while the demo runs: http://127.0.0.1:{port}/dashboard/ (sign in as "
              f"dev after `farcall server user set-password dev "
              f"--db sqlite:///{home / 'dev' / 'farcall.db'}`)")
        run_guide(home, sharing)
    except Exception as exc:
        print(f"\nFAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        dev.terminate()
        dev.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)
    print("\nDemo finished: every step worked.")
    return 0


def _ready(profile: Path) -> bool:
    try:
        return "endpoint_id" in json.loads(profile.read_text())
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
