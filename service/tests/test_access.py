"""Who may see, run and delete what: owner, group member, outsider, and public things.

Invisible things answer 404 exactly like missing ones; visible-but-not-yours is 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from farcall_testkit.service import Caller, assert_error, payload


@dataclass
class World:
    owner: Caller
    member: Caller
    outsider: Caller
    group_id: str
    fn: dict[str, str]  # private, group, public
    ep: dict[str, str]  # private, public

    def who(self, role: str) -> Caller:
        return {"owner": self.owner, "member": self.member, "outsider": self.outsider}[role]


@pytest.fixture
def world(make_caller, ctx) -> World:
    owner = make_caller("owner", groups=("team",))
    member = make_caller("member", groups=("team",))
    outsider = make_caller("outsider")
    group_id = ctx.store.get_group("team").id
    fn = {
        "private": owner.register_function(description="private square"),
        "group": owner.register_function(group=group_id, description="group square"),
        "public": owner.register_function(public=True, description="public square"),
    }
    ep = {
        "private": owner.register_endpoint("private-ep"),
        "public": owner.register_endpoint("public-ep", public=True),
    }
    return World(owner, member, outsider, group_id, fn, ep)


SEE_FUNCTION = [
    ("owner", "private", 200), ("owner", "group", 200), ("owner", "public", 200),
    ("member", "private", 404), ("member", "group", 200), ("member", "public", 200),
    ("outsider", "private", 404), ("outsider", "group", 404), ("outsider", "public", 200),
]


@pytest.mark.parametrize(("role", "kind", "status"), SEE_FUNCTION)
def test_see_function(world: World, role: str, kind: str, status: int) -> None:
    answer = world.who(role).get(f"/v2/functions/{world.fn[kind]}")
    if status == 200:
        assert answer.status_code == 200
        assert answer.json()["function_uuid"] == world.fn[kind]
    else:
        assert_error(answer, status, "FUNCTION_NOT_FOUND")


@pytest.mark.parametrize(("role", "kind", "status"), SEE_FUNCTION)
def test_run_function(world: World, role: str, kind: str, status: int) -> None:
    # Everyone may use the public endpoint, so only the function decides.
    answer = world.who(role).submit(world.ep["public"], world.fn[kind], 3)
    if status == 200:
        assert answer.status_code == 200, answer.text
        assert list(answer.json()["tasks"]) == [world.fn[kind]]
    else:
        assert_error(answer, status, "FUNCTION_NOT_FOUND")


@pytest.mark.parametrize(
    ("role", "kind", "status"),
    [
        ("member", "private", 404), ("member", "group", 403), ("member", "public", 403),
        ("outsider", "private", 404), ("outsider", "group", 404), ("outsider", "public", 403),
        ("owner", "private", 200), ("owner", "group", 200), ("owner", "public", 200),
    ],
)
def test_delete_function(world: World, role: str, kind: str, status: int) -> None:
    answer = world.who(role).delete(f"/v2/functions/{world.fn[kind]}")
    if status == 200:
        assert answer.json() == {"result": 302}
        assert_error(world.owner.get(f"/v2/functions/{world.fn[kind]}"), 404)
        assert_error(world.owner.submit(world.ep["private"], world.fn[kind], 1), 404)
    else:
        assert_error(answer, status)
        assert world.owner.get(f"/v2/functions/{world.fn[kind]}").status_code == 200


ENDPOINT_READS = ["", "/status"]


@pytest.mark.parametrize("role", ["owner", "member", "outsider"])
@pytest.mark.parametrize("kind", ["private", "public"])
def test_see_and_use_endpoint(world: World, role: str, kind: str) -> None:
    caller = world.who(role)
    visible = role == "owner" or kind == "public"
    ep = world.ep[kind]
    for suffix in ("", "/status"):
        answer = caller.get(f"/v2/endpoints/{ep}{suffix}")
        if visible:
            assert answer.status_code == 200
        else:
            assert_error(answer, 404, "ENDPOINT_NOT_FOUND")
    answer = caller.get(f"/v3/endpoints/{ep}/allowed_functions")
    assert answer.status_code == (200 if visible else 404)
    answer = caller.submit(ep, world.fn["public"], 2)
    if visible:
        assert answer.status_code == 200
    else:
        assert_error(answer, 404, "ENDPOINT_NOT_FOUND")


@pytest.mark.parametrize("role", ["member", "outsider"])
@pytest.mark.parametrize("kind", ["private", "public"])
def test_only_the_owner_changes_or_serves_an_endpoint(world: World, role: str, kind: str) -> None:
    caller = world.who(role)
    ep = world.ep[kind]
    status = 403 if kind == "public" else 404
    session = {"session": "s"}
    for answer in (
        caller.put(f"/v3/endpoints/{ep}", json={"endpoint_name": "stolen"}),
        caller.post(f"/v3/endpoints/{ep}/lock"),
        caller.post(f"/farcall/v1/endpoints/{ep}/claim", json=session),
        caller.post(f"/farcall/v1/endpoints/{ep}/heartbeat", json=session),
        caller.post(f"/farcall/v1/endpoints/{ep}/results", json={**session, "results": []}),
        caller.delete(f"/v2/endpoints/{ep}"),
    ):
        assert_error(answer, status)
    assert world.owner.get(f"/v2/endpoints/{ep}").json()["name"] == f"{kind}-ep"


def test_owner_deletes_endpoint(world: World) -> None:
    ep = world.ep["public"]
    task = world.owner.submit(ep, world.fn["public"], 2).json()["tasks"][world.fn["public"]][0]
    assert world.owner.delete(f"/v2/endpoints/{ep}").json() == {"result": 302}
    assert_error(world.member.get(f"/v2/endpoints/{ep}"), 404)
    assert_error(world.owner.get(f"/v2/endpoints/{ep}"), 404)
    doc = world.owner.get(f"/v2/tasks/{task}").json()
    assert doc["status"] == "failed" and "deleted" in doc["exception"]


def test_endpoint_listing(world: World) -> None:
    def names(caller: Caller, role: str | None = None) -> set[str]:
        params = {"role": role} if role else {}
        return {e["name"] for e in caller.get("/v2/endpoints", params=params).json()}

    assert names(world.owner) == {"private-ep", "public-ep"}
    assert names(world.outsider) == set()
    assert names(world.outsider, "any") == {"public-ep"}
    assert names(world.member, "owner") == set()
    assert_error(world.owner.get("/v2/endpoints", params={"role": "admin"}), 422)


def test_tasks_are_visible_only_to_their_submitter(world: World) -> None:
    answer = world.member.submit(world.ep["public"], world.fn["group"], 5).json()
    task_id = answer["tasks"][world.fn["group"]][0]
    group_id = answer["task_group_id"]
    assert world.member.get(f"/v2/tasks/{task_id}").json()["status"] == "waiting-for-ep"
    assert world.member.get(f"/v2/taskgroup/{group_id}").status_code == 200
    for other in (world.owner, world.outsider):
        assert_error(other.get(f"/v2/tasks/{task_id}"), 404, "TASK_NOT_FOUND")
        assert_error(other.get(f"/v2/taskgroup/{group_id}"), 404, "TASK_GROUP_NOT_FOUND")
        batch = other.post("/v2/batch_status", json={"task_ids": [task_id]}).json()
        assert batch == {"response": "batch", "results": {}}


@pytest.mark.parametrize(("role", "outcome"), [
    ("member", "cancelled"), ("owner", "not found"), ("outsider", "not found")])
def test_only_the_submitter_cancels_a_task(world: World, role: str, outcome: str) -> None:
    """Even the owner of the endpoint and of the function it runs: a task is its
    submitter's alone, and another's reads as not found."""
    answer = world.member.submit(world.ep["public"], world.fn["group"], 5).json()
    task_id = answer["tasks"][world.fn["group"]][0]
    got = world.who(role).post("/farcall/v1/tasks/cancel", json={"task_ids": [task_id]})
    assert got.status_code == 200, got.text
    assert got.json()["results"][task_id]["outcome"] == outcome
    status = world.member.get(f"/v2/tasks/{task_id}").json()["status"]
    assert status == ("failed" if outcome == "cancelled" else "waiting-for-ep")


def test_another_user_s_task_group_is_a_missing_one(world: World) -> None:
    """A group id tells nothing of its user: another's answers as a new one would, in
    every route, and whatever joins it stays the joiner's."""
    answer = world.member.submit(world.ep["public"], world.fn["public"], 5).json()
    theirs, missing = answer["task_group_id"], str(uuid.uuid4())
    (member_task,) = answer["tasks"][world.fn["public"]]

    def seen(group: str) -> tuple[int, str]:
        got = world.outsider.get(f"/v2/taskgroup/{group}")
        return got.status_code, got.text.replace(group, "<id>")

    assert seen(theirs) == seen(missing)
    assert seen(theirs)[0] == 404
    joined: dict[str, list[str]] = {}
    refused = []
    for group in (theirs, missing):  # v3 takes only one's own groups, and tells nothing
        body = {"tasks": {world.fn["public"]: [payload(1)]}, "task_group_id": group}
        sent = world.outsider.post(f"/v3/endpoints/{world.ep['public']}/submit", json=body)
        assert sent.status_code == 404, sent.text
        refused.append(sent.text.replace(group, "<id>"))
        joined[group] = []
        legacy = world.outsider.post("/v2/submit", json={
            "task_group_id": group, "tasks": [[world.fn["public"], world.ep["public"],
                                               payload(2)]]})
        assert legacy.status_code == 200 and legacy.json()["response"] == "success"
        joined[group] += [r["task_uuid"] for r in legacy.json()["results"]]
    assert refused[0] == refused[1]
    for group in (theirs, missing):  # each sees their own tasks under the id, only
        listed = world.outsider.get(f"/v2/taskgroup/{group}").json()
        assert [t["id"] for t in listed["tasks"]] == joined[group]
    mine = world.member.get(f"/v2/taskgroup/{theirs}").json()
    assert [t["id"] for t in mine["tasks"]] == [member_task]


def test_a_public_endpoint_s_status_tells_others_no_load(world: World) -> None:
    ep = world.ep["public"]
    world.member.submit(ep, world.fn["public"], 2)
    world.owner.post(f"/farcall/v1/endpoints/{ep}/heartbeat", json={
        "session": "s1", "total_workers": 4, "idle_workers": 1, "pending_tasks": 3})
    own = world.owner.get(f"/v2/endpoints/{ep}/status").json()
    assert own["details"]["outstanding_tasks"] == 1
    assert (own["details"]["idle_workers"], own["details"]["pending_tasks"]) == (1, 3)
    for other in (world.member, world.outsider):
        seen = other.get(f"/v2/endpoints/{ep}/status").json()
        assert seen["status"] == own["status"]
        assert seen["details"] == {"total_workers": 4, "managers": 0,
                                   "last_seen": own["details"]["last_seen"]}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", {"private", "group", "public"}),
        ("member", {"group", "public"}),
        ("outsider", {"public"}),
    ],
)
def test_search_returns_only_visible_functions(world: World, role: str, expected: set[str]) -> None:
    caller = world.who(role)
    answer = caller.get("/farcall/v1/functions/search", params={"q": "square"}).json()
    found = {hit["description"].split()[0] for hit in answer["results"]}
    assert found == expected
    assert answer["total"] == len(expected)
    one = caller.get("/farcall/v1/functions/search", params={"q": "group square"}).json()
    assert one["total"] == (1 if "group" in expected else 0)
    page = caller.get("/farcall/v1/functions/search", params={"offset": 1, "limit": 1}).json()
    assert page["total"] == len(expected) and len(page["results"]) == min(1, len(expected) - 1)


def test_group_sharing_needs_membership(world: World) -> None:
    answer = world.outsider.post(
        "/v3/functions",
        json={"function_name": "f", "function_code": "x", "serialized": False,
              "group": world.group_id},
    )
    assert_error(answer, 404, "GROUP_NOT_FOUND")
    assert world.member.register_function(group=world.group_id)


def test_allowed_functions_restrict_an_endpoint(world: World) -> None:
    ep = world.owner.register_endpoint("strict", public=True,
                                       allowed_functions=[world.fn["public"]])
    listed = world.member.get(f"/v3/endpoints/{ep}/allowed_functions").json()
    assert listed == {"endpoint_id": ep, "restricted": True, "functions": [world.fn["public"]]}
    assert world.member.submit(ep, world.fn["public"], 1).status_code == 200
    assert_error(world.member.submit(ep, world.fn["group"], 1), 403, "FUNCTION_NOT_ALLOWED")
    world.owner.put(f"/v3/endpoints/{ep}", json={"allowed_functions": []})
    assert world.member.submit(ep, world.fn["group"], 1).status_code == 200


def test_every_route_needs_a_valid_token(world: World, client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        assert_error(client.get("/v2/version", headers=headers), 401, "UNAUTHORIZED")
        assert_error(client.get(f"/v2/functions/{world.fn['public']}", headers=headers), 401)
