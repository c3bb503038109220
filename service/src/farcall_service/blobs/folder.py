"""The ``folder`` blob store: one file per blob in a folder on the service's disk.

The embedded default, next to the SQLite database (``<home>/service/blobs``): only
the processes on this machine reach it. Files are owner-only (0600) in an
owner-only folder (0700), since a blob is someone's arguments or results; each is
written under a temporary name and renamed when complete, so a reader never sees a
partial blob and a crash leaves only a ``.part`` file that :meth:`put` of a later
run does not mistake for a blob.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farcall.private_files import FILE_MODE, in_farcall_home, private_dir

from farcall_service.blobs.interface import CHUNK_SIZE, BlobNotFound, BlobRef

if TYPE_CHECKING:
    from farcall_service.settings import Settings

_PART = ".part"


class FolderBlobStore:
    """Blobs as files named by their key (a random hex id)."""

    def __init__(self, folder: Path) -> None:
        self.folder = private_dir(folder, tighten=in_farcall_home(folder))

    def _path(self, key: str) -> Path:
        # Keys are ours (32 hex digits): anything else names no blob, and can never
        # reach outside the folder.
        if len(key) != 32 or not all(c in "0123456789abcdef" for c in key):
            raise BlobNotFound(f"no blob has the key {key!r}")
        return self.folder / key

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        key = uuid.uuid4().hex
        final = self.folder / key
        part = final.with_name(key + _PART)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.rename(part, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            raise
        return BlobRef(key, size)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob has the key {key!r}") from None
        return _read(handle)

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, BlobNotFound):
            return False
        return True

    def keys(self) -> Iterator[str]:
        with os.scandir(self.folder) as entries:
            names = [entry.name for entry in entries if not entry.name.endswith(_PART)]
        return iter(names)

    def close(self) -> None:
        pass


def _read(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def blob_folder(settings: Settings) -> Path:
    """``blobs`` beside the SQLite database (under ``home`` for another database)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).expanduser().parent / "blobs"
    return settings.home / "service" / "blobs"
