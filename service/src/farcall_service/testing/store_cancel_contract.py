"""The contract of cancellation (:meth:`TaskStore.cancel_tasks`,
:meth:`TaskStore.take_cancels`): a cancelled task ends once, never runs if it was
queued, and its endpoint is told if it held it."""

from __future__ import annotations

import threading

from farcall_service.storage.interface import (
    ALREADY_FINISHED,
    CANCELLED,
    CANCELLED_NOW,
    NOT_FOUND,
    QUEUED,
    RUNNING,
    CancelAnswer,
    Outcome,
    Report,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, at_once, new_id, seed
from farcall_service.testing.store_outbox_contract import drained

REASON = "TaskCancelled: cancelled by ada"


class CancelStoreContract(StoreFixtures):
    """Cancels end unfinished tasks, leave ended ones alone, and find only the owner's."""

    def test_a_cancelled_queued_task_is_never_claimed(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        first, second = seeded.submit(2)
        done = store.cancel_tasks(seeded.user.id, [first], REASON, seeded.now + 1)
        assert done.answers == [CancelAnswer(first, CANCELLED_NOW, QUEUED, eid)]
        (task,) = done.ended
        assert (task.id, task.status, task.exception, task.completion_t) == (
            first, CANCELLED, REASON, seeded.now + 1)
        assert store.get_task(first) == task
        assert [t.id for t in store.claim(eid, "s", 10, seeded.now + 2)] == [second]
        assert store.count_outstanding(eid) == 1
        assert store.take_cancels(eid) == []  # it was never the endpoint's to stop
        assert [t.id for t in store.finished_tasks([first, second], seeded.user.id)] == [first]

    def test_a_claimed_task_s_endpoint_is_told_once(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        (task,) = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        done = store.cancel_tasks(seeded.user.id, [task], REASON, seeded.now + 1)
        assert done.answers == [CancelAnswer(task, CANCELLED_NOW, RUNNING, eid, "s")]
        assert store.take_cancels(new_id()) == []
        assert store.take_cancels(eid) == [task]
        assert store.take_cancels(eid) == []

    def test_a_late_result_of_a_cancelled_task_is_a_duplicate(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        (task,) = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        store.cancel_tasks(seeded.user.id, [task], REASON, seeded.now + 1)
        usage = store.usage(seeded.user.id)
        (recorded,) = store.record_reports([Report(eid, "s", [
            Outcome(task, "failed", exception="the task was cancelled")], seeded.now + 2)])
        assert (recorded.recorded, recorded.duplicates) == ([], [task])
        stored = store.get_task(task)
        assert stored is not None
        assert (stored.status, stored.exception) == (CANCELLED, REASON)
        assert store.usage(seeded.user.id) == usage

    def test_usage_counts_a_cancelled_task_as_ended(self, seeded: Seeded) -> None:
        store = seeded.store
        ids = seeded.submit(3)
        tasks, chars = store.usage(seeded.user.id)
        assert tasks == 3
        store.cancel_tasks(seeded.user.id, ids[:2], REASON, seeded.now)
        assert store.usage(seeded.user.id) == (1, chars + 2 * len(REASON))
        store.cancel_tasks(seeded.user.id, ids[:2], REASON, seeded.now)  # no change twice
        assert store.usage(seeded.user.id) == (1, chars + 2 * len(REASON))

    def test_ended_unknown_and_foreign_tasks_are_left_alone(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ok, = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        store.record_reports([Report(eid, "s", [Outcome(ok, "success", "r")], seeded.now)])
        bob = seed(store, "bob", seeded.now)
        (theirs,) = bob.submit(1)
        unknown = new_id()
        done = store.cancel_tasks(seeded.user.id, [ok, theirs, unknown, ok], REASON,
                                  seeded.now + 1)
        assert done.answers == [CancelAnswer(ok, ALREADY_FINISHED, "success", eid),
                                CancelAnswer(theirs, NOT_FOUND), CancelAnswer(unknown, NOT_FOUND)]
        assert done.ended == []
        assert store.get_task(ok).status == "success"  # type: ignore[union-attr]
        assert store.get_task(theirs).status == QUEUED  # type: ignore[union-attr]
        again = store.cancel_tasks(seeded.user.id, [], REASON, seeded.now)
        assert again.answers == []

    def test_a_streamed_group_s_cancelled_task_goes_to_the_outbox(self, seeded: Seeded) -> None:
        store = seeded.store
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        (task,) = seeded.submit(1, group)
        assert store.cancel_tasks(seeded.user.id, [task], REASON, seeded.now).streamed
        (published,) = drained(store)
        assert (published.id, published.status, published.exception) == (task, CANCELLED,
                                                                          REASON)

    def test_a_cancel_racing_claims_leaves_each_task_either_claimed_or_never_run(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(200)
        turns = iter(range(4))
        lock = threading.Lock()

        def one() -> object:
            with lock:
                first = next(turns) == 0
            if first:
                return store.cancel_tasks(seeded.user.id, ids, REASON, seeded.now)
            return [t.id for t in store.claim(eid, "s", 20, seeded.now)]

        results = at_once(4, one)
        cancel = next(r for r in results if not isinstance(r, list))
        taken = {tid for r in results if isinstance(r, list) for tid in r}
        by_outcome = {a.task_id: a for a in cancel.answers}  # type: ignore[attr-defined]
        assert all(a.outcome == CANCELLED_NOW for a in by_outcome.values())
        # Every task a claim took was cancelled while held, and its endpoint is told.
        assert {tid for tid, a in by_outcome.items() if a.status == RUNNING} == taken
        assert sorted(store.take_cancels(eid)) == sorted(taken)
        assert store.claim(eid, "s", 500, seeded.now) == []
