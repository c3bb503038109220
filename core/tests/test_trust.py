"""EndpointTrust without a service: which endpoints are trusted, what is asked and read."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path
from typing import Any

import pytest
from farcall.errors import FarcallError
from farcall.sdk.errors import FarcallAPIError, UntrustedResultError
from farcall.sdk.trust import OWNED_MARK, EndpointTrust
from farcall.serialize import Serializer

MINE, THEIRS, GONE = (f"{n}0000000-0000-4000-8000-000000000000" for n in (1, 2, 3))
JSON_PATH, DILL_PATH = (f"globus_compute_sdk.serialize.{n}" for n in ("JSONData", "DillDataBase64"))
#: msgpack goes first where its plugin is installed; the official endpoint skips it.
MSGPACK = ["mp"] if "mp" in Serializer().registry.types else []


class _Writes:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"open({str(self.path)!r}, 'w').write('x')",)


def forged(path: Path) -> str:
    return "00\n" + base64.b64encode(pickle.dumps(_Writes(path))).decode()


def make(**options: Any) -> tuple[EndpointTrust, list[str], list[dict[str, Any]]]:
    asked: list[str] = []
    kept: list[dict[str, Any]] = []

    def lookup(endpoint_id: str) -> dict[str, Any]:
        asked.append(endpoint_id)
        if endpoint_id == GONE:
            raise FarcallAPIError("GET", "/v2/endpoints/x", 404, "NOT_FOUND", "no")
        return {"is_owner": endpoint_id == MINE}

    return EndpointTrust(Serializer(), lookup, remember=kept.append, **options), asked, kept


def test_owned_endpoints_are_trusted_and_asked_about_once() -> None:
    trust, asked, _kept = make()
    assert trust.trusts(MINE) and trust.trusts(MINE)
    assert not trust.trusts(THEIRS) and not trust.trusts(GONE) and not trust.trusts(None)
    assert asked == [MINE, THEIRS, GONE]
    assert trust.result_serializers(MINE) is None
    # JSON spelled as the official endpoint takes it (farcall's takes every spelling).
    assert trust.result_serializers(THEIRS) == [*MSGPACK, JSON_PATH]


def test_named_and_all_endpoints_need_no_lookup() -> None:
    trust, asked, _kept = make(trusted_endpoints=[THEIRS.upper()])
    assert trust.trusts(THEIRS) and asked == []
    trust, asked, _kept = make(trusted_endpoints="*")
    assert trust.trusts(GONE) and trust.trusts(None) and asked == []
    with pytest.raises(FarcallError, match="must be a UUID"):
        make(trusted_endpoints=["not-an-id"])


def test_untrusted_code_strategies_are_refused_unread(tmp_path: Path) -> None:
    trust, asked, _kept = make()
    document = {"task_id": "t", "endpoint_id": THEIRS, "result": forged(tmp_path / "f")}
    with pytest.raises(UntrustedResultError, match=THEIRS) as refused:
        trust.read_result(document)
    assert refused.value.strategy == "00" and not (tmp_path / "f").exists()
    # JSON from anyone is read without asking who owns the endpoint.
    assert trust.read_result({"endpoint_id": GONE, "result": "11\n[1]"}) == [1]
    assert asked == [THEIRS]
    failed = {"endpoint_id": THEIRS, "exception_data": forged(tmp_path / "f")}
    assert trust.read_exception(failed) is None and not (tmp_path / "f").exists()


def test_owned_results_are_read_and_remembered_for_offline_reads() -> None:
    trust, _asked, kept = make()
    document = {"task_id": "t", "endpoint_id": MINE, "result": Serializer().serialize({1})}
    assert trust.read_result(document) == {1}
    assert kept == [{**document, OWNED_MARK: True}]
    offline, asked, _kept = make()
    assert offline.read_result(kept[0]) == {1} and asked == []  # the mark answers
    raised = {"endpoint_id": MINE, "exception_data": Serializer().serialize(KeyError("k"))}
    assert isinstance(trust.read_exception(raised), KeyError)


def test_allowed_deserializer_types() -> None:
    trust, _asked, _kept = make(allowed_deserializer_types=[
        "globus_compute_sdk.serialize.DillDataBase64", "JSONData"])
    assert trust.result_serializers(THEIRS) == [JSON_PATH, DILL_PATH]  # no-code ones first
    assert trust.read_result({"endpoint_id": THEIRS,
                              "result": Serializer().serialize({2})}) == {2}
    wild, _asked, _kept = make(allowed_deserializer_types=["globus_compute_sdk.*Data"])
    assert "00" in wild.allowed and wild.requested[: len(MSGPACK) + 1] == [*MSGPACK, JSON_PATH]
    with pytest.raises(FarcallError, match="empty"):
        make(allowed_deserializer_types=[])
