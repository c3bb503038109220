"""The dashboard in-process: signing in through the login page, the session cookie and
CSRF, each page, and what another user sees (nothing of the first's)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from farcall.serialize import Serializer
from farcall_service import admin
from farcall_service.context import ServiceContext
from farcall_service.oauth.clients import redirect_allowed
from farcall_testkit.service import Caller
from fastapi.testclient import TestClient

PASSWORD = "a long dashboard password"


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Through /dashboard/sign-in and the real login form; the session cookie."""
    client.cookies.clear()
    start = client.get("/dashboard/sign-in", follow_redirects=False)
    assert start.status_code == 303
    form_page = client.get(start.headers["location"])
    assert form_page.status_code == 200, form_page.text
    fields = dict(re.findall(r"name='([a-z_]+)' value='([^']*)'", form_page.text))
    fields.update(username=name, password=password)
    signed = client.post(start.headers["location"].split("?")[0], data=fields,
                         follow_redirects=False)
    assert signed.status_code == 303, signed.text
    target = urlsplit(signed.headers["location"])
    assert target.path == "/dashboard/callback"
    back = client.get(f"{target.path}?{target.query}", follow_redirects=False)
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/dashboard/endpoints"
    cookie = back.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/dashboard" in cookie
    assert ("Secure" in cookie) == (str(client.base_url).startswith("https"))
    return client.cookies["farcall_session"]


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert found, page
    return found.group(1)


@pytest.fixture
def people(ctx: ServiceContext, make_caller: Callable[..., Caller]) -> dict[str, Caller]:
    found = {name: make_caller(name) for name in ("alice", "bob")}
    for name in found:
        admin.set_password(ctx.store, name, PASSWORD)
    return found


def test_signed_out_pages_offer_the_sign_in(client: TestClient) -> None:
    for path in ("/dashboard/", "/dashboard/tasks", "/dashboard/endpoints"):
        page = client.get(path)
        assert 'id="sign-in"' in page.text
        assert page.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_see_pages_and_sign_out(client: TestClient, people: dict[str, Caller],
                                        ctx: ServiceContext) -> None:
    alice = people["alice"]
    ep, fn = alice.register_endpoint("alice-ep"), alice.register_function(description="sq")
    ids = alice.submit(ep, fn, 3, count=2).json()["tasks"][fn]
    claimed = alice.claim(ep)
    alice.report(ep, [
        {"task_id": claimed[0]["task_id"], "status": "success",
         "result": Serializer(data_strategy="11").serialize({"answer": 9})},
        {"task_id": claimed[1]["task_id"], "status": "failed",
         "exception": "Traceback (most recent call last):\nZeroDivisionError: boom"}])
    token = sign_in(client, "alice")
    assert token.startswith("fca_")

    endpoints = client.get("/dashboard/endpoints")
    assert endpoints.status_code == 200 and "alice-ep" in endpoints.text
    assert "2 of your tasks ended here in the last hour" in endpoints.text
    tasks = client.get("/dashboard/tasks", params={"status": "failed"})
    assert claimed[1]["task_id"] in tasks.text and claimed[0]["task_id"] not in tasks.text
    failed = client.get(f"/dashboard/tasks/{claimed[1]['task_id']}")
    assert "ZeroDivisionError: boom" in failed.text and "submitted" in failed.text
    ok = client.get(f"/dashboard/tasks/{claimed[0]['task_id']}")
    assert "{&#39;answer&#39;: 9}" in ok.text
    functions = client.get("/dashboard/functions", params={"q": "sq"})
    assert "square" in functions.text and "50%" in functions.text
    assert client.get(f"/dashboard/functions/{fn}").status_code == 200
    assert client.get(f"/dashboard/endpoints/{ep}").status_code == 200
    group = client.get(f"/dashboard/groups/{alice.submit(ep, fn, 1).json()['task_group_id']}")
    assert "0 of 1 ended" in group.text
    assert set(ids) >= {c["task_id"] for c in claimed}

    # Signing out needs the page's CSRF token; a forged one changes nothing.
    forged = client.post("/dashboard/sign-out", data={"csrf_token": "0" * 64},
                         follow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert client.get("/dashboard/tasks").status_code == 200
    out = client.post("/dashboard/sign-out", data={"csrf_token": csrf(endpoints.text)},
                      follow_redirects=False)
    assert out.status_code == 303
    # The token is revoked: replaying the old cookie gets the sign-in page.
    client.cookies.set("farcall_session", token, path="/dashboard")
    assert client.get("/dashboard/tasks").status_code == 401


def test_a_pickled_result_is_described_not_read(client: TestClient,
                                                people: dict[str, Caller]) -> None:
    alice = people["alice"]
    ep, fn = alice.register_endpoint(), alice.register_function()
    alice.submit(ep, fn, 1)
    [task] = alice.claim(ep)
    pickled = "01\nZGlsbCBwaWNrbGUgd291bGQgcnVuIGNvZGU="
    alice.report(ep, [{"task_id": task["task_id"], "status": "success", "result": pickled}])
    sign_in(client, "alice")
    page = client.get(f"/dashboard/tasks/{task['task_id']}")
    assert page.status_code == 200 and "does not read" in page.text


def test_another_user_sees_none_of_it(client: TestClient, people: dict[str, Caller]) -> None:
    alice = people["alice"]
    ep = alice.register_endpoint("alice-secret-ep")
    fn = alice.register_function(description="alice-secret-fn")
    [task] = alice.submit(ep, fn, 2).json()["tasks"][fn]
    # On a public endpoint, bob sees it, but no count or chart of alice's tasks there.
    shared = alice.register_endpoint("shared-ep", public=True)
    public_fn = alice.register_function(public=True)
    alice.submit(shared, public_fn, 1, count=3)
    claimed = alice.claim(shared)
    alice.report(shared, [{"task_id": t["task_id"], "status": "failed", "exception": "x"}
                          for t in claimed[:2]])
    alice.claim(shared, "s2")
    sign_in(client, "alice")
    assert "2 of your tasks ended here" in client.get("/dashboard/endpoints").text
    sign_in(client, "bob")
    listed = client.get("/dashboard/endpoints").text
    assert "shared-ep" in listed and "0 of your tasks ended here" in listed
    row = listed[listed.index("shared-ep"):]
    assert re.search(r'<td class="num">0</td>\s*<td class="num">0</td>', row), row[:800]
    public_page = client.get(f"/dashboard/functions/{public_fn}").text
    assert 'id="runs">0<' in public_page and claimed[0]["task_id"] not in public_page
    for path in ("/dashboard/endpoints", "/dashboard/tasks", "/dashboard/functions"):
        page = client.get(path)
        assert page.status_code == 200
        assert "alice-secret" not in page.text and task not in page.text
    for kind, thing in (("endpoints", ep), ("functions", fn), ("tasks", task)):
        seen = client.get(f"/dashboard/{kind}/{thing}")
        absent = client.get(f"/dashboard/{kind}/00000000-0000-4000-8000-000000000000")
        assert seen.status_code == absent.status_code == 404
        assert seen.text.replace(thing, "<id>") == absent.text.replace(
            "00000000-0000-4000-8000-000000000000", "<id>")


def test_pages_of_tasks_and_bad_filters(client: TestClient, people: dict[str, Caller]) -> None:
    alice = people["alice"]
    ep, fn = alice.register_endpoint(), alice.register_function()
    ids = alice.submit(ep, fn, 1, count=60).json()["tasks"][fn]
    sign_in(client, "alice")
    first = client.get("/dashboard/tasks")
    older = re.search(r'href="(/dashboard/tasks\?[^"]*before=\d+)"', first.text)
    assert older, first.text
    second = client.get(older.group(1).replace("&amp;", "&"))
    shown = {i for i in ids if i in first.text} | {i for i in ids if i in second.text}
    assert len(shown) == 60 and 'id="next-page"' not in second.text
    bad = client.get("/dashboard/tasks", params={"status": "nope"})
    assert bad.status_code == 400 and "BAD_QUERY" in bad.text
    assert client.get("/dashboard/tasks", params={"before": "x"}).status_code == 400
    assert client.get("/dashboard/tasks", params={"function": "nope"}).status_code == 400
    assert client.get("/dashboard/tasks", params={"since": "2y"}).status_code == 400
    assert client.get("/dashboard/functions", params={"offset": "-1"}).status_code == 400
    assert client.get("/dashboard/tasks/not-a-uuid").status_code == 404


def test_the_callback_refuses_a_sign_in_it_did_not_start(client: TestClient) -> None:
    answer = client.get("/dashboard/callback", params={"code": "fcc_x", "state": "y"})
    assert answer.status_code == 400 and "SIGN_IN_FAILED" in answer.text
    assert "farcall_session" not in client.cookies


def test_admin_pages_are_for_admins_and_revoke_tokens(
        client: TestClient, ctx: ServiceContext, people: dict[str, Caller]) -> None:
    admin.add_user(ctx.store, "root", PASSWORD, is_admin=True)
    admin.add_group(ctx.store, "lab")
    admin.add_member(ctx.store, "lab", "bob")
    admin.create_client(ctx.store, "alice", "alice's robot")
    bob = people["bob"]

    sign_in(client, "alice")
    refused = client.get("/dashboard/admin")
    assert refused.status_code == 403 and "ADMIN_ONLY" in refused.text
    assert 'href="/dashboard/admin"' not in client.get("/dashboard/tasks").text
    page_token = csrf(client.get("/dashboard/tasks").text)
    token_id = admin.token_id(admin.list_tokens(ctx.store, "bob")[0].token_hash)
    denied = client.post("/dashboard/admin/tokens/revoke",
                         data={"csrf_token": page_token, "token_id": token_id})
    assert denied.status_code == 403
    assert bob.get("/v2/functions").status_code != 401  # still stands

    sign_in(client, "root")
    overview = client.get("/dashboard/admin")
    assert overview.status_code == 200
    for shown in ("alice", "bob", "root", "lab", "alice&#39;s robot", token_id):
        assert shown in overview.text
    forged = client.post("/dashboard/admin/tokens/revoke",
                         data={"csrf_token": "f" * 64, "token_id": token_id})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert bob.get("/v2/endpoints").status_code == 200
    revoked = client.post("/dashboard/admin/tokens/revoke", follow_redirects=False,
                          data={"csrf_token": csrf(overview.text), "token_id": token_id})
    assert revoked.status_code == 303, revoked.text
    assert bob.get("/v2/endpoints").status_code == 401
    assert f"Token {token_id} revoked" in client.get(revoked.headers["location"]).text

    # A role taken away ends at the next page.
    ctx.store.set_admin(admin.find_user(ctx.store, "root").id, False)
    assert client.get("/dashboard/admin").status_code == 403


def test_over_https_the_cookies_are_secure_and_the_callback_is_allowed(
        client: TestClient, people: dict[str, Caller]) -> None:
    """A service reached at a name that is not loopback (here https://testserver): the
    dashboard's own callback is an allowed redirect, and its cookies are Secure."""
    client.base_url = "https://testserver"  # type: ignore[assignment]
    start = client.get("/dashboard/sign-in", follow_redirects=False)
    assert "secure" in start.headers["set-cookie"].lower()
    assert "redirect_uri=https%3A%2F%2Ftestserver%2Fdashboard%2Fcallback" in \
        start.headers["location"]
    assert sign_in(client, "alice").startswith("fca_")
    assert client.get("/dashboard/tasks").status_code == 200
    assert not redirect_allowed("https://evil.example/dashboard/callback", "testserver")
