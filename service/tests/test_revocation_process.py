"""Revocation against a running ``farcall server start``: the admin commands run in
another process, so the service's token cache (``cache_ttl``) bounds how long a
revoked credential still works, and no longer."""

from __future__ import annotations

import subprocess
import time
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

TTL = 1.0


def _server(home: Path, *args: str, stdin: str) -> str:
    done = subprocess.run([*FARCALL, "server", *args], env=service_env(home), input=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _status(url: str, token: str) -> int:
    return requests.get(f"{url}/v2/endpoints", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code


def test_revoked_credentials_are_refused_by_a_running_service_within_the_ttl(
        tmp_path: Path) -> None:
    _server(tmp_path, "user", "add", "alice", "--password-stdin", stdin="old password\n")
    static = admin(tmp_path, "token", "create", "alice")
    with ServiceProcess(tmp_path, env={"FARCALL_SERVICE_CACHE_TTL": str(TTL)}) as service:
        auth = f"{service.url}/auth"
        http = requests.Session()
        verifier, challenge = pkce_pair()
        code = code_from(sign_in(http, auth, "alice", "old password", challenge=challenge))
        tokens = http.post(f"{auth}/v2/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID, "redirect_uri": f"{auth}/v2/web/auth-code",
            "scope": COMPUTE_SCOPE}, timeout=10).json()
        assert _status(service.url, static) == 200  # now in the service's cache
        assert _status(service.url, tokens["access_token"]) == 200

        (line,) = admin(tmp_path, "token", "list", "alice").splitlines()
        admin(tmp_path, "token", "revoke", line.split()[0])
        _server(tmp_path, "user", "set-password", "alice", "--password-stdin",
                stdin="new password\n")
        revoked_at = time.monotonic()

        # The refresh token is spent in the database: refused at once.
        refreshed = http.post(f"{auth}/v2/oauth2/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": NATIVE_CLIENT_ID}, timeout=10)
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        # Cached look-ups of bearer tokens end within the TTL.
        time.sleep(max(0.0, revoked_at + TTL + 0.1 - time.monotonic()))
        assert _status(service.url, static) == 401
        assert _status(service.url, tokens["access_token"]) == 401
        # A new login with the new password works.
        verifier, challenge = pkce_pair()
        code = code_from(sign_in(http, auth, "alice", "new password", challenge=challenge))
        fresh = http.post(f"{auth}/v2/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID, "redirect_uri": f"{auth}/v2/web/auth-code"},
            timeout=10).json()
        assert _status(service.url, fresh["access_token"]) == 200
