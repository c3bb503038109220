"""The contract of :class:`~farcall_service.storage.interface.TaskStore`, second part:
claims by endpoint sessions, heartbeats, results recorded once, stale requeues."""

from __future__ import annotations

import threading

import pytest

from farcall_service.storage.interface import (
    QUEUED,
    RUNNING,
    ClaimedTask,
    Container,
    Endpoint,
    NewTask,
    Outcome,
    Report,
    TaskOptions,
)
from farcall_service.testing.store_fixtures import Seeded, StoreFixtures, new_id


class HandOffStoreContract(StoreFixtures):
    """An endpoint's queue is handed out in order, to one session, once."""

    def test_claims_take_the_queue_in_submission_order(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(3) + seeded.submit(2, at=seeded.now + 1)
        first = store.claim(eid, "s", 2, seeded.now)
        assert [t.id for t in first] == ids[:2]
        assert first[0].function_id == seeded.function.id
        assert first[0].payload == "code\npayload 0"  # the function's code, then the payload
        assert first[0].container is None
        assert [t.id for t in store.claim(eid, "s", 10, seeded.now)] == ids[2:]
        assert store.claim(eid, "s", 10, seeded.now) == []
        assert {store.get_task(i).status for i in ids} == {RUNNING}  # type: ignore[union-attr]
        assert store.count_outstanding(eid) == 5

    def test_a_claim_forwards_its_tasks_before_it_commits(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(3)
        seen: list[list[str]] = []

        def refuse(tasks: list[ClaimedTask]) -> None:
            seen.append([t.id for t in tasks])
            raise ConnectionError("the broker did not confirm")

        with pytest.raises(ConnectionError):
            store.claim(eid, "amqp", 2, seeded.now, forward=refuse)
        assert seen == [ids[:2]]
        assert {store.get_task(i).status for i in ids} == {QUEUED}  # type: ignore[union-attr]
        forwarded = store.claim(eid, "amqp", 5, seeded.now,
                                forward=lambda tasks: seen.append([t.id for t in tasks]))
        assert [t.id for t in forwarded] == ids and seen[-1] == ids
        assert {store.get_task(i).status for i in ids} == {RUNNING}  # type: ignore[union-attr]
        endpoint = store.get_endpoint(eid)
        assert endpoint is not None and endpoint.session_id == "amqp"
        assert endpoint.last_seen is None  # the forwarder is not the endpoint

    def test_endpoints_are_found_by_their_session(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        assert store.endpoints_in_session("amqp") == []
        store.heartbeat(eid, "amqp", {}, seeded.now)
        assert store.endpoints_in_session("amqp") == [eid]
        store.delete_endpoint(eid, seeded.now, "gone")
        assert store.endpoints_in_session("amqp") == []

    def test_a_claim_takes_only_its_endpoint_s_tasks(self, seeded: Seeded) -> None:
        store = seeded.store
        other = Endpoint(new_id(), seeded.user.id, "other", created_at=seeded.now)
        store.save_endpoint(other)
        mine = seeded.submit(1)
        theirs = seeded.submit(1, endpoint=other.id)
        assert [t.id for t in store.claim(seeded.endpoint.id, "s", 5, seeded.now)] == mine
        assert [t.id for t in store.claim(other.id, "s", 5, seeded.now)] == theirs

    def test_a_claimed_task_carries_its_function_s_container(self, seeded: Seeded) -> None:
        store = seeded.store
        container = Container(new_id(), seeded.user.id, "img", "docker", "x:1", created_at=1.0)
        store.create_container(container)
        store.set_function_container(seeded.function.id, container.id)
        seeded.submit(1)
        (task,) = store.claim(seeded.endpoint.id, "s", 1, seeded.now)
        assert task.container == container

    def test_a_new_session_takes_back_the_old_one_s_tasks(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(4)
        assert [t.id for t in store.claim(eid, "old", 2, seeded.now)] == ids[:2]
        # The new session gets the old one's tasks first: they were submitted first.
        assert [t.id for t in store.claim(eid, "new", 3, seeded.now + 1)] == ids[:3]
        endpoint = store.get_endpoint(eid)
        assert endpoint is not None
        assert (endpoint.session_id, endpoint.last_seen) == ("new", seeded.now + 1)
        # A result from the old session still counts: the task ran.
        recorded = store.record_reports([Report(eid, "old", [Outcome(ids[0], "success")],
                                                seeded.now + 2)])
        assert recorded[0].recorded == [ids[0]]

    def test_concurrent_claims_never_share_a_task(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(300)
        claimed: list[str] = []
        lock = threading.Lock()

        def claimer() -> None:
            while got := store.claim(eid, "one session", 7, seeded.now):
                with lock:
                    claimed.extend(task.id for task in got)

        threads = [threading.Thread(target=claimer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed) == sorted(ids)

    def test_a_heartbeat_keeps_load_and_a_new_session_requeues(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ids = seeded.submit(3)
        store.claim(eid, "s1", 2, seeded.now)
        assert store.heartbeat(eid, "s1", {"idle_workers": 1}, seeded.now + 1) == 0
        endpoint = store.get_endpoint(eid)
        assert endpoint is not None
        assert (endpoint.session_id, endpoint.last_seen, endpoint.heartbeat) == (
            "s1", seeded.now + 1, {"idle_workers": 1})
        assert store.heartbeat(eid, "s2", {}, seeded.now + 2) == 2
        assert [store.get_task(i).status for i in ids] == [QUEUED] * 3  # type: ignore[union-attr]
        assert store.get_endpoint(eid).session_id == "s2"  # type: ignore[union-attr]

    def test_a_result_is_recorded_once(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        ok, failed, twice = seeded.submit(3)
        store.claim(eid, "s", 3, seeded.now)
        outcomes = [
            Outcome(ok, "success", "result", details={"t": [1]}),
            Outcome(failed, "failed", exception="Traceback", exception_data="data"),
            Outcome(twice, "success", "first"),
            Outcome(twice, "success", "second"),  # a repeat within one report
        ]
        (result,) = store.record_reports([Report(eid, "s", outcomes, seeded.now + 1)])
        assert (result.recorded, result.duplicates, result.rejected) == (
            [ok, failed, twice], [twice], [])
        assert {t.id: t for t in result.finished} == {
            i: store.get_task(i) for i in (ok, failed, twice)}
        task = store.get_task(ok)
        assert task is not None
        assert (task.status, task.result, task.details, task.completion_t) == (
            "success", "result", {"t": [1]}, seeded.now + 1)
        task = store.get_task(failed)
        assert task is not None
        assert (task.status, task.exception, task.exception_data) == (
            "failed", "Traceback", "data")
        assert store.get_task(twice).result == "first"  # type: ignore[union-attr]
        (again,) = store.record_reports([Report(eid, "s", [Outcome(ok, "failed")],
                                                seeded.now + 2)])
        assert (again.recorded, again.duplicates, again.finished) == ([], [ok], [])
        assert store.get_task(ok).status == "success"  # type: ignore[union-attr]

    def test_results_for_unknown_or_other_endpoints_tasks_are_rejected(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        other = Endpoint(new_id(), seeded.user.id, "other", created_at=seeded.now)
        store.save_endpoint(other)
        (theirs,) = seeded.submit(1, endpoint=other.id)
        unknown = new_id()
        reports = [Report(eid, "s", [Outcome(theirs, "success"), Outcome(unknown, "success")],
                          seeded.now),
                   Report(other.id, "s", [], seeded.now)]
        first, second = store.record_reports(reports)
        assert (first.recorded, first.rejected) == ([], [theirs, unknown])
        assert (second.recorded, second.duplicates, second.rejected) == ([], [], [])
        assert store.get_task(theirs).status == QUEUED  # type: ignore[union-attr]

    def test_a_report_marks_its_endpoint_seen(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        (task,) = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        store.record_reports([Report(eid, "s", [Outcome(task, "success")], seeded.now + 30)])
        last_seen = store.get_endpoint(eid).last_seen  # type: ignore[union-attr]
        assert last_seen is not None and seeded.now + 29 <= last_seen <= seeded.now + 30

    def test_a_submission_records_reports_and_hands_tasks_to_a_waiting_claim(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        (running,) = seeded.submit(1)
        store.claim(eid, "s", 1, seeded.now)
        handed, queued = (NewTask(new_id(), seeded.function.id, "p") for _ in range(2))
        report = Report(eid, "s", [Outcome(running, "success", "r")], seeded.now)
        submitted = store.submit(
            seeded.user.id, new_id(), [(eid, handed), (eid, queued)], TaskOptions(),
            seeded.now, claimed={eid: ("s", [handed.id])}, reports=[report])
        assert submitted.stale == set()
        assert [r.recorded for r in submitted.recorded] == [[running]]
        assert store.get_task(running).status == "success"  # type: ignore[union-attr]
        assert store.get_task(handed.id).status == RUNNING  # type: ignore[union-attr]
        assert store.get_task(queued.id).status == QUEUED  # type: ignore[union-attr]
        # The claim's session recorded the handed task: it is not handed out again.
        assert [t.id for t in store.claim(eid, "s", 5, seeded.now)] == [queued.id]

    def test_tasks_handed_to_a_replaced_session_are_queued(self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        store.heartbeat(eid, "new", {}, seeded.now)
        handed = NewTask(new_id(), seeded.function.id, "p")
        submitted = store.submit(seeded.user.id, new_id(), [(eid, handed)], TaskOptions(),
                                 seeded.now, claimed={eid: ("old", [handed.id])})
        assert submitted.stale == {eid}
        assert store.get_task(handed.id).status == QUEUED  # type: ignore[union-attr]
        assert [t.id for t in store.claim(eid, "new", 5, seeded.now)] == [handed.id]

    def test_handed_tasks_no_claim_answered_with_go_back_to_the_queue(
            self, seeded: Seeded) -> None:
        store, eid = seeded.store, seeded.endpoint.id
        store.heartbeat(eid, "s", {}, seeded.now)
        handed, other = (NewTask(new_id(), seeded.function.id, "p") for _ in range(2))
        store.submit(seeded.user.id, new_id(), [(eid, handed), (eid, other)], TaskOptions(),
                     seeded.now, claimed={eid: ("s", [handed.id, other.id])})
        store.record_reports([Report(eid, "s", [Outcome(other.id, "success", "r")], seeded.now)])
        # Only what the session still holds unfinished goes back; another session's
        # name, or an unknown id, changes nothing.
        assert store.release(eid, "another", [handed.id]) == 0
        assert store.release(eid, "s", [handed.id, other.id, new_id()]) == 1
        assert store.get_task(handed.id).status == QUEUED  # type: ignore[union-attr]
        assert store.get_task(other.id).status == "success"  # type: ignore[union-attr]
        assert [t.id for t in store.claim(eid, "s", 5, seeded.now)] == [handed.id]

    def test_silent_endpoints_lose_their_claimed_tasks(self, seeded: Seeded) -> None:
        store, now = seeded.store, seeded.now
        silent, alive, fresh, idle = (
            Endpoint(new_id(), seeded.user.id, name, created_at=now)
            for name in ("silent", "alive", "fresh", "idle"))
        tasks = {}
        for endpoint, seen in ((silent, now), (alive, now), (fresh, now + 100), (idle, now)):
            store.save_endpoint(endpoint)
            if endpoint is not idle:
                tasks[endpoint.id] = seeded.submit(1, endpoint=endpoint.id)[0]
                store.claim(endpoint.id, "s", 1, seen)
            else:
                store.heartbeat(endpoint.id, "s", {}, seen)
        requeued = store.requeue_stale(now + 50, alive={alive.id})
        assert requeued == [silent.id]
        assert store.get_task(tasks[silent.id]).status == QUEUED  # type: ignore[union-attr]
        for endpoint in (alive, fresh):
            assert store.get_task(tasks[endpoint.id]).status == RUNNING  # type: ignore[union-attr]
        assert store.requeue_stale(now + 50, alive={alive.id}) == []
