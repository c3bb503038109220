"""References to blobs are told apart from every serialized value and payload."""

from __future__ import annotations

from farcall.blob_refs import (
    BlobReference,
    max_result_size_exceeded,
    parse_reference,
    payload_blob,
    payload_reference,
    payload_reference_of,
)
from farcall.serialize import Serializer, pack_buffers, unpack_buffers


def test_a_reference_reads_back_and_no_serialized_value_reads_as_one() -> None:
    ref = BlobReference("0123456789abcdef0123456789abcdef", 123456789)
    assert parse_reference(ref.text()) == ref
    serializer = Serializer()
    for value in (None, "::\nblob 1 k", "blob 12 key", b"::", {"::": 1}, 3.5):
        assert parse_reference(serializer.serialize(value)) is None
    for text in ("::\nblob x key", "::\nblob 12", "::\nlob 12 key", "", 42, None):
        assert parse_reference(text) is None


def test_a_payload_reference_passes_as_a_payload_and_names_its_blob() -> None:
    ref = BlobReference("77", 10)
    packed = payload_reference(ref)
    buffers = unpack_buffers(packed)
    assert len(buffers) == 2 and all(b[2] == "\n" for b in buffers)
    assert payload_reference_of(packed) == ref
    code = pack_buffers(["01\ncode"])
    assert payload_blob(unpack_buffers(code + packed)) == ref
    ordinary = pack_buffers([Serializer().serialize((1,)), Serializer().serialize({})])
    assert payload_reference_of(ordinary) is None
    assert payload_reference_of(pack_buffers([ref.text(), "00\nother"])) is None


def test_the_size_failure_reads_as_the_official_endpoint_words_it() -> None:
    assert max_result_size_exceeded(11, 10) == (
        "MaxResultSizeExceeded: Task result of 11B exceeded current limit of 10B")
