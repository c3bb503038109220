"""The ``postgresql`` blob store: PostgreSQL large objects in the service's database.

Every service process of a scaled deployment reaches the database, so every one can
read a blob another one stored. A large object is written and read a chunk at a time
(``lowrite``/``loread`` inside one transaction), so neither side holds a whole blob;
a put that fails rolls back, and its half-written object with it. The key is the
object's OID. Each operation opens a connection of its own (psycopg 3) rather than
borrowing one of the store's pool, which a long download would hold for minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from farcall_service.blobs.interface import CHUNK_SIZE, BlobNotFound, BlobRef

#: ``INV_WRITE`` and ``INV_READ`` of libpq's large-object API.
_WRITE, _READ = 0x20000, 0x40000


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) as psycopg takes it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBlobStore:
    """Blobs as large objects, keyed by OID."""

    def __init__(self, url: str) -> None:
        self._conninfo = libpq_url(url)

    def _connect(self, autocommit: bool = False) -> Any:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=autocommit)

    @staticmethod
    def _oid(key: str) -> int:
        if not key.isascii() or not key.isdigit() or not 0 < int(key) < 2**32:
            raise BlobNotFound(f"no blob has the key {key!r}")
        return int(key)

    def put(self, chunks: Iterable[bytes]) -> BlobRef:
        with self._connect() as conn, conn.transaction():
            oid = conn.execute("SELECT lo_create(0)").fetchone()[0]
            fd = conn.execute("SELECT lo_open(%s, %s)", (oid, _WRITE)).fetchone()[0]
            size = 0
            pending = bytearray()
            for chunk in chunks:
                pending += chunk
                if len(pending) >= CHUNK_SIZE:
                    conn.execute("SELECT lowrite(%s, %s)", (fd, bytes(pending)))
                    size += len(pending)
                    pending.clear()
            if pending:
                conn.execute("SELECT lowrite(%s, %s)", (fd, bytes(pending)))
                size += len(pending)
            conn.execute("SELECT lo_close(%s)", (fd,))
        return BlobRef(str(oid), size)

    def open(self, key: str) -> Iterator[bytes]:
        oid = self._oid(key)
        conn = self._connect(autocommit=True)
        try:
            conn.execute("BEGIN READ ONLY")
            if conn.execute("SELECT 1 FROM pg_largeobject_metadata WHERE oid = %s",
                            (oid,)).fetchone() is None:
                raise BlobNotFound(f"no blob has the key {key!r}")
            fd = conn.execute("SELECT lo_open(%s, %s)", (oid, _READ)).fetchone()[0]
        except BaseException:
            conn.close()
            raise
        return _read(conn, fd)

    def delete(self, key: str) -> bool:
        try:
            oid = self._oid(key)
        except BlobNotFound:
            return False
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                "SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = %s",
                (oid,)).fetchone()
        return row is not None

    def keys(self) -> Iterator[str]:
        with self._connect() as conn:
            rows = conn.execute("SELECT oid FROM pg_largeobject_metadata").fetchall()
        return iter([str(row[0]) for row in rows])

    def close(self) -> None:
        pass


def _read(conn: Any, fd: int) -> Iterator[bytes]:
    try:
        while True:
            chunk = conn.execute("SELECT loread(%s, %s)", (fd, CHUNK_SIZE)).fetchone()[0]
            if not chunk:
                return
            yield bytes(chunk)
    finally:
        conn.close()
