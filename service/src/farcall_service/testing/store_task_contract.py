"""The contract of :class:`~farcall_service.storage.interface.TaskStore`, first part:
submission and the reads of tasks (claims and results: ``store_handoff_contract``)."""

from __future__ import annotations

import pytest

from farcall_service.storage.interface import (
    QUEUED,
    Endpoint,
    NewTask,
    Outcome,
    Report,
    Task,
    TaskOptions,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, at_once, new_id, seed


class TaskStoreContract(StoreFixtures):
    """A submission is stored whole or not at all, in a task group of one owner."""

    def test_submitted_tasks_are_queued_in_their_group(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        group = new_id()
        ids = seeded.submit(3, group)
        assert store.get_task_group_owner(group) == user.id
        assert store.get_task(ids[0]) == Task(
            ids[0], user.id, seeded.function.id, seeded.endpoint.id, group, QUEUED, seeded.now)
        assert [t.id for t in store.task_group_tasks(group, user.id)] == ids
        later = seeded.submit(2, group, at=seeded.now + 1)  # the same group again
        assert [t.id for t in store.task_group_tasks(group, user.id)] == ids + later
        assert store.count_outstanding(seeded.endpoint.id) == 5

    def test_unknown_tasks_and_groups_are_not_found(self, seeded: Seeded) -> None:
        store = seeded.store
        (known,) = seeded.submit(1)
        assert store.get_task(new_id()) is None
        assert store.get_task_group_owner(new_id()) is None
        assert store.task_group_tasks(new_id(), seeded.user.id) == []
        found = store.get_tasks([known, new_id(), known])
        assert [t.id for t in found] == [known]
        assert store.get_tasks([]) == []
        assert store.count_outstanding(new_id()) == 0

    def test_many_tasks_are_read_at_once(self, seeded: Seeded) -> None:
        ids = seeded.submit(1200)  # more than one IN list holds on some databases
        assert sorted(t.id for t in seeded.store.get_tasks(ids)) == sorted(ids)
        assert seeded.store.task_endpoints(ids, seeded.user.id) == {seeded.endpoint.id}

    def test_each_user_s_tasks_in_a_group_are_theirs_alone(self, seeded: Seeded) -> None:
        """Another user naming a group id finds it as if it were new: a group id
        tells nothing of anybody else."""
        store = seeded.store
        group = new_id()
        (first,) = seeded.submit(1, group)
        claimed = store.claim(seeded.endpoint.id, "s", 1, seeded.now)
        bob = seed(store, "bob", seeded.now)
        theirs = NewTask(new_id(), bob.function.id, "p")
        report = Report(seeded.endpoint.id, "s", [Outcome(claimed[0].id, "success", "r")],
                        seeded.now)
        store.submit(bob.user.id, group, [(bob.endpoint.id, theirs)], TaskOptions(),
                     seeded.now, reports=[report])
        assert [t.id for t in store.task_group_tasks(group, bob.user.id)] == [theirs.id]
        assert [t.id for t in store.task_group_tasks(group, seeded.user.id)] == [first]
        assert store.get_task(first).status == "success"  # type: ignore[union-attr]
        assert store.get_task_group_owner(group) == seeded.user.id

    def test_a_submission_that_fails_stores_none_of_its_tasks(self, seeded: Seeded) -> None:
        store = seeded.store
        (existing,) = seeded.submit(1)
        group = new_id()
        fresh = NewTask(new_id(), seeded.function.id, "p")
        again = NewTask(existing, seeded.function.id, "p")  # a task id already taken
        with pytest.raises(Exception):  # noqa: B017 (the store's own error)
            store.submit(seeded.user.id, group, [(seeded.endpoint.id, fresh),
                                                 (seeded.endpoint.id, again)],
                         TaskOptions(), seeded.now)
        assert store.get_task(fresh.id) is None
        assert store.get_task_group_owner(group) is None
        assert store.count_outstanding(seeded.endpoint.id) == 1

    def test_concurrent_submissions_may_make_one_group(self, seeded: Seeded) -> None:
        """As an Executor does, sending batches of one new task group at once."""
        group = new_id()
        batches = at_once(4, lambda: seeded.submit(5, group))
        assert sorted(t.id for t in seeded.store.task_group_tasks(group, seeded.user.id)) == sorted(
            task_id for batch in batches for task_id in batch)
        assert seeded.store.get_task_group_owner(group) == seeded.user.id

    def test_an_empty_submission_makes_the_group(self, seeded: Seeded) -> None:
        group = new_id()
        submitted = seeded.store.submit(seeded.user.id, group, [], TaskOptions(), seeded.now)
        assert (submitted.stale, submitted.recorded) == (set(), [])
        assert seeded.store.get_task_group_owner(group) == seeded.user.id

    def test_tasks_may_go_to_several_endpoints(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        other = Endpoint(new_id(), user.id, "other", created_at=seeded.now)
        store.save_endpoint(other)
        one = seeded.submit(2)
        two = seeded.submit(1, endpoint=other.id)
        assert store.task_endpoints(one + two, user.id) == {seeded.endpoint.id, other.id}
        assert store.task_endpoints(one, user.id) == {seeded.endpoint.id}
        assert store.task_endpoints(one + two, new_id()) == set()  # only the owner's
        assert store.count_outstanding(other.id) == 1

    def test_only_the_owner_s_ended_tasks_are_finished(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ok, failed, running, queued = seeded.submit(4)
        store.claim(eid, "s", 3, seeded.now)
        store.record_reports([Report(eid, "s", [
            Outcome(ok, "success", "r"), Outcome(failed, "failed", exception="boom")],
            seeded.now + 1)])
        ids = [ok, failed, running, queued, new_id()]
        finished = store.finished_tasks(ids, seeded.user.id)
        assert sorted(t.id for t in finished) == sorted([ok, failed])
        assert all(t.completion_t == seeded.now + 1 for t in finished)
        assert store.finished_tasks(ids, new_id()) == []
        assert store.count_outstanding(eid) == 2

    def test_task_options_reach_the_endpoint(self, seeded: Seeded) -> None:
        store = seeded.store
        options = TaskOptions({"num_nodes": 2}, ["11", "12"], {"worker_init": "x"})
        task = NewTask(new_id(), seeded.function.id, "p")
        store.submit(seeded.user.id, new_id(), [(seeded.endpoint.id, task)], options,
                     seeded.now)
        (claimed,) = store.claim(seeded.endpoint.id, "s", 1, seeded.now)
        assert claimed.options == options
