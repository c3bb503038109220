"""Large values on the scaled stack: three service processes on PostgreSQL, whose
default blob store is the database's large objects, so a result stored through one
process is read through another."""

from __future__ import annotations

import sqlalchemy as sa
from farcall import Client
from farcall.blob_refs import parse_reference
from farcall_testkit.scaled import ScaledStack

MB = 1024 * 1024


def echo_twice(text):
    return text + text


echo_twice.__module__ = "__main__"  # sent by value: the workers need nothing of this module


def test_a_large_result_stored_through_one_process_is_fetched_through_another(
        scaled: ScaledStack) -> None:
    endpoint = scaled.endpoint("large", via=1)
    endpoint.start()
    submitter = Client(scaled.url_of(0), token=scaled.token)
    fn = submitter.register_function(echo_twice)
    argument = "p" * 3 * MB  # over the threshold: uploaded through process 0 as well
    task_id = submitter.run(argument, endpoint_id=endpoint.endpoint_id, function_id=fn)

    reader = Client(scaled.url_of(2), token=scaled.token)
    entry = reader.wait([task_id], timeout=120, progress=False)[task_id]
    assert entry["status"] == "success", entry
    assert entry["result"] == argument * 2

    api = scaled.api(1)
    document = api.call("POST", "/v2/batch_status", json={"task_ids": [task_id]})
    ref = parse_reference(document["results"][task_id]["result"])
    assert ref is not None and ref.size > 6 * MB
    engine = sa.create_engine(scaled.db_url)
    try:
        with engine.connect() as conn:
            size = conn.execute(sa.text(
                "SELECT sum(length(data)) FROM pg_largeobject WHERE loid = :oid"),
                {"oid": int(ref.key)}).scalar()
            blobs = conn.execute(sa.text("SELECT count(*) FROM blobs")).scalar()
    finally:
        engine.dispose()
    assert size == ref.size  # in the database every process reaches
    assert blobs is not None and blobs >= 2  # the argument's and the result's
    assert not (scaled.home / "service" / "blobs").exists()  # nothing on one process's disk
    assert api.result(document["results"][task_id]) == argument * 2  # through process 1
