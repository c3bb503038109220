"""The contract of :class:`~farcall_service.storage.interface.CatalogueStore`: functions,
containers and endpoints."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from farcall_service.storage.interface import (
    QUEUED,
    RUNNING,
    Container,
    Endpoint,
    EndpointGone,
    Function,
    Outcome,
    Report,
    Store,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, new_id


class CatalogueStoreContract(StoreFixtures):
    """What tasks run, and where; deleted functions and endpoints are not found again."""

    def test_a_function_is_kept_as_given(self, store: Store) -> None:
        ada = store.create_user("ada")
        group = store.create_group("lab")
        container = Container(new_id(), ada.id, "img", "docker", "docker.io/x:1", "d", 1.0)
        store.create_container(container)
        function = Function(new_id(), ada.id, "f", "code\n", "about f", {"python": "3.12"},
                            True, group.id, container.id, new_id(), 2.5)
        store.create_function(function)
        assert store.get_function(function.id) == function
        assert store.get_container(container.id) == container
        assert store.get_function(new_id()) is None
        assert store.get_container(new_id()) is None

    def test_a_deleted_function_is_not_found(self, seeded: Seeded) -> None:
        store = seeded.store
        store.delete_function(seeded.function.id)
        assert store.get_function(seeded.function.id) is None
        hits, total = store.search_functions("", seeded.user.id, [], 0, 10)
        assert (hits, total) == ([], 0)

    def test_a_function_changes_container(self, seeded: Seeded) -> None:
        store, fid = seeded.store, seeded.function.id
        container = Container(new_id(), seeded.user.id, "img", "apptainer", "/x.sif")
        store.create_container(container)
        store.set_function_container(fid, container.id)
        assert store.get_function(fid).container_id == container.id  # type: ignore[union-attr]
        store.set_function_container(fid, None)
        assert store.get_function(fid).container_id is None  # type: ignore[union-attr]

    def test_search_finds_what_the_user_may_see(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        lab = store.create_group("lab")

        def function(owner: str, name: str, at: float, **fields: Any) -> str:
            made = Function(new_id(), owner, name, "code\n", created_at=at)
            store.create_function(dataclasses.replace(made, **fields))
            return made.id

        own = function(ada.id, "mine", 1.0)
        public = function(bob.id, "public", 2.0, public=True)
        shared = function(bob.id, "shared", 3.0, group_id=lab.id)
        function(bob.id, "private", 4.0)
        hits, total = store.search_functions("", ada.id, [lab.id], 0, 10)
        assert ([f.id for f in hits], total) == ([own, public, shared], 3)
        hits, total = store.search_functions("", ada.id, [], 0, 10)
        assert ([f.id for f in hits], total) == ([own, public], 2)

    def test_search_matches_every_word_literally_and_pages(self, store: Store) -> None:
        ada = store.create_user("ada")
        ids = []
        for at, (name, description) in enumerate([
            ("Fit Curve", "least squares"),
            ("fit_line", None),
            ("fitline", "a 100% straight line"),
            ("plot", "draws a FIT"),
        ]):
            function = Function(new_id(), ada.id, name, "code\n", description, created_at=at)
            store.create_function(function)
            ids.append(function.id)

        def search(query: str, offset: int = 0, limit: int = 10) -> tuple[list[str], int]:
            hits, total = store.search_functions(query, ada.id, [], offset, limit)
            return [f.id for f in hits], total

        assert search("fit") == (ids, 4)  # in name or description, any case
        assert search("FIT squares") == ([ids[0]], 1)  # every word
        assert search("fit_") == ([ids[1]], 1)  # "_" is not a wildcard
        assert search("100%") == ([ids[2]], 1)  # nor is "%"
        assert search("fit", offset=1, limit=2) == (ids[1:3], 4)
        assert search("nothing") == ([], 0)

    def test_an_endpoint_is_kept_and_updated(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        endpoint = Endpoint(new_id(), ada.id, "ep", "My EP", {"os": "linux"}, False,
                            ("f1", "f2"), created_at=5.0)
        store.save_endpoint(endpoint)
        assert store.get_endpoint(endpoint.id) == endpoint
        store.lock_endpoint(endpoint.id, 7.0)
        store.heartbeat(endpoint.id, "session", {"load": 1}, 9.0)
        changed = dataclasses.replace(endpoint, owner_id=bob.id, name="ep2", display_name=None,
                                      metadata={}, public=True, allowed_functions=None,
                                      created_at=99.0)
        store.save_endpoint(changed)
        found = store.get_endpoint(endpoint.id)
        # What a registration says is replaced; the rest is the endpoint's own.
        assert found == dataclasses.replace(changed, created_at=5.0, locked_until=7.0,
                                            session_id="session", last_seen=9.0,
                                            heartbeat={"load": 1})
        assert store.get_endpoint(new_id()) is None

    def test_endpoints_are_listed_for_their_owner_oldest_first(self, store: Store) -> None:
        ada, bob = store.create_user("ada"), store.create_user("bob")
        second = Endpoint(new_id(), ada.id, "second", created_at=2.0)
        first = Endpoint(new_id(), ada.id, "first", created_at=1.0)
        public = Endpoint(new_id(), bob.id, "public", public=True, created_at=3.0)
        for endpoint in (second, first, public, Endpoint(new_id(), bob.id, "bob's")):
            store.save_endpoint(endpoint)
        assert store.list_endpoints(ada.id, include_public=False) == [first, second]
        assert store.list_endpoints(ada.id, include_public=True) == [first, second, public]
        assert store.list_endpoints(new_id(), include_public=False) == []

    def test_a_deleted_endpoint_s_id_stays_taken_and_its_tasks_fail(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        done, claimed, queued = seeded.submit(3)
        store.claim(eid, "s", 2, seeded.now)
        store.record_reports([_report(eid, done, seeded.now)])
        assert store.endpoint_id_taken(eid)
        assert not store.endpoint_id_taken(new_id())
        store.delete_endpoint(eid, seeded.now + 1, "endpoint deleted")
        assert store.get_endpoint(eid) is None
        assert store.endpoint_id_taken(eid)
        assert store.list_endpoints(seeded.user.id, include_public=True) == []
        assert store.get_task(done).status == "success"  # type: ignore[union-attr]
        for task_id in (claimed, queued):
            task = store.get_task(task_id)
            assert task is not None
            assert (task.status, task.exception, task.completion_t) == (
                "failed", "endpoint deleted", seeded.now + 1)

    def test_a_submission_to_a_deleted_endpoint_stores_nothing(self, seeded: Seeded) -> None:
        """Checked in the submission's transaction: a service process that still
        caches the endpoint (another process deleted it) cannot queue tasks on it."""
        store, eid = seeded.store, seeded.endpoint.id
        store.delete_endpoint(eid, seeded.now, "endpoint deleted")
        with pytest.raises(EndpointGone) as raised:
            seeded.submit(2)
        assert raised.value.endpoint_id == eid
        assert store.count_outstanding(eid) == 0
        assert store.usage(seeded.user.id) == (0, 0)

    def test_a_locked_endpoint_loses_its_session_and_claimed_tasks(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        claimed, queued = seeded.submit(2)
        assert [t.id for t in store.claim(eid, "s", 1, seeded.now)] == [claimed]
        store.lock_endpoint(eid, seeded.now + 60)
        endpoint = store.get_endpoint(eid)
        assert endpoint is not None
        assert (endpoint.locked_until, endpoint.session_id) == (seeded.now + 60, None)
        assert [store.get_task(t).status for t in (claimed, queued)] == [  # type: ignore[union-attr]
            QUEUED, QUEUED]
        assert store.count_outstanding(eid) == 2
        assert [t.id for t in store.claim(eid, "s", 5, seeded.now)] == [claimed, queued]
        assert store.get_task(claimed).status == RUNNING  # type: ignore[union-attr]


def _report(endpoint_id: str, task_id: str, now: float) -> Report:
    return Report(endpoint_id, "s", [Outcome(task_id, "success", "result")], now)
