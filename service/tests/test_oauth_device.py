"""The device authorization grant (RFC 8628) in-process: the device's request, the
verification page, and every answer a poll can get."""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_service.oauth.device import DEVICE_CODE_GRANT, normalize_user_code, user_code_hash
from farcall_service.oauth.throttle import UserCodeThrottle
from farcall_service.tokens import hash_token
from farcall_testkit.service import COMPUTE_SCOPE, Caller, hold_next_call
from fastapi.testclient import TestClient

START = "/auth/v2/oauth2/device_authorization"
PAGE = "/auth/v2/oauth2/device"
TOKEN = "/auth/v2/oauth2/token"
PASSWORDS = {"alice": "alice's device password", "bob": "bob's device password"}
USER_CODE_RE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


@pytest.fixture
def users(ctx: ServiceContext) -> dict[str, str]:
    """alice's and bob's user ids."""
    return {name: admin.add_user(ctx.store, name, password).id
            for name, password in PASSWORDS.items()}


def _start(client: TestClient, **form: str) -> dict[str, Any]:
    answer = client.post(START, data={"client_id": NATIVE_CLIENT_ID,
                                      "scope": f"{COMPUTE_SCOPE} openid profile", **form})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def _poll(client: TestClient, device_code: str, **form: str) -> Any:
    return client.post(TOKEN, data={"grant_type": DEVICE_CODE_GRANT, "device_code": device_code,
                                     "client_id": NATIVE_CLIENT_ID, **form})


def _refused(answer: Any, error: str, words: str, status: int = 400) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert (body["error"], body["code"]) == (error, error.upper()), body
    assert words in body["error_description"] and body["message"], body


def _csrf(page: Any) -> str:
    found = re.search(r"name='csrf_token' value='([^']+)'", page.text)
    assert found is not None, page.text
    return found.group(1)


def _decide(client: TestClient, user_code: str, action: str, username: str = "",
            password: str = "") -> Any:
    """Open the page the complete URL names, then approve or deny there."""
    page = client.get(PAGE, params={"user_code": user_code})
    assert page.status_code == 200, page.text
    form = {"csrf_token": _csrf(page), "user_code": user_code, "action": action,
            "username": username, "password": password}
    return client.post(PAGE, data=form)


def test_a_device_gets_a_short_user_code_and_a_secret_device_code(
        client: TestClient, ctx: ServiceContext, settings: Any) -> None:
    answer = _start(client)
    assert USER_CODE_RE.match(answer["user_code"])
    assert answer["device_code"].startswith("fcd_") and len(answer["device_code"]) > 40
    assert answer["verification_uri"] == "http://testserver" + PAGE
    assert answer["verification_uri_complete"] == (
        f"http://testserver{PAGE}?user_code={answer['user_code']}")
    assert (answer["expires_in"], answer["interval"]) == (600, 5)
    code = normalize_user_code(answer["user_code"].lower().replace("-", " "))
    assert code == answer["user_code"].replace("-", "")
    grant = ctx.store.find_device_grant(user_code_hash(code))
    assert grant is not None and grant.device_code_hash == hash_token(answer["device_code"])
    assert (grant.status, grant.user_id, grant.client_id) == ("pending", None, NATIVE_CLIENT_ID)
    if not settings.db_url:  # the SQLite file: neither code is stored as it is
        stored = b"".join(p.read_bytes() for p in Path(settings.home, "service").iterdir()
                          if p.is_file())
        for secret in (answer["device_code"], code, answer["user_code"]):
            assert secret.encode() not in stored


def test_polls_before_a_decision_are_pending_and_polls_too_fast_slow_down(
        client: TestClient, users: dict[str, str]) -> None:
    device_code = _start(client)["device_code"]
    _refused(_poll(client, device_code), "authorization_pending", "not yet approved")
    # The interval is 5 s; each poll sooner adds 5 s to it (RFC 8628, 3.5).
    _refused(_poll(client, device_code), "slow_down", "wait 10 s between polls")
    _refused(_poll(client, device_code), "slow_down", "wait 15 s between polls")


def test_a_code_approved_by_alice_gives_alice_s_tokens_once(
        client: TestClient, users: dict[str, str]) -> None:
    hers, his = _start(client), _start(client)
    done = _decide(client, hers["user_code"], "approve", "alice", PASSWORDS["alice"])
    assert done.status_code == 200 and "Device login approved" in done.text
    done = _decide(client, his["user_code"].lower().replace("-", ""), "approve", "bob",
                   PASSWORDS["bob"])
    assert "Device login approved" in done.text

    tokens = _poll(client, hers["device_code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["resource_server"] == "funcx_service" and body["refresh_token"]
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    [auth] = body["other_tokens"]
    assert auth["resource_server"] == "auth.globus.org" and auth["scope"] == "openid profile"
    info = client.get("/auth/v2/oauth2/userinfo",
                      headers={"Authorization": f"Bearer {auth['access_token']}"}).json()
    assert (info["sub"], info["preferred_username"]) == (users["alice"], "alice")
    alice = Caller(client, users["alice"], body["access_token"])
    assert alice.get("/v2/endpoints").status_code == 200
    renewed = client.post(TOKEN, data={"grant_type": "refresh_token", "client_id": NATIVE_CLIENT_ID,
                                       "refresh_token": body["refresh_token"]})
    assert renewed.status_code == 200, renewed.text

    [theirs] = _poll(client, his["device_code"]).json()["other_tokens"]
    info = client.get("/auth/v2/oauth2/userinfo",
                      headers={"Authorization": f"Bearer {theirs['access_token']}"})
    assert info.json()["preferred_username"] == "bob"

    # A second use is refused, and (only a thief would replay it) alice's login ends.
    _refused(_poll(client, hers["device_code"]), "invalid_grant", "already used")
    assert alice.get("/v2/endpoints").status_code == 401
    # A decided code is no longer offered on the page.
    again = client.get(PAGE, params={"user_code": hers["user_code"]})
    assert again.status_code == 400 and "not valid" in again.text


def test_a_denied_code_is_answered_access_denied(client: TestClient,
                                                users: dict[str, str]) -> None:
    started = _start(client)
    page = client.get(PAGE, params={"user_code": started["user_code"]})
    assert "farcall&#x27;s own app" in page.text or "farcall's own app" in page.text
    assert COMPUTE_SCOPE in page.text and started["user_code"] in page.text
    done = _decide(client, started["user_code"], "deny")  # no sign-in needed to refuse
    assert done.status_code == 200 and "Device login denied" in done.text
    _refused(_poll(client, started["device_code"]), "access_denied", "denied")
    late = client.get(PAGE, params={"user_code": started["user_code"]})
    assert late.status_code == 400 and "not valid" in late.text


def test_an_expired_device_code_is_answered_expired_token(
        client: TestClient, ctx: ServiceContext, users: dict[str, str]) -> None:
    ctx.settings = ctx.settings.with_overrides(device_code_ttl=-1.0)
    started = _start(client)
    _refused(_poll(client, started["device_code"]), "expired_token", "expired")
    page = client.get(PAGE, params={"user_code": started["user_code"]})
    assert page.status_code == 400 and "not valid" in page.text


def test_only_the_client_that_asked_may_poll(client: TestClient, ctx: ServiceContext,
                                             users: dict[str, str]) -> None:
    robot, secret = admin.create_client(ctx.store, "bob")
    basic = base64.b64encode(f"{robot.id}:{secret}".encode()).decode()
    started = _start(client)
    _decide(client, started["user_code"], "approve", "alice", PASSWORDS["alice"])
    stolen = client.post(TOKEN, headers={"Authorization": f"Basic {basic}"},
                         data={"grant_type": DEVICE_CODE_GRANT,
                               "device_code": started["device_code"]})
    _refused(stolen, "invalid_grant", "another client")
    # The refused poll took nothing: the client that asked still gets alice's tokens.
    assert _poll(client, started["device_code"]).status_code == 200
    # A confidential client may use the flow itself, authenticated with its secret.
    own = client.post(START, headers={"Authorization": f"Basic {basic}"}, data={})
    assert own.status_code == 200 and own.json()["user_code"]


def test_bad_requests_get_clear_oauth_errors(client: TestClient) -> None:
    _refused(client.post(START, data={"client_id": "00000000-0000-0000-0000-000000000000"}),
             "invalid_client", "unknown client id", 401)
    _refused(client.post(START, data={}), "invalid_client", "no client credentials", 401)
    _refused(client.post(START, data={"client_id": NATIVE_CLIENT_ID, "scope": "urn:nope"}),
             "invalid_scope", "unknown scope")
    _refused(_poll(client, ""), "invalid_request", "device_code parameter is missing")
    _refused(_poll(client, "fcd_" + "x" * 43), "invalid_grant", "not valid")


def test_wrong_password_on_the_page_leaves_the_code_pending(
        client: TestClient, users: dict[str, str]) -> None:
    started = _start(client)
    wrong = _decide(client, started["user_code"], "approve", "alice", "not it")
    assert wrong.status_code == 401 and "Wrong user name or password." in wrong.text
    assert started["user_code"] in wrong.text  # the form is shown again, for a retry
    _refused(_poll(client, started["device_code"]), "authorization_pending", "not yet")


def test_a_forged_csrf_token_on_the_page_is_refused(client: TestClient,
                                                   users: dict[str, str]) -> None:
    started = _start(client)
    client.get(PAGE, params={"user_code": started["user_code"]})
    forged = client.post(PAGE, data={"csrf_token": "forged" * 8, "action": "approve",
                                     "user_code": started["user_code"], "username": "alice",
                                     "password": PASSWORDS["alice"]})
    assert forged.status_code == 403 and "CSRF check failed" in forged.text
    _refused(_poll(client, started["device_code"]), "authorization_pending", "not yet")


def test_guessing_user_codes_is_throttled(client: TestClient, users: dict[str, str]) -> None:
    started = _start(client)
    csrf = _csrf(client.get(PAGE))
    guesses = ["BBBB-BBBB", "not a code", *(f"CCCC-CC{a}{b}" for a in "DF" for b in "GHJK")]
    for guess in guesses[:10]:
        wrong = client.post(PAGE, data={"csrf_token": csrf, "user_code": guess})
        assert wrong.status_code == 400 and "not valid" in wrong.text
        csrf = _csrf(wrong)
    # Past the burst, even the right code waits, and says for how long.
    held = client.post(PAGE, data={"csrf_token": csrf, "user_code": started["user_code"]})
    assert held.status_code == 429 and "Too many wrong codes" in held.text
    assert int(held.headers["retry-after"]) >= 1
    assert client.get(PAGE, params={"user_code": started["user_code"]}).status_code == 429


def test_the_code_entry_page_leads_to_the_approval(client: TestClient,
                                                  users: dict[str, str]) -> None:
    started = _start(client)
    entry = client.get(PAGE)
    assert entry.status_code == 200 and "id='user-code'" in entry.text
    assert entry.headers["x-frame-options"] == "DENY"
    typed = started["user_code"].lower()
    shown = client.post(PAGE, data={"csrf_token": _csrf(entry), "user_code": typed,
                                    "action": "lookup"})
    assert shown.status_code == 200 and "Sign in and approve" in shown.text
    assert started["user_code"] in shown.text
    done = client.post(PAGE, data={"csrf_token": _csrf(shown), "user_code": typed,
                                   "action": "approve", "username": "alice",
                                   "password": PASSWORDS["alice"]})
    assert "Device login approved" in done.text
    assert _poll(client, started["device_code"]).status_code == 200


def test_starting_device_logins_is_throttled_per_address(client: TestClient) -> None:
    for _ in range(20):
        _start(client)
    held = client.post(START, data={"client_id": NATIVE_CLIENT_ID})
    _refused(held, "slow_down", "too many device logins", 429)
    assert int(held.headers["retry-after"]) >= 1


def test_a_password_change_ends_approved_and_under_way_device_logins(
        client: TestClient, ctx: ServiceContext, users: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An approved code not yet redeemed is forgotten by a password change; one whose
    tokens are being made at that moment has them taken back."""
    waiting, under_way = _start(client), _start(client)
    for started in (waiting, under_way):
        _decide(client, started["user_code"], "approve", "alice", PASSWORDS["alice"])
    begun, release = hold_next_call(monkeypatch, ctx.store, "save_oauth_tokens")
    answers: list[Any] = []
    polling = threading.Thread(
        target=lambda: answers.append(_poll(client, under_way["device_code"])))
    polling.start()
    assert begun.wait(30)
    admin.set_password(ctx.store, "alice", "a new password")
    release.set()
    polling.join(30)
    (answer,) = answers
    _refused(answer, "invalid_grant", "password changed")
    _refused(_poll(client, waiting["device_code"]), "invalid_grant", "not valid")
    issued = _revoked_flags(ctx, users["alice"])
    assert issued and all(issued), "every token made for the poll under way is revoked"


def _revoked_flags(ctx: ServiceContext, user_id: str) -> list[bool]:
    import sqlalchemy as sa
    from farcall_service.storage import schema

    engine = sa.create_engine(ctx.settings.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(schema.oauth_tokens.c.revoked).where(
                schema.oauth_tokens.c.user_id == user_id)).scalars())
    finally:
        engine.dispose()


def test_the_user_code_throttle_refills_and_brakes_all_addresses() -> None:
    now = [0.0]
    throttle = UserCodeThrottle(address_burst=3, address_refill=30.0, global_burst=5,
                                global_rate=1.0, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.check("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    refused = throttle.check("10.0.0.1")
    assert refused is not None and refused.retry_after == 30
    assert "from your address" in refused.message
    assert throttle.check("10.0.0.2") is None  # another address is not held up
    throttle.failed("10.0.0.2")
    throttle.failed("10.0.0.3")
    everyone = throttle.check("10.0.0.4")
    assert everyone is not None and "on this service" in everyone.message
    now[0] += 30.0
    assert throttle.check("10.0.0.1") is None
