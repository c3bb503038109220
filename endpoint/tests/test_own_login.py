"""An endpoint started from a ``farcall login`` gets a login of its own: ``farcall
logout`` (or ``Client(force_login=True)``) ends the user's login and leaves running
endpoints serving. An endpoint whose own login is revoked stops, saying why."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from farcall_auth_native.manager import NativeLoginManager
from farcall_endpoint.daemon import read_pid_file
from farcall_testkit.waiting import wait_for

PASSWORD = "endpoint owner password"
FARCALL = [sys.executable, "-c", "from farcall.cli import main; main()"]


def _sign_in(url: str) -> str:
    """What the browser does: open the authorize URL, submit the form, read the code."""
    http = requests.Session()
    page = http.get(url, timeout=30)
    csrf = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields = dict(re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text))
    fields.update(csrf_token=csrf, username="alice", password=PASSWORD)
    answer = http.post(url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


@pytest.fixture
def logged_in(service, monkeypatch: pytest.MonkeyPatch):
    """alice's ``farcall login`` in the service's FARCALL_HOME; a function running
    ``farcall ...`` with that login only (no static token in the environment)."""
    from farcall_service import admin
    from farcall_service.settings import Settings
    from farcall_service.storage import open_store

    store = open_store(Settings(home=service.home).database_url)
    try:
        admin.set_password(store, "alice", PASSWORD)
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))}
    env.update(FARCALL_HOME=str(service.home), FARCALL_BASE_URL=service.url)
    for key in [k for k in os.environ if k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FARCALL_HOME", str(service.home))
    manager = NativeLoginManager({"base_url": service.url})
    manager.finish_flow(_sign_in(manager.start_flow()))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*FARCALL, *args], env=env, capture_output=True, text=True,
                              timeout=120)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    yield run
    run("endpoint", "stop", "own", "--timeout", "10", check=False)


def _double(x: int) -> int:
    return 2 * x


def test_logout_leaves_a_running_endpoint_serving(service, api, logged_in) -> None:
    logged_in("endpoint", "configure", "own", "--engine", "thread")
    logged_in("endpoint", "start", "own", "--detach")
    directory = service.home / "endpoints" / "own"
    own = directory / "tokens.json"
    assert oct(own.stat().st_mode & 0o777) == "0o600"
    shared = json.loads((service.home / "tokens.json").read_text())["data"]
    mine = json.loads(own.read_text())["data"]
    key = f"{service.url}/auth/"
    assert mine[key]["funcx_service"]["refresh_token"] != \
        shared[key]["funcx_service"]["refresh_token"]

    assert "Logged out" in logged_in("logout").stdout
    endpoint_id = json.loads((directory / "endpoint.json").read_text())["endpoint_id"]
    [task_id] = api.submit(endpoint_id, api.register_function(_double), [(21,)])
    docs = api.wait([task_id], timeout=60)
    assert api.result(docs[task_id]) == 42
    assert read_pid_file(directory)["state"] == "serving"
    assert api.status(endpoint_id)["status"] == "online"

    # Deleting the endpoint ends its own login too.
    refresh = mine[key]["funcx_service"]["refresh_token"]
    logged_in("endpoint", "delete", "own", "--yes", "--force")
    answer = requests.post(f"{service.url}/auth/v2/oauth2/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": refresh,
        "client_id": NativeLoginManager().client_id})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def _slow(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_an_endpoint_whose_login_is_revoked_stops_gives_back_its_task_and_shows_offline(
        service, api, logged_in) -> None:
    """Without a token, the endpoint still says goodbye (its session proves it): the task
    it held is queued again at once, not after the requeue timeout (60 s here), and the
    endpoint shows offline before its heartbeats are missed."""
    logged_in("endpoint", "configure", "own", "--engine", "process", "--workers", "1")
    logged_in("endpoint", "start", "own", "--detach")
    directory = service.home / "endpoints" / "own"
    endpoint_id = json.loads((directory / "endpoint.json").read_text())["endpoint_id"]
    [task_id] = api.submit(endpoint_id, api.register_function(_slow), [(600,)])
    wait_for(lambda: api.documents([task_id])[task_id]["status"] == "running", timeout=60,
             what="the task to start")
    assert NativeLoginManager({"base_url": service.url,
                               "token_file": str(directory / "tokens.json")}).logout()
    wait_for(lambda: read_pid_file(directory) is None, timeout=60,
             what="the endpoint to stop once its login was revoked")
    assert api.documents([task_id])[task_id]["status"] == "waiting-for-ep"
    assert api.status(endpoint_id)["status"] == "offline"
    log = (directory / "endpoint.log").read_text()
    assert "credentials were revoked or have expired" in log, log
    assert "Traceback" not in log, log
    # The refused login is forgotten: started again, the endpoint makes a new one from
    # the user's (still logged in here) and serves.
    own = directory / "tokens.json"
    assert not own.exists()
    logged_in("endpoint", "start", "own", "--detach")
    assert own.exists() and read_pid_file(directory)["state"] == "serving"
