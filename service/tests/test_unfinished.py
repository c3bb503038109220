"""The memory of unfinished and just-finished tasks that lets result waits skip the
database."""

from __future__ import annotations

from farcall_service.storage.interface import Outcome, Task
from farcall_service.unfinished import UnfinishedTasks


def done(task_id: str, owner: str, result: str = "11\n1") -> Task:
    return Task(task_id, owner, "fn", "ep", "group", "success", 0.0, result)


def accept(memory: UnfinishedTasks, owner: str, pairs: list[tuple[str, str]]) -> None:
    memory.accepted(owner, "group", 0.0, ((tid, eid, "fn") for tid, eid in pairs))


def test_a_wait_is_answered_from_memory_only_for_the_owners_known_tasks() -> None:
    memory = UnfinishedTasks()
    accept(memory, "alice", [("t1", "ep"), ("t2", "ep")])
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
    accept(memory, "alice", [("t1", "ep"), ("t2", "ep"), ("t3", "ep")])
    assert len(memory) == 2
    assert memory.look(["t1"], "alice") is None
    accept(memory, "alice", [("t4", "ep"), ("t5", "ep")])
    memory.finished([done("t4", "alice"), done("t5", "alice", "x" * 98)])
    assert memory.look(["t4"], "alice") is None  # over the size limit: dropped
    assert memory.look(["t5"], "alice") is not None


def test_a_failed_submission_and_a_deleted_endpoint_are_forgotten() -> None:
    memory = UnfinishedTasks()
    accept(memory, "alice", [("t1", "ep1")])
    accept(memory, "bob", [("t2", "ep1"), ("t3", "ep2"), ("t4", "ep2")])
    assert memory.endpoint_deleted("ep1") == {"alice", "bob"}
    assert memory.look(["t1"], "alice") is None
    memory.forget(["t4"])
    assert memory.look(["t4"], "bob") is None
    assert memory.look(["t3"], "bob") == []


def test_a_reported_result_is_finished_before_it_commits_until_told_otherwise() -> None:
    """Results from the task's own endpoint are finished from the report on; a
    failed commit makes them unfinished again, a refusal hands them to the database."""
    memory = UnfinishedTasks()
    memory.accepted("alice", "g1", 5.0, [("t1", "ep", "fn1"), ("t2", "ep", "fn1"),
                                          ("t3", "other", "fn1")])
    told = memory.reported("ep", [Outcome("t1", "success", "11\n1"),
                                  Outcome("t3", "success", "11\n3"),  # another endpoint's
                                  Outcome("t9", "success", "11\n9")], 7.0)  # not ours
    assert [(t.id, t.owner_id, t.function_id, t.task_group_id, t.created_at, t.completion_t,
             t.result) for t in told] == [("t1", "alice", "fn1", "g1", 5.0, 7.0, "11\n1")]
    assert memory.look(["t1", "t2", "t3"], "alice") == told
    assert memory.records(["t1", "t2", "t3", "t9"]) == {"t1": told[0]}
    assert memory.reported("ep", [Outcome("t1", "failed", exception="again")], 8.0) == []

    memory.retract(told)  # the commit failed
    assert memory.look(["t1"], "alice") == [] and memory.records(["t1"]) == {}
    again = memory.reported("ep", [Outcome("t1", "success", "11\n1")], 9.0)
    assert [t.completion_t for t in again] == [9.0]
    memory.retract(told)  # an older attempt's records change nothing
    assert memory.records(["t1"]) == {"t1": again[0]}

    memory.drop(["t1"])  # the database refused it: it answers from now on
    assert memory.look(["t1"], "alice") is None and memory.records(["t1"]) == {}
    memory.finished([done("t2", "alice")])
    memory.forget(["t2"])  # a failed submission leaves nothing behind
    assert memory.look(["t2"], "alice") is None and memory.records(["t2"]) == {}
