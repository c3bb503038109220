"""Every route of /openapi.json, for every other user (group member, outsider, an OAuth
client of the outsider, which acts for them) and every kind of thing the owner keeps to
themselves: an invisible thing answers exactly like a missing one (same status, same
body but for the id), and no listing, search, batch or wait shows it."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import reliability_kit as kit
import requests
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.settings import Settings
from farcall_service.storage import open_store
from farcall_testkit.service import COMPUTE_SCOPE, Caller, payload
from fastapi.testclient import TestClient

PARAM_KIND = {"function_id": "function", "endpoint_id": "endpoint", "container_id": "container",
              "task_id": "task", "task_group_id": "task_group"}
VIEWERS = ("member", "outsider", "robot")
#: Routes with no id in the path, and how each is probed (see ``BODY_PROBES``).
NO_USER_DATA = {("GET", "/v2/version"), ("GET", "/v2/get_amqp_result_connection_url"),
                ("POST", "/v3/endpoints"), ("POST", "/v2/endpoints"),
                ("POST", "/farcall/v1/containers"),
                # The limits are the service's; an upload makes a new blob of the caller's
                # (submitting another's blob: tests/test_large_values.py).
                ("GET", "/farcall/v1/blobs/limits"), ("POST", "/farcall/v1/blobs")}


@dataclass
class World:
    client: Any  # a TestClient, or _Http to the scaled stack
    callers: dict[str, Caller]
    hidden: dict[str, list[str]]  # kind -> owner's ids some viewer may not see
    fn: dict[str, str]
    ep: dict[str, str]
    group_id: str
    secrets: list[str]  # private names and descriptions


@pytest.fixture(scope="module", params=kit.STACKS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("access")
    with _service(request, home) as (client, store):
        callers: dict[str, Caller] = {}
        for name in ("owner", "member", "outsider"):
            user = admin.add_user(store, name)
            callers[name] = Caller(client, user.id, admin.create_token(store, name))
        group = admin.add_group(store, "team")
        admin.add_member(store, "team", "owner")
        admin.add_member(store, "team", "member")
        robot, secret = admin.create_client(store, "outsider")  # acts for the outsider
        basic = base64.b64encode(f"{robot.id}:{secret}".encode()).decode()
        grant = client.post("/auth/v2/oauth2/token", headers={"Authorization": f"Basic {basic}"},
                            data={"grant_type": "client_credentials", "scope": COMPUTE_SCOPE})
        assert grant.status_code == 200, grant.text
        callers["robot"] = Caller(client, callers["outsider"].user_id,
                                  grant.json()["access_token"])
        owner = callers["owner"]
        fn = {"private": owner.register_function(description="zebra-private"),
              "group": owner.register_function(group=group.id, description="zebra-group"),
              "public": owner.register_function(public=True, description="zebra-public")}
        ep = {"private": owner.register_endpoint("zebra-private-ep"),
              "public": owner.register_endpoint("zebra-public-ep", public=True)}
        container = owner.post("/farcall/v1/containers", json={
            "name": "zebra-box", "type": "venv", "location": "/opt/zebra"}).json()["container_id"]
        submitted = owner.submit(ep["private"], fn["private"], 3, count=2).json()
        task_ids = submitted["tasks"][fn["private"]]
        serve = f"/farcall/v1/endpoints/{ep['private']}"
        owner.post(f"{serve}/claim", json={"session": "s", "max_tasks": 1, "wait": 0})
        from farcall.serialize import Serializer

        owner.post(f"{serve}/results", json={"session": "s", "results": [
            {"task_id": task_ids[0], "status": "success", "result": Serializer().serialize(9)}]})
        hidden = {"function": [fn["private"], fn["group"]], "endpoint": [ep["private"]],
                  "container": [container], "task": task_ids,
                  "task_group": [submitted["task_group_id"]]}
        yield World(client, callers, hidden, fn, ep, group.id,
                    ["zebra-private", "zebra-group", "zebra-box", "/opt/zebra"])


@contextmanager
def _service(request: pytest.FixtureRequest, home: Path) -> Iterator[tuple[Any, Any]]:
    """An HTTP client of the stack under test and its store. The scaled stack's client
    opens a connection per request, so the proxy spreads them over every process."""
    if request.param == "embedded":
        settings = Settings(home=home, cache_ttl=0.0, rate_limit=0, max_claim_wait=0.1)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client, client.app.state.farcall.store  # type: ignore[attr-defined]
        return
    env = {"FARCALL_SERVICE_CACHE_TTL": "0", "FARCALL_SERVICE_MAX_CLAIM_WAIT": "0.1"}
    with kit.any_stack("scaled", request, home, env=env) as stack:
        store, client = open_store(stack.db_url), _Http(stack.url)
        try:
            yield client, store
        finally:
            client.session.close()
            store.close()


class _Http:
    """The test client's calls, over HTTP to ``url``: a connection per request."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Connection"] = "close"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=60, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)


def _routes(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    schema = client.get("/openapi.json").json()
    return [(method.upper(), path, op) for path, ops in schema["paths"].items()
            for method, op in ops.items()]


def _may_see(viewer: str, kind: str, thing_id: str, world: World) -> bool:
    return viewer == "member" and thing_id == world.fn["group"]


def _body_for(method: str, path: str, world: World) -> dict[str, Any] | None:
    if path.endswith("/submit"):
        return {"tasks": {world.fn["public"]: [payload(1)]}}
    if path.endswith("/container"):
        return {"container_id": None}
    if path.endswith("/claim"):
        return {"session": "probe", "max_tasks": 1, "wait": 0}
    if path.endswith("/results"):
        return {"session": "probe", "results": []}
    if path.endswith("/heartbeat"):
        return {"session": "probe"}
    if method == "PUT" and path.startswith("/v3/endpoints/"):
        return {"endpoint_name": "probe"}
    return None


def _call(caller: Caller, method: str, path: str, body: Any) -> Any:
    return caller.request(method, path, **({} if body is None else {"json": body}))


def _masked(answer: Any, thing_id: str) -> tuple[int, str]:
    """Status and body with the asked-for id blanked; a success creating something new
    (a function registered with a reference) is compared by status alone."""
    if answer.status_code == 200 and "function_uuid" in answer.json():
        return 200, ""
    return answer.status_code, answer.text.replace(thing_id, "<id>")


def test_every_route_is_probed(world: World) -> None:
    """A new route fails here until this module says how to probe it."""
    unclassified = [(m, p) for m, p, _op in _routes(world.client)
                    if "{" not in p and (m, p) not in NO_USER_DATA and (m, p) not in BODY_PROBES]
    assert not unclassified, unclassified
    assert all(param in PARAM_KIND for _m, p, _op in _routes(world.client)
               for param in [seg[1:-1] for seg in p.split("/") if seg.startswith("{")])


def test_ids_in_paths(world: World) -> None:
    """Invisible answers exactly like missing, on every route with an id in its path."""
    probes = 0
    leaks: list[str] = []
    for method, path, _op in _routes(world.client):
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if not params:
            continue
        [param] = params
        kind = PARAM_KIND[param]
        body = _body_for(method, path, world)
        for viewer in VIEWERS:
            caller = world.callers[viewer]
            for thing_id in world.hidden[kind]:
                if _may_see(viewer, kind, thing_id, world):
                    continue
                missing = str(uuid.uuid4())
                if method == "PUT" and path == "/v3/endpoints/{endpoint_id}":
                    # Registering a free id creates it; only compare the error shapes.
                    seen = _call(caller, method, path.replace("{" + param + "}", thing_id), body)
                    probes += 1
                    if seen.status_code not in (403, 404) or any(
                            s in seen.text for s in world.secrets):
                        leaks.append(f"{viewer} {method} {path}: {seen.status_code} {seen.text}")
                    continue
                seen = _call(caller, method, path.replace("{" + param + "}", thing_id), body)
                absent = _call(caller, method, path.replace("{" + param + "}", missing), body)
                probes += 1
                if _masked(seen, thing_id) != _masked(absent, missing) or seen.status_code < 400:
                    leaks.append(f"{viewer} {method} {path}: {seen.status_code} {seen.text} "
                                 f"vs missing {absent.status_code} {absent.text}")
    kit.record("access matrix", probes=probes, leaks=len(leaks))
    assert not leaks, "\n".join(leaks[:20])
    assert probes >= 60


def _probe_search(world: World, caller: Caller) -> list[str]:
    found = caller.get("/farcall/v1/functions/search", params={"q": "square", "limit": 100})
    return [json.dumps(found.json())]


def _probe_endpoints(world: World, caller: Caller) -> list[str]:
    return [caller.get("/v2/endpoints", params={"role": role}).text for role in ("any", "owner")]


def _same_as_missing(world: World, caller: Caller, build: Callable[[str], tuple[str, str, Any]],
                     kind: str) -> list[str]:
    out = []
    for thing_id in world.hidden[kind]:
        if caller.user_id and thing_id == world.fn["group"] and caller is world.callers["member"]:
            continue
        missing = str(uuid.uuid4())
        seen, absent = (_call(caller, *build(i)) for i in (thing_id, missing))
        if _masked(seen, thing_id) != _masked(absent, missing):
            out.append(f"LEAK {seen.text} vs {absent.text}")
        elif seen.status_code == 200:
            out.append(seen.text.replace(thing_id, "<id>"))  # the answer beyond the echo
    return out


BODY_PROBES: dict[tuple[str, str], Callable[[World, Caller], list[str]]] = {
    ("GET", "/farcall/v1/functions/search"): _probe_search,
    ("GET", "/v2/endpoints"): _probe_endpoints,
    ("POST", "/v2/batch_status"): lambda w, c: _same_as_missing(
        w, c, lambda i: ("POST", "/v2/batch_status", {"task_ids": [i]}), "task"),
    ("POST", "/farcall/v1/tasks/wait"): lambda w, c: _same_as_missing(
        w, c, lambda i: ("POST", "/farcall/v1/tasks/wait", {"task_ids": [i], "timeout": 0}),
        "task"),
    ("POST", "/farcall/v1/tasks/cancel"): lambda w, c: _same_as_missing(
        w, c, lambda i: ("POST", "/farcall/v1/tasks/cancel", {"task_ids": [i]}), "task"),
    ("POST", "/v2/submit"): lambda w, c: _same_as_missing(
        w, c, lambda i: ("POST", "/v2/submit", {"tasks": [[i, w.ep["public"], payload(1)]]}),
        "function") + _same_as_missing(
        w, c, lambda i: ("POST", "/v2/submit", {"tasks": [[w.fn["public"], i, payload(1)]]}),
        "endpoint"),
    ("POST", "/v3/functions"): lambda w, c: _register_probes(w, c, "/v3/functions"),
    ("POST", "/v2/functions"): lambda w, c: _register_probes(w, c, "/v2/functions"),
}


def _register_probes(world: World, caller: Caller, route: str) -> list[str]:
    base = {"function_name": "f", "function_code": "def f():\n    return 1\n",
            "serialized": False}
    out = _same_as_missing(world, caller, lambda i: ("POST", route, {**base, "container_uuid": i}),
                           "container")
    out += _same_as_missing(world, caller, lambda i: ("POST", route, {**base,
                                                                      "ha_endpoint_id": i}),
                            "endpoint")
    if caller is not world.callers["member"]:
        missing = str(uuid.uuid4())
        seen = caller.post(route, json={**base, "group": world.group_id})
        absent = caller.post(route, json={**base, "group": missing})
        if _masked(seen, world.group_id) != _masked(absent, missing):
            out.append(f"LEAK {seen.text} vs {absent.text}")
    return out


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("route", sorted(BODY_PROBES), ids=" ".join)
def test_routes_without_ids_in_paths(world: World, viewer: str, route: tuple[str, str]) -> None:
    """Listings, search, batch status, wait, legacy submit and registration show nothing
    invisible and answer for invisible ids as for missing ones."""
    caller = world.callers[viewer]
    texts = BODY_PROBES[route](world, caller)
    invisible = [i for kind, ids in world.hidden.items() for i in ids
                 if not _may_see(viewer, kind, i, world)]
    if route[0] == "GET" and route[1] == "/farcall/v1/functions/search" and viewer == "member":
        assert world.fn["group"] in texts[0]  # the probe can see what it should
    leaks = [t for t in texts if t.startswith("LEAK")]
    leaks += [f"{i} in {t[:300]}" for t in texts for i in invisible if i in t]
    leaks += [f"{s!r} in {t[:300]}" for t in texts for s in world.secrets
              if s in t and not (viewer == "member" and s == "zebra-group")]
    kit.record("access matrix", probes=len(texts), leaks=len(leaks))
    assert not leaks, "\n".join(leaks[:10])


def test_owner_sees_its_things(world: World) -> None:
    """The targets are real: the owner reaches every one of them."""
    owner = world.callers["owner"]
    for kind, route in [("function", "/v2/functions/{}"), ("endpoint", "/v2/endpoints/{}"),
                        ("container", "/farcall/v1/containers/{}"), ("task", "/v2/tasks/{}"),
                        ("task_group", "/v2/taskgroup/{}")]:
        for thing_id in world.hidden[kind]:
            assert owner.get(route.format(thing_id)).status_code == 200, (kind, thing_id)
    found = owner.post("/v2/batch_status", json={"task_ids": world.hidden["task"]}).json()
    assert set(found["results"]) == set(world.hidden["task"])


def test_shared_things_are_seen(world: World) -> None:
    """The viewers are not simply locked out: what is shared with them answers 200."""
    for viewer in VIEWERS:
        caller = world.callers[viewer]
        assert caller.get(f"/v2/functions/{world.fn['public']}").status_code == 200
        assert caller.get(f"/v2/endpoints/{world.ep['public']}").status_code == 200
    member = world.callers["member"]
    assert member.get(f"/v2/functions/{world.fn['group']}").status_code == 200


@pytest.mark.parametrize("viewer", VIEWERS)
def test_foreign_task_ids_through_an_own_endpoint(world: World, viewer: str) -> None:
    """Results for another user's tasks, sent to one's own endpoint, are rejected exactly
    as unknown ids are, and change nothing; claims never hand them out."""
    caller = world.callers[viewer]
    own = caller.register_endpoint(f"{viewer}-own")
    serve = f"/farcall/v1/endpoints/{own}"
    from farcall.serialize import Serializer

    forged = Serializer().serialize("forged")
    before = world.callers["owner"].post("/v2/batch_status",
                                         json={"task_ids": world.hidden["task"]}).json()
    for task_id in world.hidden["task"]:
        missing = str(uuid.uuid4())
        seen, absent = (caller.post(f"{serve}/results", json={"session": "x", "results": [
            {"task_id": i, "status": "success", "result": forged}]}) for i in (task_id, missing))
        assert _masked(seen, task_id) == _masked(absent, missing), (seen.text, absent.text)
        assert seen.json()["rejected"] == [task_id]
    claimed = caller.post(f"{serve}/claim", json={"session": "x", "max_tasks": 100, "wait": 0})
    assert claimed.status_code == 200 and claimed.json()["tasks"] == []
    after = world.callers["owner"].post("/v2/batch_status",
                                        json={"task_ids": world.hidden["task"]}).json()
    assert after == before
    kit.record("access matrix", probes=len(world.hidden["task"]) + 1)


# -- the dashboard's pages ------------------------------------------------------------------

#: The dashboard's routes that show no user data, or only after a sign-in they start;
#: the events stream says only that the viewer's own tasks changed (its own tests are
#: service/tests/test_dashboard_live.py).
DASHBOARD_PUBLIC = {"/dashboard/", "/dashboard/sign-in", "/dashboard/callback",
                    "/dashboard/sign-out", "/dashboard/static/{name}", "/dashboard/events"}
#: Each listing page, with the queries that widen what it could show.
DASHBOARD_LISTINGS: dict[str, list[dict[str, str]]] = {
    "/dashboard/endpoints": [{}],
    "/dashboard/functions": [{}, {"q": "zebra"}, {"q": "square"}],
    "/dashboard/tasks": [{}, {"status": "success"}, {"status": "waiting-for-ep"},
                         {"since": "1h"}],
}


#: The admin pages: an admin's only, checked on each.
DASHBOARD_ADMIN = "/dashboard/admin"


def _dashboard_routes() -> list[tuple[str, str]]:
    from farcall_service.dashboard import admin_routes, routes

    return [(method, route.path) for module in (routes, admin_routes)
            for route in module.router.routes
            for method in sorted(route.methods or ())]  # type: ignore[attr-defined]


def _page_of(world: World, viewer: str, path: str, **kw: Any) -> Any:
    token = world.callers[viewer].token
    return world.client.get(path, headers={"Cookie": f"farcall_session={token}"}, **kw)


def test_every_dashboard_page_is_probed() -> None:
    unclassified = [(m, p) for m, p in _dashboard_routes()
                    if p not in DASHBOARD_PUBLIC and p not in DASHBOARD_LISTINGS
                    and not p.startswith(DASHBOARD_ADMIN)
                    and not any(seg[1:-1] in PARAM_KIND for seg in p.split("/")
                                if seg.startswith("{"))]
    assert not unclassified, unclassified


def test_dashboard_pages_with_ids(world: World) -> None:
    """A hidden thing's page is the page of a missing one, for every viewer."""
    probes = 0
    leaks: list[str] = []
    for _method, path in _dashboard_routes():
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if not params or params[0] not in PARAM_KIND:
            continue
        [param] = params
        for viewer in VIEWERS:
            for thing_id in world.hidden[PARAM_KIND[param]]:
                if _may_see(viewer, PARAM_KIND[param], thing_id, world):
                    continue
                missing = str(uuid.uuid4())
                seen, absent = (_page_of(world, viewer, path.replace("{" + param + "}", i))
                                for i in (thing_id, missing))
                probes += 1
                if _masked(seen, thing_id) != _masked(absent, missing) or seen.status_code < 400:
                    leaks.append(f"{viewer} {path}: {seen.status_code} vs {absent.status_code}")
                if any(s in seen.text for s in world.secrets):
                    leaks.append(f"{viewer} {path}: a secret in {seen.text[:300]}")
    kit.record("access matrix", probes=probes, leaks=len(leaks))
    assert not leaks, "\n".join(leaks[:20])
    assert probes >= 17


@pytest.mark.parametrize("viewer", VIEWERS)
def test_dashboard_listings_show_nothing_hidden(world: World, viewer: str) -> None:
    """No listing, count or search on the dashboard shows another's private thing."""
    invisible = [i for kind, ids in world.hidden.items() for i in ids
                 if not _may_see(viewer, kind, i, world)]
    leaks: list[str] = []
    for path, queries in DASHBOARD_LISTINGS.items():
        for query in queries:
            page = _page_of(world, viewer, path, params=query)
            assert page.status_code == 200, (path, query, page.text[:300])
            assert 'id="signed-in-as"' in page.text  # the probe is signed in
            leaks += [f"{i} in {path} {query}" for i in invisible if i in page.text]
            leaks += [f"{s!r} in {path} {query}" for s in world.secrets
                      if s in page.text and not (viewer == "member" and s == "zebra-group")]
    if viewer == "member":
        assert world.fn["group"] in _page_of(world, viewer, "/dashboard/functions").text
    kit.record("access matrix", probes=sum(map(len, DASHBOARD_LISTINGS.values())),
               leaks=len(leaks))
    assert not leaks, "\n".join(leaks[:10])


def test_the_owner_sees_its_things_on_the_dashboard(world: World) -> None:
    for kind, path in [("function", "functions"), ("endpoint", "endpoints"), ("task", "tasks"),
                       ("task_group", "groups")]:
        for thing_id in world.hidden[kind]:
            page = _page_of(world, "owner", f"/dashboard/{path}/{thing_id}")
            assert page.status_code == 200, (kind, page.text[:300])
    listed = _page_of(world, "owner", "/dashboard/tasks").text
    assert all(task_id in listed for task_id in world.hidden["task"])


@pytest.mark.parametrize("viewer", [*VIEWERS, "owner"])
def test_dashboard_admin_pages_refuse_non_admins(world: World, viewer: str) -> None:
    token = world.callers[viewer].token
    cookie = {"Cookie": f"farcall_session={token}"}
    for method, path in _dashboard_routes():
        if not path.startswith(DASHBOARD_ADMIN):
            continue
        answer = world.client.request(method, path, headers=cookie)
        if method == "POST":  # with a valid CSRF token, so that only the role refuses
            from farcall_service.dashboard.session import csrf_token

            answer = world.client.request(method, path, headers=cookie, data={
                "csrf_token": csrf_token(token), "token_id": "0" * 12})
        assert answer.status_code == 403 and "ADMIN_ONLY" in answer.text, (path, answer.text)
        assert not any(s in answer.text for s in world.secrets)
