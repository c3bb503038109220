"""The contract of the result outbox (:meth:`TaskStore.stream_group`,
:meth:`TaskStore.drain_outbox`): every ended task of a streamed group is in the outbox
from the transaction that ended it until a publish of it has returned."""

from __future__ import annotations

import threading

import pytest

from farcall_service.storage.interface import Outcome, Report, Store, Task
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, at_once, new_id, seed


def drained(store: Store, limit: int = 100) -> list[Task]:
    """Everything in the outbox, published into a list."""
    got: list[Task] = []
    while store.drain_outbox(limit, got.extend):
        pass
    return got


class OutboxStoreContract(StoreFixtures):
    """Streamed groups' results wait in the outbox until they are published."""

    def test_a_streamed_group_s_results_wait_in_the_outbox(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        group = new_id()
        assert store.stream_group(group, seeded.user.id, seeded.now)
        assert store.group_streamed(group, seeded.user.id)
        ok, failed, left = seeded.submit(3, group)
        plain = seeded.submit(1)  # another group: not streamed
        store.claim(eid, "s", 4, seeded.now)
        (recorded,) = store.record_reports([Report(eid, "s", [
            Outcome(ok, "success", "r"), Outcome(failed, "failed", exception="boom"),
            Outcome(plain[0], "success", "r")], seeded.now + 1)])
        assert recorded.streamed
        got = drained(seeded.store)
        assert sorted(t.id for t in got) == sorted([ok, failed])
        by_id = {t.id: t for t in got}
        assert by_id[ok].result == "r" and by_id[ok].status == "success"
        assert by_id[failed].exception == "boom"
        assert by_id[ok].task_group_id == group
        assert drained(seeded.store) == []  # deleted once published
        assert left not in by_id

    def test_plain_groups_leave_the_outbox_empty(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        (task,) = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        (recorded,) = store.record_reports([Report(eid, "s", [Outcome(task, "success", "r")],
                                                   seeded.now)])
        assert not recorded.streamed
        assert drained(seeded.store) == []
        assert not store.group_streamed(store.get_task(task).task_group_id,  # type: ignore[union-attr]
                                        seeded.user.id)

    def test_a_failed_publish_leaves_the_rows_for_the_next_try(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        (task,) = seeded.submit(1, group)
        store.claim(eid, "s", 1, seeded.now)
        store.record_reports([Report(eid, "s", [Outcome(task, "success", "r")], seeded.now)])

        def refuse(_tasks: list[Task]) -> None:
            raise ConnectionError("the broker is away")

        with pytest.raises(ConnectionError):
            store.drain_outbox(10, refuse)
        assert [t.id for t in drained(seeded.store)] == [task]

    def test_the_outbox_is_taken_oldest_first_in_batches(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        ids = seeded.submit(5, group)
        store.claim(eid, "s", 5, seeded.now)
        for i, task_id in enumerate(ids):
            store.record_reports([Report(eid, "s", [Outcome(task_id, "success", "r")],
                                         seeded.now + i)])
        batches: list[list[str]] = []
        while store.drain_outbox(2, lambda tasks: batches.append([t.id for t in tasks])):
            pass
        assert batches == [ids[:2], ids[2:4], ids[4:]]

    def test_the_service_s_own_failures_go_to_the_outbox(self, seeded: Seeded) -> None:
        """An endpoint deleted, a user removed: their tasks end, and their streams hear."""
        store = seeded.store
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        on_deleted = seeded.submit(2, group)
        store.delete_endpoint(seeded.endpoint.id, seeded.now, "endpoint deleted")
        assert sorted(t.id for t in drained(seeded.store)) == sorted(on_deleted)
        bob = seed(store, "bob", seeded.now)
        theirs = new_id()
        assert store.stream_group(theirs, bob.user.id, seeded.now)
        removed = bob.submit(2, theirs)
        store.remove_user(bob.user.id, seeded.now, "user removed")
        got = drained(seeded.store)
        assert sorted(t.id for t in got) == sorted(removed)
        assert {t.exception for t in got} == {"user removed"}
        assert {t.status for t in got} == {"failed"}

    def test_another_user_s_group_is_not_streamed_for_them(self, seeded: Seeded) -> None:
        store = seeded.store
        group = new_id()
        seeded.submit(1, group)
        bob = seed(store, "bob", seeded.now)
        assert not store.stream_group(group, bob.user.id, seeded.now)
        assert not store.group_streamed(group, bob.user.id)
        assert not store.group_streamed(group, seeded.user.id)
        assert store.stream_group(group, seeded.user.id, seeded.now)  # the owner may
        assert store.stream_group(group, seeded.user.id, seeded.now)  # twice, too
        assert not store.group_streamed(group, bob.user.id)

    def test_another_user_s_tasks_in_a_streamed_group_stay_out(self, seeded: Seeded) -> None:
        """Their results would go to a queue named for the group's owner: they don't."""
        store = seeded.store
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        bob = seed(store, "bob", seeded.now)
        (theirs,) = bob.submit(1, group)
        store.claim(bob.endpoint.id, "s", 1, seeded.now)
        (recorded,) = store.record_reports([Report(bob.endpoint.id, "s", [
            Outcome(theirs, "success", "r")], seeded.now)])
        assert recorded.recorded == [theirs] and not recorded.streamed
        assert drained(seeded.store) == []

    def test_concurrent_drains_never_publish_a_row_twice(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        group = new_id()
        store.stream_group(group, seeded.user.id, seeded.now)
        ids = seeded.submit(40, group)
        store.claim(eid, "s", 40, seeded.now)
        store.record_reports([Report(eid, "s", [Outcome(i, "success", "r") for i in ids],
                                     seeded.now)])
        published: list[str] = []
        lock = threading.Lock()

        def publish(tasks: list[Task]) -> None:
            with lock:
                published.extend(t.id for t in tasks)

        def drain() -> None:
            while store.drain_outbox(3, publish):
                pass

        at_once(4, drain)
        assert sorted(published) == sorted(ids)
