"""Redirect URIs are parsed as a browser would read them; the sign-in page names the
application that asks."""

from __future__ import annotations

import re

import pytest
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_service.oauth.clients import redirect_allowed
from farcall_testkit.service import COMPUTE_SCOPE, pkce_pair
from fastapi.testclient import TestClient

HOST = "testserver"
CODE_PAGE = "http://testserver/auth/v2/web/auth-code"


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1/cb",
    "http://127.0.0.1:8123/callback?x=1",
    "http://localhost:9000/",
    "http://[::1]:9000/cb",
    CODE_PAGE,
])
def test_loopback_and_the_code_page_are_allowed(uri: str) -> None:
    assert redirect_allowed(uri, HOST)


@pytest.mark.parametrize("uri", [
    "http://evil.example\\@127.0.0.1/cb",     # a browser goes to evil.example
    "http://evil.example\\\\@127.0.0.1/cb",
    "http:\\\\evil.example\\cb",
    "http:/\\127.0.0.1/cb",
    "http://user:pw@127.0.0.1/cb",            # credentials before the host
    "http://evil.example@127.0.0.1/cb",
    "http://127.0.0.1\t.evil.example/cb",     # WHATWG drops the tab
    "http://127.0.0.1\n/cb",
    "http://127.0.0.1 /cb",
    "http://127.0.0.1/cb#fragment",
    "http://%6cocalhost/cb",
    "http://127.0.0.1:99999/cb",
    "http://127.0.0.1:x/cb",
    "http:127.0.0.1/cb",
    "https://127.0.0.1/cb",
    "http://localhost.evil.example/cb",
    "http://127.0.0.1.nip.io/cb",
    "javascript://127.0.0.1/%0aalert(1)",
    "http://ｌocalhost/cb",
    "https://evil.example/auth/v2/web/auth-code",
])
def test_uris_a_browser_could_read_otherwise_are_refused(uri: str) -> None:
    assert not redirect_allowed(uri, HOST)


def test_the_authorize_page_refuses_the_backslash_uri(client: TestClient) -> None:
    _verifier, challenge = pkce_pair()
    page = client.get("/auth/v2/oauth2/authorize", params={
        "client_id": NATIVE_CLIENT_ID, "redirect_uri": "http://evil.example\\@127.0.0.1/cb",
        "scope": COMPUTE_SCOPE, "response_type": "code", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert page.status_code == 400 and "redirect_uri is not allowed" in page.text


def _page(client: TestClient, client_id: str, redirect: str = CODE_PAGE) -> str:
    _verifier, challenge = pkce_pair()
    page = client.get("/auth/v2/oauth2/authorize", params={
        "client_id": client_id, "redirect_uri": redirect, "scope": COMPUTE_SCOPE,
        "response_type": "code", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert page.status_code == 200, page.text
    found = re.search(r"<strong id='client'>([^<]*)</strong>", page.text)
    assert found, page.text
    return found.group(1)


def test_the_sign_in_page_names_the_client(client: TestClient, ctx: ServiceContext) -> None:
    assert "farcall&#x27;s own app" in _page(client, NATIVE_CLIENT_ID)
    admin.add_user(ctx.store, "carol")
    created, _secret = admin.create_client(ctx.store, "carol", "Nightly <Reports>")
    named = _page(client, created.id)
    assert "Nightly &lt;Reports&gt;" in named  # escaped
    assert "registered with this service" in named
    assert created.id in named and "owned by carol" in named
