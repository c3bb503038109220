"""RFC 8693 token exchange of a refresh token for a second, independent login (what an
endpoint keeps as its own): logging out of either leaves the other alone."""

from __future__ import annotations

import pytest
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_testkit.service import COMPUTE_SCOPE, code_from, pkce_pair, sign_in
from fastapi.testclient import TestClient

AUTH = "http://testserver/auth"
TOKEN = "/auth/v2/oauth2/token"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
REFRESH_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


@pytest.fixture
def login(client: TestClient, ctx: ServiceContext):
    admin.add_user(ctx.store, "alice", "correct horse")

    def make() -> dict:
        verifier, challenge = pkce_pair()
        code = code_from(sign_in(client, AUTH, "alice", "correct horse", challenge=challenge,
                                 scope=COMPUTE_SCOPE, offline=True))
        answer = client.post(TOKEN, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "client_id": NATIVE_CLIENT_ID, "redirect_uri": AUTH + "/v2/web/auth-code"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    return make


def _own(client: TestClient, subject: str, kind: str = REFRESH_TYPE):
    return client.post(TOKEN, data={"grant_type": EXCHANGE, "subject_token": subject,
                                    "subject_token_type": kind, "client_id": NATIVE_CLIENT_ID})


def _works(client: TestClient, access: str) -> bool:
    answer = client.get("/v2/endpoints", headers={"Authorization": f"Bearer {access}"})
    return answer.status_code == 200


def test_a_second_login_outlives_the_first_ones_logout(client, login) -> None:
    first = login()
    answer = _own(client, first["refresh_token"])
    assert answer.status_code == 200, answer.text
    second = answer.json()
    assert second["refresh_token"] not in (first["refresh_token"], None)
    assert second["scope"] == first["scope"] and _works(client, second["access_token"])
    # The first login's refresh token is not spent by the exchange: it still renews.
    renewed = client.post(TOKEN, data={"grant_type": "refresh_token", "client_id":
                                       NATIVE_CLIENT_ID, "refresh_token": first["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    # Logging out of the first login (revoking its refresh token) ends it, not the second.
    client.post(TOKEN + "/revoke", data={"token": renewed.json()["refresh_token"],
                                         "client_id": NATIVE_CLIENT_ID})
    assert not _works(client, renewed.json()["access_token"])
    assert _works(client, second["access_token"])


def test_only_a_live_refresh_token_of_the_same_client_is_exchanged(client, login) -> None:
    tokens = login()
    access_type = "urn:ietf:params:oauth:token-type:access_token"
    for subject, kind in ((tokens["access_token"], REFRESH_TYPE),
                          (tokens["refresh_token"], access_type),
                          ("fcr_not-a-token", REFRESH_TYPE)):
        answer = _own(client, subject, kind)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] in ("invalid_request", "invalid_grant")
    client.post(TOKEN + "/revoke", data={"token": tokens["refresh_token"],
                                         "client_id": NATIVE_CLIENT_ID})
    answer = _own(client, tokens["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
