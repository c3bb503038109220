"""The contract of :class:`~farcall_service.storage.interface.RetentionStore`: ended
tasks are deleted once kept long enough, in batches, never unfinished ones, and their
owners' usage follows exactly."""

from __future__ import annotations

from farcall_service.storage.interface import Outcome, PurgeBatch, Report, Store
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, at_once, seed


def end_tasks(seeded: Seeded, ids: list[str], at: float, status: str = "success") -> None:
    """Claim and end the tasks ``ids`` (all queued on the seeded endpoint) at ``at``."""
    store = seeded.store
    claimed = store.claim(seeded.endpoint.id, "s", len(ids) + 1000, at)
    assert set(ids) <= {task.id for task in claimed}
    outcomes = [Outcome(tid, status, "result" if status == "success" else None,
                        exception=None if status == "success" else "boom") for tid in ids]
    store.record_reports([Report(seeded.endpoint.id, "s", outcomes, at)])
    requeued = [task.id for task in claimed if task.id not in ids]
    if requeued:  # the others go back to the queue under a new session
        store.heartbeat(seeded.endpoint.id, "s2", {}, at)


def purge_all(store: Store, before: float, limit: int) -> list[PurgeBatch]:
    """Every batch of one purge round, as the service's purge runs it."""
    batches = [store.purge_ended(before, limit)]
    while not batches[-1].done:
        batches.append(store.purge_ended(before, limit, batches[-1].after))
    return batches


class RetentionStoreContract(StoreFixtures):
    """``purge_ended`` deletes only tasks that ended before the cut-off."""

    def test_the_purge_deletes_only_tasks_that_ended_before_the_cut_off(
            self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        old = seeded.submit(3, at=now)
        end_tasks(seeded, old[:2], now + 1, "success")
        end_tasks(seeded, old[2:], now + 2, "failed")
        recent = seeded.submit(1, at=now + 3)
        end_tasks(seeded, recent, now + 50)
        queued = seeded.submit(2, at=now + 3)
        deleted = sum(batch.deleted for batch in purge_all(store, now + 10, 500))
        assert deleted == 3
        assert {task.id for task in store.get_tasks(old + recent + queued)} == {
            *recent, *queued}

    def test_unfinished_tasks_are_never_deleted_however_old(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        ids = seeded.submit(3, at=now)
        store.claim(seeded.endpoint.id, "s", 2, now)  # two run, one stays queued
        assert sum(b.deleted for b in purge_all(store, now + 10**6, 500)) == 0
        assert len(store.get_tasks(ids)) == 3

    def test_the_purge_goes_in_batches_of_the_limit(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        ids = seeded.submit(7, at=now)
        end_tasks(seeded, ids, now + 1)
        batches = purge_all(store, now + 10, 3)
        assert [batch.deleted for batch in batches][:3] == [3, 3, 1]
        assert sum(batch.deleted for batch in batches) == 7
        assert batches[-1].done and store.get_tasks(ids) == []
        again = store.purge_ended(now + 10, 3)
        assert (again.deleted, again.done) == (0, True)

    def test_a_kept_task_does_not_stop_the_purge_of_later_ones(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        first = seeded.submit(1, at=now)  # stays queued
        later = seeded.submit(4, at=now)
        end_tasks(seeded, later, now + 1)
        assert sum(b.deleted for b in purge_all(store, now + 10, 2)) == 4
        assert [task.id for task in store.get_tasks(first + later)] == first

    def test_the_walk_stops_at_tasks_submitted_after_the_cut_off(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        seeded.submit(5, at=now + 100)
        batch = store.purge_ended(now + 10, 2)
        assert (batch.deleted, batch.done) == (0, True)

    def test_usage_loses_exactly_what_the_purge_deleted(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        bob = seed(store, "bob", now)
        ada_ids = seeded.submit(2, at=now)  # "payload 0", "payload 1": 9 each
        end_tasks(seeded, ada_ids[:1], now + 1, "success")  # + "result"
        end_tasks(seeded, ada_ids[1:], now + 1, "failed")  # + "boom"
        bob_ids = bob.submit(1, at=now)
        end_tasks(bob, bob_ids, now + 1)
        kept = seeded.submit(1, at=now)
        assert store.usage(seeded.user.id) == (1, 9 + 6 + 9 + 4 + 9)
        assert sum(b.deleted for b in purge_all(store, now + 10, 500)) == 3
        assert store.usage(seeded.user.id) == (1, 9)
        assert store.usage(bob.user.id) == (0, 0)
        assert len(store.get_tasks(kept)) == 1

    def test_purges_at_once_delete_each_task_once_and_keep_usage_exact(
            self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        ids = seeded.submit(60, at=now)
        end_tasks(seeded, ids, now + 1)
        assert store.usage(seeded.user.id) == (0, 60 * 6 + 10 * 9 + 50 * 10)
        deleted = at_once(4, lambda: sum(b.deleted for b in purge_all(store, now + 10, 7)))
        assert sum(deleted) == 60
        assert store.usage(seeded.user.id) == (0, 0)
        assert store.get_tasks(ids) == []
