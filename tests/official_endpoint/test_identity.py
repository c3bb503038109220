"""The unmodified official globus-compute-endpoint logs in to farcall and registers.

It runs as an unprivileged user with the client credentials of an OAuth client that
the farcall user ``alice`` owns. It must get, in one client-credentials call, the
compute scope and the Auth scopes it asks for; read alice's identity from userinfo;
and register under alice's identity, since a client acts for its owner.
"""

from __future__ import annotations

import pwd
import sqlite3
import subprocess
from typing import Any

from farcall_testkit.official_endpoint import OfficialEndpoint, PosixUser, can_make_users
from farcall_testkit.servers import unavailable
from farcall_testkit.waiting import wait_for

COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
AUTH_SCOPES = {"openid", "urn:globus:auth:scope:auth.globus.org:manage_projects"}


def stored_tokens(endpoint: OfficialEndpoint) -> dict[str, dict[str, Any]]:
    """The tokens the official SDK stored for the endpoint, by resource server."""
    import json

    path = endpoint.user.home / ".globus_compute" / "storage.db"
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT resource_server, token_data_json FROM token_storage")
        return {server: json.loads(data) for server, data in rows}


def registered(endpoint: OfficialEndpoint) -> list[dict[str, Any]]:
    mine = endpoint.farcall.api().call("GET", "/v2/endpoints")
    assert mine or endpoint.exited() is None, f"start ended unregistered:\n{endpoint.logs()}"
    return [ep for ep in mine if ep["name"] == endpoint.name]


def test_it_logs_in_with_client_credentials_and_registers_as_the_clients_owner(
    official_endpoint: OfficialEndpoint,
) -> None:
    endpoint, farcall = official_endpoint, official_endpoint.farcall
    endpoint.start()
    [found] = wait_for(
        lambda: registered(endpoint), timeout=180, what="the endpoint's registration"
    )
    assert found["owner"] == farcall.user_id, endpoint.logs()

    # Its `login` asks for every scope it requires in one client-credentials call
    # (starting asks per resource server, as each is first needed).
    login = endpoint.run("login", "--force")
    assert login.returncode == 0, login.stderr + login.stdout
    tokens = stored_tokens(endpoint)
    assert set(tokens) == {"funcx_service", "auth.globus.org"}, tokens
    assert tokens["funcx_service"]["scope"].split() == [COMPUTE_SCOPE]
    assert set(tokens["auth.globus.org"]["scope"].split()) == AUTH_SCOPES
    assert all(t.get("refresh_token") is None for t in tokens.values())  # none for clients

    # Its identity set, read from userinfo as a non-privileged endpoint reads it: alice.
    whoami = endpoint.run("whoami", "--linked-identities")
    assert whoami.returncode == 0, whoami.stderr + whoami.stdout
    [row] = [line for line in whoami.stdout.splitlines() if farcall.user_id in line]
    assert farcall.user_name in row


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_endpoints_user_leaves_nothing_behind() -> None:
    """What the fixture removes: the user's processes (a daemon that left its session
    too), the user and its home."""
    problem = can_make_users()
    if problem is not None:
        unavailable(problem)
    user = PosixUser.create()
    try:
        subprocess.run(
            ["setsid", "-f", "sleep", "600"],
            user=user.uid,
            group=user.gid,
            extra_groups=[],
            cwd=user.home,
            check=True,
            timeout=30,
        )
        [daemon] = user.pids()
    finally:
        user.remove()
    # (not user.pids(): once the user is gone, its uid may be another test's user)
    assert not alive(daemon)
    assert not user.home.exists()
    assert user.name not in {entry.pw_name for entry in pwd.getpwall()}
