"""Ending sessions: static tokens revoked, members and users removed, a password change
ending the user's OAuth logins; each refused by the service at once (its caches are
off here: ``test_revocation_process.py`` shows the bound a running service keeps)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from farcall.cli import cli
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_testkit.service import (
    COMPUTE_SCOPE,
    assert_error,
    code_from,
    hold_next_call,
    pkce_pair,
    sign_in,
)
from fastapi.testclient import TestClient

AUTH = "http://testserver/auth"
TOKEN = "/auth/v2/oauth2/token"
REDIRECT = AUTH + "/v2/web/auth-code"


@pytest.fixture
def run(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``farcall server ARGS`` on the service's own database."""
    monkeypatch.setenv("FARCALL_HOME", str(ctx.settings.home))
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        result = runner.invoke(cli, ["server", *args, "--db", ctx.settings.database_url],
                               input=stdin, catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result.output.strip()

    return invoke


def _login(client: TestClient, name: str, password: str) -> dict:
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(client, AUTH, name, password, challenge=challenge,
                             scope=f"{COMPUTE_SCOPE} openid"))
    answer = client.post(TOKEN, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refresh(client: TestClient, refresh_token: str):
    return client.post(TOKEN, data={"grant_type": "refresh_token",
                                    "refresh_token": refresh_token,
                                    "client_id": NATIVE_CLIENT_ID})


def _bearer(client: TestClient, token: str) -> int:
    return client.get("/v2/endpoints", headers={"Authorization": f"Bearer {token}"}).status_code


def test_static_tokens_are_listed_without_their_secret_and_revoked(
        client: TestClient, make_caller, run) -> None:
    alice, bob = make_caller("alice"), make_caller("bob")
    second = run("token", "create", "alice")
    listed = run("token", "list", "alice").splitlines()
    assert len(listed) == 2 and all(line.endswith("  alice") for line in listed)
    ids = [line.split()[0] for line in listed]
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    everyone = run("token", "list")
    assert len(everyone.splitlines()) == 3 and "bob" in everyone
    for secret in (alice.token, bob.token, second):
        assert secret not in everyone and secret[3:] not in everyone

    first_id = admin.token_id(admin.hash_token(alice.token))
    assert run("token", "revoke", first_id) == f"token {first_id} of alice revoked"
    assert_error(alice.get("/v2/endpoints"), 401, "UNAUTHORIZED")
    assert _bearer(client, second) == 200 and bob.get("/v2/endpoints").status_code == 200
    assert run("token", "list", "alice").split()[0] != first_id
    # The token itself, from standard input, names it too.
    run("token", "revoke", "--token-stdin", stdin=second + "\n")
    assert _bearer(client, second) == 401
    assert "no such token" in run("token", "revoke", first_id, ok=False)
    assert "hex digits" in run("token", "revoke", "abc", ok=False)
    assert "no user" in run("token", "list", "nobody", ok=False)


def test_a_removed_member_loses_the_group_s_functions(make_caller, run) -> None:
    owner = make_caller("owner", groups=("team",))
    member = make_caller("member", groups=("team",))
    group_id = run("group", "add-member", "team", "owner").rsplit("(", 1)[1].rstrip(")")
    shared = owner.register_function(group=group_id)
    endpoint = owner.register_endpoint("ep", public=True)
    assert member.get(f"/v2/functions/{shared}").status_code == 200
    assert member.submit(endpoint, shared, 1).status_code == 200
    assert run("group", "remove-member", "team", "member") == (
        f"member is no longer a member of team ({group_id})")
    assert_error(member.get(f"/v2/functions/{shared}"), 404, "FUNCTION_NOT_FOUND")
    assert_error(member.submit(endpoint, shared, 1), 404, "FUNCTION_NOT_FOUND")
    assert owner.get(f"/v2/functions/{shared}").status_code == 200
    assert "not a member" in run("group", "remove-member", "team", "member", ok=False)
    assert "no group" in run("group", "remove-member", "nope", "member", ok=False)


def test_removing_a_user_is_refused_while_they_hold_things_then_forced(
        client: TestClient, ctx: ServiceContext, make_caller, run) -> None:
    owner, other = make_caller("owner"), make_caller("other")
    function = owner.register_function(public=True)
    endpoint = owner.register_endpoint("shared", public=True)
    queued = other.submit(endpoint, function, 1).json()["tasks"][function][0]
    robot = admin.create_client(ctx.store, "owner", "robot")
    robot_token = client.post(TOKEN, data={"grant_type": "client_credentials"},
                              auth=(robot[0].id, robot[1])).json()["access_token"]
    assert _bearer(client, robot_token) == 200

    refused = run("user", "remove", "owner", ok=False)
    assert "1 function, 1 endpoint, 1 OAuth client" in refused and "--force" in refused
    assert owner.get("/v2/endpoints").status_code == 200  # nothing changed

    done = run("user", "remove", "owner", "--force")
    assert done == "user owner removed (and 1 function, 1 endpoint, 1 OAuth client)"
    assert_error(owner.get("/v2/endpoints"), 401, "UNAUTHORIZED")
    assert _bearer(client, robot_token) == 401
    again = client.post(TOKEN, data={"grant_type": "client_credentials"},
                        auth=(robot[0].id, robot[1]))
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    # What others used of theirs is gone, and their queued task failed, saying why.
    assert_error(other.get(f"/v2/functions/{function}"), 404, "FUNCTION_NOT_FOUND")
    assert_error(other.get(f"/v2/endpoints/{endpoint}"), 404, "ENDPOINT_NOT_FOUND")
    task = other.get(f"/v2/tasks/{queued}").json()
    assert task["status"] == "failed" and "was removed" in task["exception"]
    assert other.get("/v2/endpoints").status_code == 200
    assert "no user" in run("user", "remove", "owner", ok=False)
    assert "taken" in run("user", "add", "owner", ok=False)  # a name is not reused
    assert "no user" in run("token", "create", "owner", ok=False)


def test_removing_a_user_fails_their_tasks_on_others_endpoints(
        ctx: ServiceContext, make_caller, run) -> None:
    host, guest = make_caller("host"), make_caller("guest")
    endpoint = host.register_endpoint("shared", public=True)
    function = host.register_function(public=True)
    task = guest.submit(endpoint, function, 1).json()["tasks"][function][0]
    assert "1 unfinished task" in run("user", "remove", "guest", ok=False)
    run("user", "remove", "guest", "--force")
    failed = ctx.store.get_task(task)
    assert failed is not None and failed.status == "failed" and failed.exception == (
        admin.REMOVED_REASON)
    assert host.get(f"/v2/endpoints/{endpoint}").status_code == 200  # the host's stays
    quiet = make_caller("quiet")
    assert run("user", "remove", "quiet") == "user quiet removed"
    assert_error(quiet.get("/v2/endpoints"), 401)


def test_a_password_change_ends_the_user_s_oauth_logins(
        client: TestClient, ctx: ServiceContext, make_caller, run) -> None:
    admin.add_user(ctx.store, "alice", "old password")
    bob = make_caller("bob")
    admin.set_password(ctx.store, "bob", "bob's password")
    before = _login(client, "alice", "old password")
    bobs = _login(client, "bob", "bob's password")
    static = admin.create_token(ctx.store, "alice")
    # A code signed in for but not yet exchanged is ended too.
    verifier, challenge = pkce_pair()
    pending = code_from(sign_in(client, AUTH, "alice", "old password", challenge=challenge))

    said = run("user", "set-password", "alice", "--password-stdin", stdin="new password\n")
    assert re.fullmatch(r"password set for alice; their OAuth logins ended \(\d+ live "
                        r"tokens revoked\)", said), said
    refused = _refresh(client, before["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert _bearer(client, before["access_token"]) == 401
    late = client.post(TOKEN, data={
        "grant_type": "authorization_code", "code": pending, "code_verifier": verifier,
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    # Static tokens are revoked by name only; other users keep their logins.
    assert _bearer(client, static) == 200
    assert _refresh(client, bobs["refresh_token"]).status_code == 200
    assert bob.get("/v2/endpoints").status_code == 200
    after = _login(client, "alice", "new password")
    assert _refresh(client, after["refresh_token"]).status_code == 200


def test_a_refresh_under_way_when_the_password_changes_is_taken_back(
        client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh token is spent, then the password changes before the new tokens are
    kept: they would outlive the change unless taken back."""
    admin.add_user(ctx.store, "alice", "old password")
    before = _login(client, "alice", "old password")
    begun, release = hold_next_call(monkeypatch, ctx.store, "save_oauth_tokens")
    answers: list = []
    refreshing = threading.Thread(
        target=lambda: answers.append(_refresh(client, before["refresh_token"])))
    refreshing.start()
    assert begun.wait(30)
    admin.set_password(ctx.store, "alice", "new password")
    release.set()
    refreshing.join(30)
    (answer,) = answers
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"
    assert "password changed" in answer.json()["error_description"]
    live = [t for t in _issued(ctx, "alice") if not t.revoked]
    assert live == []


def test_a_code_exchange_under_way_when_the_password_changes_is_taken_back(
        client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    admin.add_user(ctx.store, "alice", "old password")
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(client, AUTH, "alice", "old password", challenge=challenge))
    begun, release = hold_next_call(monkeypatch, ctx.store, "save_oauth_tokens")
    answers: list = []
    exchanging = threading.Thread(target=lambda: answers.append(client.post(TOKEN, data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT})))
    exchanging.start()
    assert begun.wait(30)
    admin.set_password(ctx.store, "alice", "new password")
    release.set()
    exchanging.join(30)
    (answer,) = answers
    assert answer.status_code == 400, answer.text
    assert "password changed" in answer.json()["error_description"]
    assert [t for t in _issued(ctx, "alice") if not t.revoked] == []


def _issued(ctx: ServiceContext, name: str) -> list:
    import sqlalchemy as sa
    from farcall_service.storage import schema

    user = ctx.store.get_user(name)
    assert user is not None
    engine = sa.create_engine(ctx.settings.database_url)
    try:
        with engine.connect() as conn:
            hashes = conn.execute(sa.select(schema.oauth_tokens.c.token_hash).where(
                schema.oauth_tokens.c.user_id == user.id)).scalars().all()
    finally:
        engine.dispose()
    return [ctx.store.get_oauth_token(h) for h in hashes]


def test_deleting_a_client_ends_static_tokens_of_its_identity(
        client: TestClient, ctx: ServiceContext, make_caller, run) -> None:
    make_caller("alice")
    robot, _secret = admin.create_client(ctx.store, "alice", "robot")
    static = run("token", "create", f"{robot.id}@clients.farcall")
    assert _bearer(client, static) == 200
    run("client", "delete", robot.id)
    assert _bearer(client, static) == 401
