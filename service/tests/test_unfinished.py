"""The memory of unfinished and just-finished tasks that lets result waits skip the
database."""

from __future__ import annotations

from farcall_service.storage.interface import Task
from farcall_service.unfinished import UnfinishedTasks


def done(task_id: str, owner: str, result: str = "11\n1") -> Task:
    return Task(task_id, owner, "fn", "ep", "group", "success", 0.0, result)


def test_a_wait_is_answered_from_memory_only_for_the_owners_known_tasks() -> None:
    memory = UnfinishedTasks()
    memory.accepted("alice", [("t1", "ep"), ("t2", "ep")])
    assert memory.look(["t1", "t2"], "alice") == []  # none finished: wait
    assert memory.look(["t1"], "bob") is None
    assert memory.look(["t1", "t3"], "alice") is None  # t3: the database knows
    memory.finished([done("t1", "alice")])
    assert [t.id for t in memory.look(["t1", "t2"], "alice") or []] == ["t1"]
    assert memory.look(["t1"], "bob") is None
    memory.finished([done("t9", "alice")])  # not accepted here: not remembered
    assert memory.look(["t9"], "alice") is None


def test_the_oldest_tasks_are_dropped_beyond_the_limits() -> None:
    memory = UnfinishedTasks(max_entries=2, max_finished=2, max_finished_chars=100)
    memory.accepted("alice", [("t1", "ep"), ("t2", "ep"), ("t3", "ep")])
    assert len(memory) == 2
    assert memory.look(["t1"], "alice") is None
    memory.accepted("alice", [("t4", "ep"), ("t5", "ep")])
    memory.finished([done("t4", "alice"), done("t5", "alice", "x" * 98)])
    assert memory.look(["t4"], "alice") is None  # over the size limit: dropped
    assert memory.look(["t5"], "alice") is not None


def test_a_failed_submission_and_a_deleted_endpoint_are_forgotten() -> None:
    memory = UnfinishedTasks()
    memory.accepted("alice", [("t1", "ep1")])
    memory.accepted("bob", [("t2", "ep1"), ("t3", "ep2"), ("t4", "ep2")])
    assert memory.endpoint_deleted("ep1") == {"alice", "bob"}
    assert memory.look(["t1"], "alice") is None
    memory.forget(["t4"])
    assert memory.look(["t4"], "bob") is None
    assert memory.look(["t3"], "bob") == []
