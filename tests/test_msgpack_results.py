"""Results from an endpoint the caller does not trust arrive as msgpack, types intact.

``farcall dev`` runs a real service and a real endpoint (``local``, its dev user's);
the dev user makes it public and a second user, who does not own it, runs functions
there. Their results travel as ``mp`` and come back as tuples, bytes, big integers,
datetimes, UUIDs, decimals, sets and numpy arrays, where JSON would have turned them into
lists and strings or failed. The owner, who trusts the endpoint, still gets dill, as the
official SDK would; ``result_serializers`` chooses msgpack where the caller wants it.
The SDK's and the endpoint's channels to the service speak msgpack too (binary frames).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("farcall_dev")
pytest.importorskip("farcall_serializer_msgpack")

from farcall import Client  # noqa: E402
from farcall_testkit.dev import running_dev  # noqa: E402


def typed_result(n):
    import datetime
    import decimal
    import uuid

    import numpy

    return {
        "pair": (n, "two"),
        "blob": bytes(range(n)),
        "big": 2**80 + n,
        "when": datetime.datetime(2026, 12, 6, 18, n, tzinfo=datetime.timezone.utc),
        "id": uuid.UUID(int=n),
        "price": decimal.Decimal("19.99"),
        "tags": {"a", "b"},
        "array": numpy.arange(n, dtype=numpy.float32).reshape(2, n // 2),
        (1, 2): "a tuple key",
    }


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``farcall dev`` in a home of its own, until the module's tests are done."""
    home: Path = tmp_path_factory.mktemp("msgpack-dev")
    with running_dev(home, ["--workers", "1"]) as profile:
        yield {**profile, "home": home}


@pytest.fixture(scope="module")
def owner(dev: dict[str, Any]) -> Client:
    client = Client(dev["base_url"], token=dev["token"])
    answer = client.transport.request(
        "PUT",
        f"/v3/endpoints/{dev['endpoint_id']}",
        json={"endpoint_name": "local", "public": True},
    )
    assert answer["public"] is True
    return client


@pytest.fixture(scope="module")
def stranger(dev: dict[str, Any], owner: Client) -> Client:
    """A second user of the dev service, who does not own its endpoint."""
    from farcall_service import admin
    from farcall_service.storage import open_store

    store = open_store(f"sqlite:///{dev['home'] / 'dev' / 'farcall.db'}")
    try:
        admin.add_user(store, "bob")
        token = admin.create_token(store, "bob")
    finally:
        store.close()
    return Client(dev["base_url"], token=token)


def run(client: Client, endpoint_id: str, n: int, **batch_options: Any) -> tuple[Any, str]:
    """The result of ``typed_result(n)`` as the client reads it, and its wire form."""
    batch = client.create_batch(**batch_options)
    batch.add(n, endpoint_id=endpoint_id, function_id=client.register_function(typed_result))
    (task_id,) = client.batch_run(batch)
    entry = client.wait([task_id], timeout=120, progress=False)[task_id]
    assert entry["status"] == "success", entry
    document = client.transport.request("GET", f"/v2/tasks/{task_id}")
    return client.get_result(task_id), document["result"]


def assert_types_intact(result: dict[Any, Any], n: int) -> None:
    import datetime
    import decimal
    import uuid

    array = result.pop("array")
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    assert array.tolist() == np.arange(n, dtype=np.float32).reshape(2, n // 2).tolist()
    assert result == {
        "pair": (n, "two"),
        "blob": bytes(range(n)),
        "big": 2**80 + n,
        "when": datetime.datetime(2026, 12, 6, 18, n, tzinfo=datetime.timezone.utc),
        "id": uuid.UUID(int=n),
        "price": decimal.Decimal("19.99"),
        "tags": {"a", "b"},
        (1, 2): "a tuple key",
    }
    assert type(result["pair"]) is tuple and type(result["blob"]) is bytes


def test_an_untrusted_endpoint_s_result_arrives_as_msgpack_types_intact(
    dev: dict[str, Any], stranger: Client
) -> None:
    assert not stranger.trust.trusts(dev["endpoint_id"])
    result, wire = run(stranger, dev["endpoint_id"], 6)
    assert wire.startswith("mp\n")
    assert_types_intact(result, 6)
    # The submission and the pushed result went over the channel in msgpack frames.
    channel = stranger.session.channel()
    assert channel is not None and channel._binary


def test_the_owner_still_gets_dill_and_can_choose_msgpack(
    dev: dict[str, Any], owner: Client
) -> None:
    result, wire = run(owner, dev["endpoint_id"], 4)
    assert wire.startswith("00\n")  # trusted: the official default, as before
    assert_types_intact(result, 4)
    result, wire = run(owner, dev["endpoint_id"], 8, result_serializers=["MsgpackData"])
    assert wire.startswith("mp\n")
    assert_types_intact(result, 8)


def pair(n):
    return (n, str(n))


def test_the_executor_asks_for_what_it_is_told(dev: dict[str, Any], stranger: Client) -> None:
    """Unset, an untrusted endpoint answers in msgpack; ``result_serializers`` (here a
    strategy class, as the official Executor takes them) overrides that."""
    from farcall import Executor
    from farcall.serialize.json_data import JSONData

    with Executor(dev["endpoint_id"], client=stranger) as executor:
        assert executor.submit(pair, 1).result(timeout=120) == (1, "1")
    with Executor(dev["endpoint_id"], client=stranger, result_serializers=[JSONData]) as executor:
        assert executor.result_serializers == ["farcall.serialize.json_data.JSONData"]
        assert executor.submit(pair, 2).result(timeout=120) == [2, "2"]  # JSON: a list


OFFICIAL_ENDPOINT_SERIALIZES = """
import json, sys
from globus_compute_sdk.serialize import ComputeSerializer
# What the official endpoint does with a task's result_serializers.
print(json.dumps(ComputeSerializer.serialize_from_list({"pair": (1, 2)}, sys.argv[1:])))
"""


@pytest.mark.compat
def test_the_official_endpoint_skips_mp_and_answers_in_json(
    compat_python: str, stranger: Client
) -> None:
    """What the Client asks an untrusted endpoint for works on an official one too: it
    cannot import ``mp``, skips it, and writes JSON, which the Client reads."""
    asked = stranger.trust.result_serializers("00000000-0000-4000-8000-00000000000e")
    assert asked == ["mp", "globus_compute_sdk.serialize.JSONData"]
    done = subprocess.run(
        [compat_python, "-c", OFFICIAL_ENDPOINT_SERIALIZES, *asked],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    payload = json.loads(done.stdout)
    assert payload.startswith("11\n")
    assert stranger.trust.read_result({"result": payload}) == {"pair": [1, 2]}
