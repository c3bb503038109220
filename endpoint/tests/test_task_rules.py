"""Per-task rules end to end: time limits, result size, serializer allowlist,
allowed_functions, and the transitions each task records."""

from __future__ import annotations

from farcall.serialize import Serializer


def nap(seconds):
    import time

    time.sleep(seconds)
    return "rested"


def big(n):
    return "x" * n


def double(x):
    return 2 * x


def refused_one(x):
    return x


def test_task_rules(api, make_endpoint) -> None:
    f_nap, f_big, f_double = (api.register_function(f) for f in (nap, big, double))
    f_source = api.register_function(double, serializer=Serializer(code_strategy="st"))
    f_refused = api.register_function(refused_one)
    endpoint = make_endpoint(
        "strict",
        engine={"type": "process", "workers": 2},
        task_timeout=30,
        max_result_size=2000,
        allowed_serializers=["DillCode", "globus_compute_sdk.serialize.concretes.DillDataBase64"],
        allowed_functions=[f_nap, f_big, f_double, f_source],
    )
    # Queued before the endpoint restricts itself: the endpoint must refuse it.
    api.register_endpoint(endpoint.endpoint_id, "strict")
    [t_refused] = api.submit(endpoint.endpoint_id, f_refused, [(1,)])
    endpoint.start()

    [t_timeout] = api.submit(endpoint.endpoint_id, f_nap, [(60,)],
                             resource_specification={"timeout": 1})
    [t_nap_ok] = api.submit(endpoint.endpoint_id, f_nap, [(0.01,)],
                            resource_specification={"timeout": 20})
    t_small, t_big = api.submit(endpoint.endpoint_id, f_big, [(10,), (5000,)])
    [t_source] = api.submit(endpoint.endpoint_id, f_source, [(4,)])
    [t_double] = api.submit(endpoint.endpoint_id, f_double, [(4,)])
    docs = api.wait([t_refused, t_timeout, t_nap_ok, t_small, t_big, t_source, t_double])

    assert docs[t_refused]["status"] == "failed"
    assert "not in this endpoint's allowed_functions" in docs[t_refused]["exception"]
    # Registered with the service too: new submissions are refused there.
    answer = api.http.post(f"{api.url}/v3/endpoints/{endpoint.endpoint_id}/submit",
                           json={"tasks": {f_refused: [api.payload(1)]}})
    assert answer.status_code == 403, answer.text

    assert docs[t_timeout]["status"] == "failed"
    assert "exceeded its time limit of 1 s" in docs[t_timeout]["exception"]
    assert api.result(docs[t_nap_ok]) == "rested"

    assert api.result(docs[t_small]) == "x" * 10
    assert docs[t_big]["status"] == "failed"
    assert "MaxResultSizeExceeded" in docs[t_big]["exception"]
    assert "exceeded current limit of 2000B" in docs[t_big]["exception"]

    assert docs[t_source]["status"] == "failed"
    assert "strategy 'st' is not allowed" in docs[t_source]["exception"]
    assert api.result(docs[t_double]) == 8

    steps = docs[t_double]["details"]["task_transitions"]
    assert list(steps) == ["received", "running", "success"]
    assert steps["received"] <= steps["running"] <= steps["success"]
    failed_steps = docs[t_timeout]["details"]["task_transitions"]
    assert list(failed_steps) == ["received", "running", "failed"]


def test_config_timeout_applies_by_default(api, make_endpoint) -> None:
    f_nap = api.register_function(nap)
    endpoint = make_endpoint("hasty", engine={"type": "thread", "workers": 2}, task_timeout=0.5)
    endpoint.start()
    t_late, t_ok = api.submit(endpoint.endpoint_id, f_nap, [(5,), (0.01,)])
    docs = api.wait([t_late, t_ok])
    assert "exceeded its time limit of 0.5 s" in docs[t_late]["exception"]
    assert api.result(docs[t_ok]) == "rested"
    # The abandoned thread was replaced: the engine still has its two workers.
    assert api.status(endpoint.endpoint_id)["details"]["total_workers"] == 2
