"""Tokens and client secrets never appear in plain text: not in the service's or the
endpoints' DEBUG logs, not in error messages, not in any file the service or the
endpoints write (the SQLite database and its WAL included)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import reliability_kit as kit
import requests
from farcall_endpoint.configure import configure_endpoint, ensure_endpoint_id
from farcall_endpoint.daemon import PID_FILE
from farcall_testkit.service import COMPUTE_SCOPE, ServiceProcess, admin


def shout(word):
    return word.upper()


class DebugEndpoint:
    """``python -m farcall_endpoint start NAME --log-level DEBUG`` with given credentials."""

    def __init__(self, home: Path, name: str, url: str, credentials: dict[str, str]) -> None:
        self.config = configure_endpoint(name, home=home, overwrite=True,
                                         engine={"type": "process", "workers": 1},
                                         **kit.FAST_ENDPOINT)
        self.endpoint_id = ensure_endpoint_id(self.config)
        self.log_path = self.config.directory / "debug.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))}
        env.update(FARCALL_HOME=str(home), FARCALL_BASE_URL=url, **credentials)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "farcall_endpoint", "start", name, "--log-level", "DEBUG"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_serving(self) -> None:
        def serving() -> bool:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                info = json.loads((self.config.directory / PID_FILE).read_text())
            except (OSError, ValueError):
                return False
            return info.get("pid") == self.process.pid and info.get("state") == "serving"

        kit.wait_for(serving, 90, "the endpoint serving")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        self.process.wait(30)


def test_secrets_stay_secret(tmp_path: Path) -> None:
    admin(tmp_path, "user", "add", "alice")
    static = admin(tmp_path, "token", "create", "alice")
    robot = json.loads(admin(tmp_path, "client", "create", "alice", "--json"))
    secrets = [static, robot["client_secret"]]
    answers: list[str] = []
    endpoints: list[DebugEndpoint] = []
    with ServiceProcess(tmp_path, args=[*kit.SERVICE_ARGS, "--log-level", "DEBUG"]) as service:
        try:
            http = requests.Session()
            grant = http.post(f"{service.url}/auth/v2/oauth2/token",
                              data={"grant_type": "client_credentials", "scope": COMPUTE_SCOPE},
                              auth=(robot["client_id"], robot["client_secret"]))
            assert grant.status_code == 200, grant.text
            robot_token = grant.json()["access_token"]
            secrets.append(robot_token)
            endpoints = [
                DebugEndpoint(tmp_path, "with-token", service.url, {"FARCALL_TOKEN": static}),
                DebugEndpoint(tmp_path, "with-client", service.url, {
                    "GLOBUS_COMPUTE_CLIENT_ID": robot["client_id"],
                    "GLOBUS_COMPUTE_CLIENT_SECRET": robot["client_secret"]}),
            ]
            for endpoint in endpoints:
                endpoint.wait_serving()
            for endpoint, token in zip(endpoints, (static, robot_token), strict=True):
                api = kit.Api(service.url, token)
                fn = kit.register(api, shout)
                [task] = api.submit(endpoint.endpoint_id, fn, [("quiet",)])
                assert api.result(api.wait([task], 60)[task]) == "QUIET"
                api.close()
            answers += _hostile_calls(service.url, http, static, robot, robot_token)
        finally:
            for endpoint in endpoints:
                endpoint.stop()
    time.sleep(0.1)
    _assert_nowhere(tmp_path, secrets, answers, [service.log_path] +
                    [e.log_path for e in endpoints])


def _hostile_calls(url: str, http: requests.Session, static: str, robot: dict[str, str],
                   robot_token: str) -> list[str]:
    """Wrong, altered and misplaced credentials: every answer is kept to be scanned."""
    out = []
    for bad in (static[:-2] + "zz", robot_token + "x", robot["client_secret"], "fc_" + static):
        out.append(http.get(f"{url}/v2/endpoints", headers={"Authorization": f"Bearer {bad}"}).text)
        out.append(http.get(f"{url}/v2/endpoints?token={bad}").text)
    for secret in (robot["client_secret"][:-1] + "0", robot["client_secret"]):
        out.append(http.post(f"{url}/auth/v2/oauth2/token",
                             data={"grant_type": "client_credentials", "client_secret": secret,
                                   "client_id": robot["client_id"] + "0"}).text)
    out.append(http.post(f"{url}/auth/v2/oauth2/token/introspect", data={"token": robot_token},
                         auth=(robot["client_id"], "wrong")).text)
    assert all(text for text in out)
    return out


def _assert_nowhere(home: Path, secrets: list[str], answers: list[str], logs: list[Path]) -> None:
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "farcall.db" for p in files)
    assert all(log in files for log in logs)
    assert any(b"DEBUG" in log.read_bytes() for log in logs[1:]), "endpoint not at DEBUG"
    found: list[str] = []
    for path in files:
        data = path.read_bytes()
        found += [f"{s[:5]}... in {path.relative_to(home)}" for s in secrets if s.encode() in data]
    for text in answers:
        found += [f"{s[:5]}... in an answer: {text[:200]}" for s in secrets
                  if s[:-2] in text]  # the altered forms share all but the last characters
    kit.record("secrets", secrets_checked=len(secrets), files_scanned=len(files),
               answers_scanned=len(answers), leaks=len(found))
    assert not found, "\n".join(found)
