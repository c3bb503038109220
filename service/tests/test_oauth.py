"""The OAuth2 provider in-process: the login form, every grant, and how each refusal reads."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_service.oauth.passwords import hash_password, verify_password
from farcall_testkit.service import (
    COMPUTE_SCOPE,
    Caller,
    code_from,
    pkce_pair,
    sign_in,
)
from fastapi.testclient import TestClient

AUTH = "http://testserver/auth"
TOKEN = "/auth/v2/oauth2/token"
REDIRECT = AUTH + "/v2/web/auth-code"


@pytest.fixture
def alice_pw(ctx: ServiceContext) -> str:
    admin.add_user(ctx.store, "alice", "correct horse")
    return "correct horse"


def _exchange(client: TestClient, code: str, verifier: str, **extra: str):
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT, **extra}
    return client.post(TOKEN, data=form)


def _login(client: TestClient, offline: bool = True) -> dict:
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(client, AUTH, "alice", "correct horse", challenge=challenge,
                             scope=f"{COMPUTE_SCOPE} openid", offline=offline))
    answer = _exchange(client, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refused(answer, error: str, words: str) -> None:
    assert answer.status_code in (400, 401), answer.text
    body = answer.json()
    assert body["error"] == error, body
    assert words in body["error_description"], body


def test_passwords_are_scrypt_hashes() -> None:
    secret = "correct horse battery staple"
    stored = hash_password(secret)
    assert stored.startswith("scrypt$") and secret not in stored
    assert stored != hash_password(secret), "each hash has its own salt"
    assert verify_password(secret, stored)
    assert not verify_password(secret.upper(), stored)
    assert not verify_password(secret, None)


def test_native_login_issues_tokens_that_work_everywhere(client, alice_pw) -> None:
    tokens = _login(client)
    assert tokens["resource_server"] == "funcx_service"
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    assert tokens["refresh_token"]
    [auth] = tokens["other_tokens"]
    assert auth["resource_server"] == "auth.globus.org"
    user = Caller(client, "", tokens["access_token"])
    assert user.get("/v2/endpoints").status_code == 200
    assert user.register_function()
    info = client.get("/auth/v2/oauth2/userinfo",
                      headers={"Authorization": f"Bearer {auth['access_token']}"}).json()
    assert info["preferred_username"] == "alice"
    wrong_audience = client.get("/v2/endpoints",
                                headers={"Authorization": f"Bearer {auth['access_token']}"})
    assert wrong_audience.status_code == 401
    assert "issued for auth.globus.org" in wrong_audience.json()["message"]


def test_wrong_password_is_refused_on_the_page(client, alice_pw) -> None:
    _verifier, challenge = pkce_pair()
    answer = sign_in(client, AUTH, "alice", "wrong", challenge=challenge)
    assert answer.status_code == 401
    assert "Wrong user name or password." in answer.text
    answer = sign_in(client, AUTH, "nobody", "wrong", challenge=challenge)
    assert "Wrong user name or password." in answer.text


def test_forged_csrf_token_is_refused(client, alice_pw) -> None:
    _verifier, challenge = pkce_pair()
    page = client.get("/auth/v2/oauth2/authorize", params={
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 200 and "csrf_token" in page.text
    form = {"client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
            "code_challenge": challenge, "code_challenge_method": "S256",
            "csrf_token": "forged-forged-forged-forged-forged-forged",
            "username": "alice", "password": alice_pw}
    answer = client.post("/auth/v2/oauth2/authorize", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert "CSRF check failed" in answer.text


def test_authorize_refuses_bad_requests_without_redirecting(client) -> None:
    _verifier, challenge = pkce_pair()
    base = {"client_id": NATIVE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
            "code_challenge": challenge, "code_challenge_method": "S256"}
    cases = [
        ({"client_id": "00000000-0000-0000-0000-000000000000"}, "Unknown client_id"),
        ({"redirect_uri": "https://evil.example/steal"}, "redirect_uri is not allowed"),
        ({"code_challenge": ""}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"scope": "urn:something:else"}, "unknown scope"),
    ]
    for change, words in cases:
        answer = client.get("/auth/v2/oauth2/authorize", params={**base, **change})
        assert answer.status_code == 400, change
        assert words in answer.text, (change, answer.text)


def test_expired_code_is_refused(client, ctx, alice_pw) -> None:
    ctx.settings = ctx.settings.with_overrides(auth_code_ttl=-1.0)
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(client, AUTH, "alice", alice_pw, challenge=challenge))
    _refused(_exchange(client, code, verifier), "invalid_grant", "has expired")


def test_reused_code_is_refused_and_revokes_its_tokens(client, alice_pw) -> None:
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(client, AUTH, "alice", alice_pw, challenge=challenge))
    first = _exchange(client, code, verifier)
    assert first.status_code == 200
    _refused(_exchange(client, code, verifier), "invalid_grant", "already used")
    answer = client.get("/v2/endpoints",
                        headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert answer.status_code == 401 and "revoked" in answer.json()["message"]


def test_pkce_mismatch_is_refused(client, alice_pw) -> None:
    _verifier, challenge = pkce_pair()
    other, _ = pkce_pair()
    code = code_from(sign_in(client, AUTH, "alice", alice_pw, challenge=challenge))
    _refused(_exchange(client, code, other), "invalid_grant", "PKCE")


def test_refresh_tokens_rotate_and_replay_revokes_the_login(client, alice_pw) -> None:
    tokens = _login(client)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": NATIVE_CLIENT_ID}
    renewed = client.post(TOKEN, data=form)
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert fresh["access_token"] != tokens["access_token"]
    _refused(client.post(TOKEN, data=form), "invalid_grant", "already used or revoked")
    answer = client.get("/v2/endpoints",
                        headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert answer.status_code == 401


def test_expired_revoked_and_malformed_tokens_get_clear_401s(client, ctx, alice_pw) -> None:
    ctx.settings = ctx.settings.with_overrides(access_token_ttl=-1.0)
    expired = _login(client)["access_token"]
    ctx.settings = ctx.settings.with_overrides(access_token_ttl=3600.0)
    tokens = _login(client)
    revoke = client.post("/auth/v2/oauth2/token/revoke",
                         data={"token": tokens["access_token"], "client_id": NATIVE_CLIENT_ID})
    assert revoke.status_code == 200
    cases = {
        expired: "has expired",
        tokens["access_token"]: "has been revoked",
        tokens["refresh_token"]: "refresh token is not a bearer token",
        "fca_" + "x" * 43: "is not valid",
        "not a token!": "malformed",
    }
    for token, words in cases.items():
        answer = client.get("/v2/endpoints", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token
        body = answer.json()
        assert body["code"] == "UNAUTHORIZED" and words in body["message"], (words, body)


def test_client_credentials_act_for_the_clients_owner(
    client, ctx, make_caller: Callable[..., Caller]
) -> None:
    owner = make_caller("carol", groups=("physics",))
    other = make_caller("mallory")
    created, secret = admin.create_client(ctx.store, "carol")
    basic = base64.b64encode(f"{created.id}:{secret}".encode()).decode()
    answer = client.post(TOKEN, data={"grant_type": "client_credentials", "scope": COMPUTE_SCOPE},
                         headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "resource_server", "token_type", "scope",
                         "state", "other_tokens"}
    assert body["resource_server"] == "funcx_service" and body["other_tokens"] == []
    robot = Caller(client, owner.user_id, body["access_token"])
    ep = robot.register_endpoint("robot-ep")
    assert owner.get(f"/v2/endpoints/{ep}").status_code == 200  # the owner's endpoint
    assert other.get(f"/v2/endpoints/{ep}").status_code == 404
    private = other.register_function(description="mallory's own")
    assert robot.get(f"/v2/functions/{private}").status_code == 404
    info = client.get("/auth/v2/oauth2/userinfo", headers=robot.headers).json()
    assert info["sub"] == owner.user_id and info["preferred_username"] == "carol"
    assert [i["sub"] for i in info["identity_set"]] == [owner.user_id]
    wrong = base64.b64encode(f"{created.id}:fcs_wrong".encode()).decode()
    _refused(client.post(TOKEN, data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {wrong}"}),
             "invalid_client", "wrong client secret")
    _refused(client.post(TOKEN, data={"grant_type": "client_credentials",
                                      "client_id": NATIVE_CLIENT_ID}),
             "unauthorized_client", "confidential client")
    introspected = client.post("/auth/v2/oauth2/token/introspect",
                               data={"token": body["access_token"]},
                               headers={"Authorization": f"Basic {basic}"}).json()
    assert introspected["active"] is True and introspected["sub"] == owner.user_id
    assert introspected["client_id"] == created.id
    admin.delete_client(ctx.store, created.id)
    assert robot.get("/v2/endpoints").status_code == 401
    assert owner.get(f"/v2/endpoints/{ep}").status_code == 200  # the endpoint stays


def test_the_official_endpoints_grant_in_one_call(client, ctx, make_caller) -> None:
    """The official endpoint asks for the compute scope with ``openid`` and
    ``manage_projects`` at once, then reads its identity set with the Auth token."""
    owner = make_caller("olga")
    created, secret = admin.create_client(ctx.store, "olga")
    basic = base64.b64encode(f"{created.id}:{secret}".encode()).decode()
    scope = f"{COMPUTE_SCOPE} openid urn:globus:auth:scope:auth.globus.org:manage_projects"
    body = client.post(TOKEN, data={"grant_type": "client_credentials", "scope": scope},
                       headers={"Authorization": f"Basic {basic}"}).json()
    assert body["resource_server"] == "funcx_service" and body["scope"] == COMPUTE_SCOPE
    [auth] = body["other_tokens"]
    assert auth["resource_server"] == "auth.globus.org"
    assert auth["scope"] == "openid urn:globus:auth:scope:auth.globus.org:manage_projects"
    info = client.get("/auth/v2/oauth2/userinfo",
                      headers={"Authorization": f"Bearer {auth['access_token']}"}).json()
    assert [(i["sub"], i["username"]) for i in info["identity_set"]] == [(owner.user_id, "olga")]
    refused = client.get("/v2/endpoints",
                         headers={"Authorization": f"Bearer {auth['access_token']}"})
    assert refused.status_code == 401 and "auth.globus.org" in refused.json()["message"]


def test_sharing_holds_for_oauth_identities(client, ctx, make_caller) -> None:
    make_caller("dave", groups=("physics",))
    owner = make_caller("erin")
    admin.add_user(ctx.store, "alice", "correct horse")
    admin.add_member(ctx.store, "physics", "alice")
    group_id = ctx.store.get_group("physics").id
    dave = make_caller("frank", groups=("physics",))
    shared = dave.register_function(group=group_id, description="shared fn")
    private = dave.register_function(description="private fn")
    alice = Caller(client, "", _login(client)["access_token"])
    assert alice.get(f"/v2/functions/{shared}").status_code == 200
    assert alice.get(f"/v2/functions/{private}").status_code == 404
    found = alice.get("/farcall/v1/functions/search", params={"q": "fn"}).json()
    assert [r["function_uuid"] for r in found["results"]] == [shared]
    created, secret = admin.create_client(ctx.store, "alice")
    basic = base64.b64encode(f"{created.id}:{secret}".encode()).decode()
    token = client.post(TOKEN, data={"grant_type": "client_credentials"},
                        headers={"Authorization": f"Basic {basic}"}).json()["access_token"]
    robot = Caller(client, "", token)
    assert robot.get(f"/v2/functions/{shared}").status_code == 200  # alice's groups
    assert robot.get(f"/v2/functions/{private}").status_code == 404
    assert owner.get(f"/v2/functions/{shared}").status_code == 404


def test_password_guessing_is_slowed_down(client, alice_pw) -> None:
    _verifier, challenge = pkce_pair()
    answers = [sign_in(client, AUTH, "alice", f"guess {n}", challenge=challenge)
               for n in range(11)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert answers[10].status_code == 429
    assert "Too many failed sign-ins for this user" in answers[10].text
    assert int(answers[10].headers["retry-after"]) <= 60


def test_identities_answers_for_the_caller_only(client, ctx, make_caller) -> None:
    """The official ``whoami`` looks its own identity up; nobody lists other users."""
    olga, other = make_caller("olga"), make_caller("pavel")
    url = "/auth/v2/api/identities"
    mine = olga.get(url, params={"ids": f"{other.user_id},{olga.user_id}"}).json()
    assert [(i["id"], i["username"]) for i in mine["identities"]] == [(olga.user_id, "olga")]
    assert olga.get(url, params={"usernames": "pavel"}).json() == {"identities": []}
    assert olga.get(url, params={"ids": other.user_id}).json() == {"identities": []}
    refused = client.get(url, params={"ids": olga.user_id})
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
