"""A value the database cannot store (PostgreSQL refuses NUL characters in text) is
a 422 ``UNSTORABLE_VALUE`` that loses nothing: the transaction rolls back, whether
its statements went one by one or pipelined, and the next request is served."""

from __future__ import annotations

from farcall_testkit.service import Caller, assert_error, payload


def _packed(*buffers: str) -> str:
    return "".join(f"{len(buffer)}\n{buffer}" for buffer in buffers)


#: A well-formed payload (two buffers with their strategy headers) with a NUL inside.
WITH_NUL = _packed("00\nnul\x00inside\n", "00\ngAR9lC4=\n")


def _postgresql(alice: Caller) -> bool:
    return str(alice.client.app.state.farcall.store.engine.dialect.name) == "postgresql"


def test_a_submission_with_a_nul_character_is_stored_whole_or_refused_whole(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    answer = alice.post(f"/v3/endpoints/{ep}/submit",
                        json={"tasks": {fn: [payload(1), WITH_NUL]}})
    if _postgresql(alice):
        assert_error(answer, 422, "UNSTORABLE_VALUE")
        assert alice.claim(ep) == []  # neither task was stored
    else:
        assert answer.status_code == 200, answer.text
        assert any(t["payload"].endswith(WITH_NUL) for t in alice.claim(ep, max_tasks=2))
    assert alice.submit(ep, fn, 2).status_code == 200  # and the next one is served


def test_a_report_with_a_nul_character_is_recorded_whole_or_refused_whole(
        alice: Caller, ep_fn: tuple[str, str]) -> None:
    ep, fn = ep_fn
    ids = alice.submit(ep, fn, 1, count=2).json()["tasks"][fn]
    assert len(alice.claim(ep, max_tasks=2)) == 2
    results = [{"task_id": ids[0], "status": "success", "result": "11\nfine"},
               {"task_id": ids[1], "status": "success", "result": "11\nnul\x00inside"}]
    answer = alice.post(f"/farcall/v1/endpoints/{ep}/results",
                        json={"session": "s1", "results": results})
    if _postgresql(alice):
        assert_error(answer, 422, "UNSTORABLE_VALUE")
        for task_id in ids:  # neither result was kept: both tasks still run
            assert alice.get(f"/v2/tasks/{task_id}").json()["status"] != "success"
        assert alice.report(ep, results[:1]) == {"acknowledged": [ids[0]], "rejected": []}
    else:
        assert answer.status_code == 200, answer.text
        assert alice.get(f"/v2/tasks/{ids[1]}").json()["result"] == "11\nnul\x00inside"
