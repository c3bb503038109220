"""The memory of unfinished tasks that lets result waits skip the database."""

from __future__ import annotations

from farcall_service.unfinished import UnfinishedTasks


def test_tasks_are_unfinished_until_reported_and_only_for_their_owner() -> None:
    memory = UnfinishedTasks()
    memory.accepted("alice", [("t1", "ep"), ("t2", "ep")])
    assert memory.all_unfinished(["t1", "t2"], "alice")
    assert not memory.all_unfinished(["t1"], "bob")
    assert not memory.all_unfinished(["t1", "t3"], "alice")  # t3: look it up
    memory.finished(["t1"])
    assert not memory.all_unfinished(["t1", "t2"], "alice")
    assert memory.all_unfinished(["t2"], "alice")


def test_the_oldest_tasks_are_dropped_beyond_the_limit() -> None:
    memory = UnfinishedTasks(max_entries=2)
    memory.accepted("alice", [("t1", "ep"), ("t2", "ep"), ("t3", "ep")])
    assert len(memory) == 2
    assert not memory.all_unfinished(["t1"], "alice")
    assert memory.all_unfinished(["t2", "t3"], "alice")


def test_a_deleted_endpoints_tasks_are_forgotten_and_their_owners_named() -> None:
    memory = UnfinishedTasks()
    memory.accepted("alice", [("t1", "ep1")])
    memory.accepted("bob", [("t2", "ep1"), ("t3", "ep2")])
    assert memory.endpoint_deleted("ep1") == {"alice", "bob"}
    assert not memory.all_unfinished(["t1"], "alice")
    assert memory.all_unfinished(["t3"], "bob")
