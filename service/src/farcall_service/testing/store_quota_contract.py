"""The contract of the per-user usage a store keeps for the quotas: each owner's
unfinished tasks and stored characters follow submissions, results and endpoint
deletions, and a submission past a quota stores nothing."""

from __future__ import annotations

import pytest

from farcall_service.storage.interface import (
    NewTask,
    Outcome,
    Quota,
    QuotaExceeded,
    Report,
    TaskOptions,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, at_once, new_id, seed


def _submit(seeded: Seeded, payloads: list[str], quota: Quota | None = None) -> list[str]:
    tasks = [(seeded.endpoint.id, NewTask(new_id(), seeded.function.id, p)) for p in payloads]
    seeded.store.submit(seeded.user.id, new_id(), tasks, TaskOptions(), seeded.now,
                        quota=quota)
    return [task.id for _eid, task in tasks]


class QuotaStoreContract(StoreFixtures):
    """Usage is kept in the transactions that change it; quotas are checked there."""

    def test_usage_follows_a_task_s_life(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        assert store.usage(user.id) == (0, 0)
        _submit(seeded, ["aaaa", "bb", "c"])
        assert store.usage(user.id) == (3, 7)
        claimed = store.claim(seeded.endpoint.id, "s", 2, seeded.now)
        assert store.usage(user.id) == (3, 7)  # running is still unfinished
        outcomes = [Outcome(claimed[0].id, "success", "12345"),
                    Outcome(claimed[1].id, "failed", exception="boom", exception_data="xy"),
                    Outcome(claimed[0].id, "success", "again")]  # a repeat counts once
        store.record_reports([Report(seeded.endpoint.id, "s", outcomes, seeded.now)])
        assert store.usage(user.id) == (1, 7 + 5 + 6)
        store.record_reports([Report(seeded.endpoint.id, "s", outcomes[:1], seeded.now)])
        assert store.usage(user.id) == (1, 18)  # a duplicate report changes nothing
        store.delete_endpoint(seeded.endpoint.id, seeded.now, "gone")
        assert store.usage(user.id) == (0, 18 + len("gone"))

    def test_removing_a_user_takes_the_tasks_it_failed_off_their_owners_usage(
            self, seeded: Seeded) -> None:
        store, ada = seeded.store, seeded
        bob = seed(store, "bob", seeded.now)
        bob.submit(2, endpoint=ada.endpoint.id)  # bob's tasks on ada's endpoint
        bob.submit(1)  # and one on his own
        ada.submit(1)
        chars_of_bob = store.usage(bob.user.id)[1]
        store.remove_user(ada.user.id, seeded.now, "removed")
        assert store.usage(bob.user.id) == (1, chars_of_bob + 2 * len("removed"))
        assert store.usage(ada.user.id)[0] == 0

    def test_results_folded_into_a_submission_count_for_their_owner(
            self, seeded: Seeded) -> None:
        store = seeded.store
        (mine,) = _submit(seeded, ["p"])
        store.claim(seeded.endpoint.id, "s", 1, seeded.now)
        bob = seed(store, "bob", seeded.now)
        report = Report(seeded.endpoint.id, "s", [Outcome(mine, "success", "rr")], seeded.now)
        store.submit(bob.user.id, new_id(), [(bob.endpoint.id, NewTask(new_id(),
                     bob.function.id, "ppp"))], TaskOptions(), seeded.now, reports=[report])
        assert store.usage(seeded.user.id) == (0, 3)
        assert store.usage(bob.user.id) == (1, 3)

    def test_a_submission_past_a_quota_stores_nothing(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        _submit(seeded, ["aa", "bb"], Quota(unfinished_tasks=3, stored_bytes=10))
        refused = NewTask(new_id(), seeded.function.id, "cc")
        with pytest.raises(QuotaExceeded) as tasks_over:
            store.submit(user.id, new_id(), [
                (seeded.endpoint.id, refused),
                (seeded.endpoint.id, NewTask(new_id(), seeded.function.id, "d")),
            ], TaskOptions(), seeded.now, quota=Quota(unfinished_tasks=3))
        assert (tasks_over.value.which, tasks_over.value.limit, tasks_over.value.used,
                tasks_over.value.adding) == ("unfinished_tasks", 3, 2, 2)
        assert store.get_task(refused.id) is None
        with pytest.raises(QuotaExceeded) as bytes_over:
            _submit(seeded, ["x" * 7], Quota(stored_bytes=10))
        assert (bytes_over.value.which, bytes_over.value.used) == ("stored_bytes", 4)
        assert store.usage(user.id) == (2, 4)  # the refusals left no trace
        _submit(seeded, ["x" * 6], Quota(unfinished_tasks=3, stored_bytes=10))  # just fits
        assert store.usage(user.id) == (3, 10)
        bob = seed(store, "bob", seeded.now)  # another user's usage is their own
        _submit(bob, ["y" * 10], Quota(unfinished_tasks=3, stored_bytes=10))
        assert store.usage(bob.user.id) == (1, 10)

    def test_concurrent_submissions_cannot_pass_a_quota_together(self, seeded: Seeded) -> None:
        def one() -> bool:
            try:
                _submit(seeded, ["p"], Quota(unfinished_tasks=3))
            except QuotaExceeded:
                return False
            return True

        assert sorted(at_once(6, one)) == [False] * 3 + [True] * 3
        assert seeded.store.usage(seeded.user.id) == (3, 3)

    def test_pruning_ended_tasks_frees_their_stored_bytes(self, seeded: Seeded) -> None:
        store = seeded.store
        old, running, recent = _submit(seeded, ["aaaa", "bb", "c"])
        claimed = {t.id for t in store.claim(seeded.endpoint.id, "s", 3, seeded.now)}
        assert claimed == {old, running, recent}
        for task_id, result, at in ((old, "12345", seeded.now), (recent, "6", seeded.now + 50)):
            store.record_reports([Report(seeded.endpoint.id, "s",
                                         [Outcome(task_id, "success", result)], at)])
        bob = seed(store, "bob", seeded.now)
        (bobs,) = _submit(bob, ["zz"])
        store.claim(bob.endpoint.id, "s", 1, seeded.now)
        store.record_reports([Report(bob.endpoint.id, "s", [Outcome(bobs, "success", "r")],
                                     seeded.now)])
        assert store.usage(seeded.user.id) == (1, 7 + 6)
        assert store.prune_finished(seeded.now + 10, seeded.user.id) == 1
        assert store.get_task(old) is None
        assert store.get_task(running) is not None and store.get_task(recent) is not None
        assert store.usage(seeded.user.id) == (1, 2 + 1 + 1)
        assert store.usage(bob.user.id) == (0, 3)  # another owner's: not named
        assert store.prune_finished(seeded.now + 100) == 2  # everyone's ended ones
        assert store.get_task(running) is not None  # never an unfinished one
        assert store.usage(seeded.user.id) == (1, 2) and store.usage(bob.user.id) == (0, 0)
