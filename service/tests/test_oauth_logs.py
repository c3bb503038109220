"""No secret reaches the service log, even at DEBUG: logins, grants, refreshes, bad tokens,
and the device flow's codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import requests
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_testkit.service import (
    COMPUTE_SCOPE,
    FARCALL,
    ServiceProcess,
    admin,
    code_from,
    pkce_pair,
    service_env,
    sign_in,
)

PASSWORD = "hunter2-but-longer"


def test_no_secret_in_the_debug_log(tmp_path: Path) -> None:
    subprocess.run([*FARCALL, "server", "user", "add", "alice", "--password-stdin"],
                   input=PASSWORD + "\n", env=service_env(tmp_path), check=True,
                   capture_output=True, text=True, timeout=60)
    static = admin(tmp_path, "token", "create", "alice")
    created = json.loads(admin(tmp_path, "client", "create", "alice", "--json"))
    secrets = [PASSWORD, static, created["client_secret"]]
    with ServiceProcess(tmp_path, args=["--log-level", "DEBUG"]) as service:
        auth = f"{service.url}/auth"
        token_url = f"{auth}/v2/oauth2/token"
        http = requests.Session()
        assert sign_in(http, auth, "alice", "wrong " + PASSWORD,
                       challenge=pkce_pair()[1]).status_code == 401
        verifier, challenge = pkce_pair()
        answer = sign_in(http, auth, "alice", PASSWORD, challenge=challenge,
                         scope=f"{COMPUTE_SCOPE} openid")
        code = code_from(answer)
        assert http.get(answer.headers["location"]).status_code == 200  # the code page
        secrets += [verifier, code, http.cookies.get("farcall_csrf")]
        tokens = http.post(token_url, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID}).json()
        assert http.post(token_url, data={  # replayed: refused
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID}).status_code == 400
        tokens = _login_again(http, auth, token_url)
        secrets += _all_tokens(tokens)
        renewed = http.post(token_url, data={"grant_type": "refresh_token",
                                             "client_id": NATIVE_CLIENT_ID,
                                             "refresh_token": tokens["refresh_token"]}).json()
        secrets += _all_tokens(renewed)
        robot = http.post(token_url, data={"grant_type": "client_credentials"},
                          auth=(created["client_id"], created["client_secret"])).json()
        secrets += _all_tokens(robot)
        assert http.post(token_url, data={"grant_type": "client_credentials"},
                         auth=(created["client_id"], "fcs_wrong-secret-value")).status_code == 401
        for token in (static, renewed["access_token"], robot["access_token"],
                      "fca_" + "0" * 43, "bad token!"):
            http.get(f"{service.url}/v2/endpoints", headers={"Authorization": f"Bearer {token}"})
        http.get(f"{auth}/v2/oauth2/userinfo",
                 headers={"Authorization": f"Bearer {tokens['other_tokens'][0]['access_token']}"})
        http.post(f"{auth}/v2/oauth2/token/introspect", data={"token": robot["access_token"]},
                  auth=(created["client_id"], created["client_secret"]))
        http.post(f"{auth}/v2/oauth2/token/revoke",
                  data={"token": renewed["refresh_token"], "client_id": NATIVE_CLIENT_ID})
        secrets += _device_login(http, auth, token_url)
    log = service.log_path.read_text(errors="replace")
    assert "DEBUG" in log and "/auth/v2/oauth2/token" in log
    leaked = [secret[:6] + "..." for secret in secrets if secret and secret in log]
    assert not leaked, f"secrets in the service log: {leaked}"


def _login_again(http: requests.Session, auth: str, token_url: str) -> dict:
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(http, auth, "alice", PASSWORD, challenge=challenge,
                             scope=f"{COMPUTE_SCOPE} openid"))
    answer = http.post(token_url, data={"grant_type": "authorization_code", "code": code,
                                        "code_verifier": verifier, "client_id": NATIVE_CLIENT_ID})
    assert answer.status_code == 200, answer.text
    return {**answer.json(), "_code": code, "_verifier": verifier}


def _all_tokens(answer: dict) -> list[str]:
    found = [answer.get(k) for k in ("access_token", "refresh_token", "_code", "_verifier")]
    for other in answer.get("other_tokens", []):
        found += [other.get("access_token"), other.get("refresh_token")]
    return [value for value in found if value]


def _device_login(http: requests.Session, auth: str, token_url: str) -> list[str]:
    """A device login approved through the page reached by the complete URL (whose query
    holds the user code); its codes and tokens."""
    import re

    started = http.post(f"{auth}/v2/oauth2/device_authorization",
                        data={"client_id": NATIVE_CLIENT_ID}).json()
    page = http.get(started["verification_uri_complete"])
    csrf = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)  # type: ignore[union-attr]
    done = http.post(f"{auth}/v2/oauth2/device", data={
        "csrf_token": csrf, "user_code": started["user_code"], "action": "approve",
        "username": "alice", "password": PASSWORD})
    assert "Device login approved" in done.text, done.text
    tokens = http.post(token_url, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": started["device_code"], "client_id": NATIVE_CLIENT_ID}).json()
    return [started["device_code"], started["user_code"],
            started["user_code"].replace("-", ""), *_all_tokens(tokens)]
