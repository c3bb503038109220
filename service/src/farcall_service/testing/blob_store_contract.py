"""The contract every blob store plugin must meet (``farcall_service.blobs.interface``).

Use it from a plugin's tests by subclassing and naming the store::

    from farcall_service.testing.blob_store_contract import BlobStoreContract

    class TestMyBlobStore(BlobStoreContract):
        name = "s3"

        @pytest.fixture
        def settings(self, tmp_path):  # what the store needs to reach its backend
            return Settings(home=tmp_path, blob_store=self.name)

The store is built through the installed plugins, exactly as a service builds it
(``farcall_service.app.select_blob_store``), so the suite also proves that the
plugin's entry point is declared and loads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
from farcall.plugins import get_plugin_manager

from farcall_service.app import select_blob_store
from farcall_service.blobs.interface import CHUNK_SIZE, BlobNotFound, BlobStore
from farcall_service.settings import Settings


class _Broken(Exception):
    """What a client that goes away mid-upload looks like to ``put``."""


class BlobStoreContract:
    name: ClassVar[str]

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(home=tmp_path)

    def build(self, settings: Settings) -> BlobStore:
        return select_blob_store(get_plugin_manager(), replace(settings, blob_store=self.name))

    @pytest.fixture
    def blobs(self, settings: Settings) -> Iterator[BlobStore]:
        store = self.build(settings)
        yield store
        store.close()

    def test_a_blob_put_in_chunks_reads_back_byte_for_byte(self, blobs: BlobStore) -> None:
        data = os.urandom(3 * CHUNK_SIZE + 12345)
        pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)]
        ref = blobs.put(iter(pieces))
        assert ref.size == len(data)
        assert b"".join(blobs.open(ref.key)) == data

    def test_a_blob_is_read_a_chunk_at_a_time(self, blobs: BlobStore) -> None:
        ref = blobs.put([b"x" * (2 * CHUNK_SIZE + 1)])
        sizes = [len(chunk) for chunk in blobs.open(ref.key)]
        assert len(sizes) >= 3
        assert max(sizes) <= CHUNK_SIZE
        assert sum(sizes) == 2 * CHUNK_SIZE + 1

    def test_an_empty_blob_is_a_blob_of_no_bytes(self, blobs: BlobStore) -> None:
        ref = blobs.put([])
        assert ref.size == 0
        assert b"".join(blobs.open(ref.key)) == b""

    def test_a_put_whose_chunks_fail_leaves_nothing_behind(self, blobs: BlobStore) -> None:
        before = set(blobs.keys())

        def failing() -> Iterator[bytes]:
            yield b"a" * CHUNK_SIZE
            yield b"b" * CHUNK_SIZE
            raise _Broken("the client went away")

        with pytest.raises(_Broken):
            blobs.put(failing())
        assert set(blobs.keys()) == before

    def test_an_unknown_key_is_not_found_before_anything_is_read(self,
                                                                 blobs: BlobStore) -> None:
        ref = blobs.put([b"data"])
        assert blobs.delete(ref.key)
        for key in (ref.key, "../../etc/passwd", "", "not a key"):
            with pytest.raises(BlobNotFound):
                blobs.open(key)

    def test_a_deleted_blob_is_gone_and_a_second_delete_says_so(self,
                                                               blobs: BlobStore) -> None:
        ref = blobs.put([b"data"])
        assert ref.key in set(blobs.keys())
        assert blobs.delete(ref.key) is True
        assert ref.key not in set(blobs.keys())
        assert blobs.delete(ref.key) is False
        assert blobs.delete("not a key") is False

    def test_keys_lists_every_blob_put(self, blobs: BlobStore) -> None:
        refs = [blobs.put([bytes([n]) * n]) for n in range(1, 4)]
        assert {ref.key for ref in refs} <= set(blobs.keys())
        assert len({ref.key for ref in refs}) == 3

    def test_another_instance_reads_what_one_stored(self, settings: Settings,
                                                   blobs: BlobStore) -> None:
        ref = blobs.put([b"shared ", b"bytes"])
        other = self.build(settings)
        try:
            assert b"".join(other.open(ref.key)) == b"shared bytes"
            assert other.delete(ref.key)
        finally:
            other.close()

    def test_puts_from_several_threads_at_once_make_separate_blobs(
            self, blobs: BlobStore) -> None:
        made: dict[int, str] = {}

        def put(n: int) -> None:
            made[n] = blobs.put([str(n).encode()] * 1000).key

        threads = [threading.Thread(target=put, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(set(made.values())) == 4
        for n, key in made.items():
            assert b"".join(blobs.open(key)) == str(n).encode() * 1000

    def test_a_reader_closed_early_leaves_the_blob_readable(self, blobs: BlobStore) -> None:
        ref = blobs.put([b"z" * (3 * CHUNK_SIZE)])
        reader = blobs.open(ref.key)
        next(reader)
        reader.close()  # type: ignore[attr-defined]
        assert sum(len(c) for c in blobs.open(ref.key)) == 3 * CHUNK_SIZE
