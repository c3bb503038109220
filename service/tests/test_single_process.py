"""The local broker's lock: one ``farcall server start`` per database, released the
moment its process dies (``farcall_service.brokers.database_lock``)."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from farcall_service.brokers.database_lock import DatabaseLock
from farcall_service.brokers.interface import BrokerError
from farcall_testkit.service import ServiceProcess, admin

REFUSAL = "another farcall service holds the database"


def _refused(service: ServiceProcess) -> str:
    """Start ``service``, which must exit at once; its log."""
    with pytest.raises(RuntimeError, match="exited at start"):
        service.start(timeout=60)
    assert service.process is not None and service.process.wait(10) != 0
    return service.log()


def test_a_second_service_on_the_database_refuses_to_start(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path) as first:
        log = _refused(ServiceProcess(tmp_path))
        assert REFUSAL in log and "configure a shared broker" in log
        assert "Traceback" not in log  # a plain error, not a crash
        # The first is untouched.
        assert requests.get(f"{first.url}/openapi.json", timeout=10).status_code == 200
    lock = tmp_path / "service" / "farcall.db.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_second_service_starts_once_the_first_has_stopped(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path):
        pass
    with ServiceProcess(tmp_path) as second:
        assert requests.get(f"{second.url}/openapi.json", timeout=10).status_code == 200


def test_a_killed_service_restarts_at_once(tmp_path: Path) -> None:
    first = ServiceProcess(tmp_path).start()
    first.kill(signal.SIGKILL)
    began = time.monotonic()
    with ServiceProcess(tmp_path, port=first.port) as second:
        assert requests.get(f"{second.url}/openapi.json", timeout=10).status_code == 200
    # No lease to run out: only the usual start-up time.
    assert time.monotonic() - began < 30


def test_admin_commands_work_while_a_service_runs(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path) as service:
        admin(tmp_path, "user", "add", "bob")
        token = admin(tmp_path, "token", "create", "bob")
        answer = requests.post(f"{service.url}/v3/endpoints", json={"endpoint_name": "e"},
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text


def test_an_unknown_broker_is_refused_with_the_choices(tmp_path: Path) -> None:
    log = _refused(ServiceProcess(tmp_path, args=["--broker", "carrier-pigeon"]))
    assert "'carrier-pigeon'" in log and "'local'" in log


# -- PostgreSQL: an advisory lock on a connection of its own ---------------------------


def test_postgresql_admits_one_holder_until_it_lets_go(postgresql_url: str) -> None:
    first, second = DatabaseLock(postgresql_url), DatabaseLock(postgresql_url)
    first.acquire()
    try:
        with pytest.raises(BrokerError, match=REFUSAL):
            second.acquire()
        assert not second.held
    finally:
        first.release()
    second.acquire()
    second.release()


def test_postgresql_releases_the_lock_of_a_killed_process(postgresql_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from farcall_service.brokers.database_lock import DatabaseLock\n"
         "lock = DatabaseLock(sys.argv[1])\n"
         "lock.acquire()\n"
         "print('held', flush=True)\n"
         "time.sleep(600)\n", postgresql_url],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(BrokerError, match=REFUSAL):
            DatabaseLock(postgresql_url).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    lock = DatabaseLock(postgresql_url)
    deadline = time.monotonic() + 10  # the server notices the closed socket at once
    while True:
        try:
            lock.acquire()
            break
        except BrokerError:
            assert time.monotonic() < deadline, "the killed process's lock was kept"
            time.sleep(0.05)
    lock.release()


def test_an_app_in_this_process_refuses_a_database_another_app_serves(tmp_path: Path) -> None:
    from farcall_service.app import create_app
    from farcall_service.settings import Settings
    from fastapi.testclient import TestClient

    settings = Settings(home=tmp_path)
    second = create_app(settings)
    with TestClient(create_app(settings)), pytest.raises(BrokerError, match=REFUSAL), \
            TestClient(second):
        pass
    with TestClient(create_app(settings)) as client:  # released with the first's lifespan
        assert client.get("/openapi.json").status_code == 200
