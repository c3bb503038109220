"""The contract of :class:`~farcall_service.storage.interface.BrowseStore`, the reads
behind the dashboard: pages of one owner's tasks newest first (keyed, never another
owner's), counts by status, an endpoint's load, the admin role and listings."""

from __future__ import annotations

from farcall_service.storage.interface import (
    QUEUED,
    RUNNING,
    Outcome,
    Report,
    TaskFilter,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, seed


class BrowseStoreContract(StoreFixtures):
    """What the dashboard reads."""

    def test_pages_of_tasks_are_newest_first_and_the_owner_s_only(self, seeded: Seeded) -> None:
        store = seeded.store
        ids = seeded.submit(7)
        seed(store, "bob", seeded.now).submit(3, endpoint=seeded.endpoint.id)
        first = store.list_tasks(seeded.user.id, TaskFilter(), 3)
        assert [t.id for t in first.tasks] == ids[::-1][:3]
        assert first.next_before is not None
        second = store.list_tasks(seeded.user.id, TaskFilter(), 3, first.next_before)
        third = store.list_tasks(seeded.user.id, TaskFilter(), 3, second.next_before)
        assert [t.id for t in second.tasks + third.tasks] == ids[::-1][3:]
        assert third.next_before is None
        exact = store.list_tasks(seeded.user.id, TaskFilter(), 7)
        assert len(exact.tasks) == 7 and exact.next_before is None

    def test_filters_and_counts(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        early = seeded.submit(2, at=seeded.now - 7200)
        seeded.submit(3)
        claimed = store.claim(seeded.endpoint.id, "s", 3, seeded.now)
        assert {t.id for t in claimed[:2]} == set(early)
        later = seeded.now + 5
        store.record_reports([Report(seeded.endpoint.id, "s", [
            Outcome(claimed[0].id, "success", "r"),
            Outcome(claimed[1].id, "failed", exception="boom")], later)])
        failed = store.list_tasks(user.id, TaskFilter(status="failed"), 10)
        assert [t.id for t in failed.tasks] == [claimed[1].id]
        recent = store.list_tasks(user.id, TaskFilter(since=seeded.now - 60), 10)
        assert len(recent.tasks) == 3
        elsewhere = store.list_tasks(user.id, TaskFilter(endpoint_id="e" * 8), 10)
        assert elsewhere.tasks == []
        by_function = store.list_tasks(user.id, TaskFilter(function_id=seeded.function.id), 10)
        assert len(by_function.tasks) == 5
        assert store.count_tasks(user.id, TaskFilter()) == {
            "success": 1, "failed": 1, RUNNING: 1, QUEUED: 2}
        assert store.count_tasks(user.id, TaskFilter(function_id="f" * 8)) == {}
        assert store.endpoint_load(seeded.endpoint.id, None) == {RUNNING: 1, QUEUED: 2}
        bob = seed(store, "bob", seeded.now)
        assert store.endpoint_load(seeded.endpoint.id, bob.user.id) == {}
        assert sorted(when for _e, when in store.ended_since(user.id, seeded.now)) == [
            later, later]
        assert store.ended_since(user.id, later + 1) == []
        assert store.ended_since(bob.user.id, 0) == []
        assert store.claimed_at(claimed[2].id) == seeded.now
        assert store.claimed_at(seeded.submit(1)[0]) is None

    def test_the_admin_role_and_the_listings(self, seeded: Seeded) -> None:
        store, user = seeded.store, seeded.user
        assert store.get_user(user.id).admin is False  # type: ignore[union-attr]
        store.set_admin(user.id, True)
        assert store.get_user(user.name).admin is True  # type: ignore[union-attr]
        bob = store.create_user("bob")
        group = store.create_group("lab")
        store.create_group("empty")
        store.add_member(group.id, bob.id)
        store.add_member(group.id, user.id)
        assert [(u.name, u.admin) for u in store.list_users()] == [("ada", True),
                                                                   ("bob", False)]
        empty = store.get_group("empty")
        assert empty is not None
        assert store.list_memberships() == [("empty", "", empty.id), ("lab", "ada", group.id),
                                            ("lab", "bob", group.id)]
        store.remove_user(bob.id, seeded.now, "gone")
        assert [u.name for u in store.list_users()] == ["ada"]
