"""run_task, the one function every engine's workers call, without any service."""

from __future__ import annotations

import pytest
from farcall.serialize import Serializer, pack_buffers
from farcall_endpoint.execution import run_task

SER = Serializer()


def task(fn, *args, code=SER, result_serializers=None, **kwargs):
    payload = pack_buffers([code.serialize(fn), SER.serialize(args), SER.serialize(kwargs)])
    return {"task_id": "t1", "payload": payload, "received": 1.0,
            "result_serializers": result_serializers}


def add(a, b=0):
    return a + b


def fails():
    raise KeyError("missing thing")


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def fails_oddly():
    raise Unpicklable("odd")


def test_success_with_default_serializer_and_transitions() -> None:
    out = run_task(task(add, 2, b=3), {})
    assert out["status"] == "success"
    assert out["result"].startswith("00\n")
    assert SER.deserialize(out["result"]) == 5
    steps = out["details"]["task_transitions"]
    assert list(steps) == ["received", "running", "success"]


def test_result_serializers_first_that_works() -> None:
    json_first = ["globus_compute_sdk.serialize.concretes.JSONData", "DillDataBase64"]
    out = run_task(task(add, 2, result_serializers=json_first), {})
    assert out["result"].startswith("11\n")
    # A set is not JSON: the next strategy in the list is used.
    out = run_task(task(set, [1], result_serializers=json_first), {})
    assert out["result"].startswith("00\n") and SER.deserialize(out["result"]) == {1}
    out = run_task(task(set, [1], result_serializers=["JSONData"]), {})
    assert out["status"] == "failed" and "could not be serialized" in out["exception"]


def test_a_result_only_code_strategies_carry_says_how_to_trust_the_endpoint() -> None:
    """What the SDK asks of an endpoint its caller does not own: data only. A result
    that needs dill fails, naming the SDK option that trusts this endpoint."""
    settings = {"endpoint_id": "0b9c4f1e-6a53-4c1e-9d43-2f7f1b6e1c11"}
    out = run_task(task(set, [1], result_serializers=["11"]), settings)
    assert out["status"] == "failed"
    assert 'Client(trusted_endpoints=["0b9c4f1e-6a53-4c1e-9d43-2f7f1b6e1c11"])' in out["exception"]
    # Asked for another strategy too (unknown here), there is nothing to say about trust.
    out = run_task(task(set, [1], result_serializers=["11", "zz"]), settings)
    assert out["status"] == "failed" and "trusted_endpoints" not in out["exception"]


def test_what_the_sdk_asks_of_an_untrusted_endpoint_is_answered_in_msgpack() -> None:
    """msgpack first, JSON spelled as the official endpoint takes it next."""
    pytest.importorskip("farcall_serializer_msgpack")
    asked = ["mp", "globus_compute_sdk.serialize.JSONData"]
    out = run_task(task(tuple, [1, 2], result_serializers=asked), {"endpoint_id": "e"})
    assert out["result"].startswith("mp\n") and SER.deserialize(out["result"]) == (1, 2)
    out = run_task(task(complex, 1, 2, result_serializers=asked), {"endpoint_id": "e"})
    assert out["status"] == "failed" and "MsgpackData (mp)" in out["exception"]
    assert 'Client(trusted_endpoints=["e"])' in out["exception"]


def test_exception_text_and_data() -> None:
    out = run_task(task(fails), {})
    assert out["status"] == "failed"
    assert out["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing thing'" in out["exception"]
    assert "farcall_endpoint/execution.py" not in out["exception"]
    rebuilt = SER.deserialize(out["exception_data"])
    assert isinstance(rebuilt, KeyError) and rebuilt.args == ("missing thing",)
    odd = run_task(task(fails_oddly), {})
    assert odd["status"] == "failed" and "Unpicklable: odd" in odd["exception"]
    assert "exception_data" not in odd


def test_allowlist_spellings() -> None:
    source = Serializer(code_strategy="sd")
    assert run_task(task(add, 1, code=source), {"allowed_serializers": ["sd", "00"]})[
        "status"] == "success"
    refused = run_task(task(add, 1, code=source), {"allowed_serializers": ["01", "00"]})
    assert "strategy 'sd' is not allowed" in refused["exception"]
    wildcard = ["globus_compute_sdk.*Code", "globus_compute_sdk.*Data"]
    assert run_task(task(add, 1, code=source), {"allowed_serializers": wildcard})[
        "status"] == "success"
    data_only = run_task(task(add, 1), {"allowed_serializers": ["globus_compute_sdk.*Data"]})
    assert "strategy '01' is not allowed" in data_only["exception"]


def test_size_limit_counts_bytes() -> None:
    ok = run_task(task(str.__mul__, "é", 10), {"max_result_size": 10_000})
    assert ok["status"] == "success"
    over = run_task(task(str.__mul__, "x", 5000), {"max_result_size": 1000})
    assert over["status"] == "failed"
    assert over["exception"].startswith("MaxResultSizeExceeded: Task result of ")
    assert over["exception"].endswith("B exceeded current limit of 1000B")


def test_malformed_payload_is_refused() -> None:
    out = run_task({"task_id": "t", "payload": "3\nabc"}, {})
    assert out["status"] == "failed" and "could not be deserialized" in out["exception"]
