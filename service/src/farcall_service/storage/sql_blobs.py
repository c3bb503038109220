"""The SQL store's :class:`~farcall_service.storage.interface.BlobIndexStore`: the
service's record of each blob, off the hot path (only large values come here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage.records import BlobRecord
from farcall_service.storage.sql_engine import SqlConnections


class BlobIndexSql(SqlConnections):
    def add_blob(self, blob: BlobRecord) -> None:
        with self._write() as conn:
            conn.execute(sa.insert(t.blobs).values(
                key=blob.key, owner_id=blob.owner_id, task_id=blob.task_id, size=blob.size,
                created_at=blob.created_at))

    def get_blob(self, key: str) -> BlobRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.blobs).where(t.blobs.c.key == key)).first()
        return None if row is None else BlobRecord(row.key, row.owner_id, row.task_id,
                                                   int(row.size), row.created_at)

    def attach_blobs(self, owner_id: str, pairs: Sequence[tuple[str, str]]) -> int:
        c = t.blobs.c
        attached = 0
        with self._write() as conn:
            for key, task_id in pairs:
                attached += conn.execute(
                    sa.update(t.blobs)
                    .where(c.key == key, c.owner_id == owner_id, c.task_id.is_(None))
                    .values(task_id=task_id)).rowcount
        return attached

    def unreferenced_blobs(self, unattached_before: float, limit: int) -> list[str]:
        c = t.blobs.c
        task_gone = ~sa.exists().where(t.tasks.c.id == c.task_id)
        with self._read() as conn:
            loose = conn.execute(sa.select(c.key).where(
                c.task_id.is_(None), c.created_at < unattached_before).limit(limit)).scalars()
            keys = list(loose)
            if len(keys) < limit:
                keys += conn.execute(sa.select(c.key).where(
                    c.task_id.is_not(None), task_gone).limit(limit - len(keys))).scalars()
        return keys

    def forget_blobs(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            with self._write() as conn:
                conn.execute(sa.delete(t.blobs).where(t.blobs.c.key.in_(keys)))
