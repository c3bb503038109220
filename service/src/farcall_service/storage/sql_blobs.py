"""The SQL store's :class:`~farcall_service.storage.interface.BlobIndexStore`: the
service's record of each blob, off the hot path (only large values come here). A
blob's bytes count in its owner's stored bytes (the ``usage`` row) from its record's
making to its forgetting, in the same transactions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage import sql_queue as q
from farcall_service.storage.records import BlobRecord
from farcall_service.storage.sql_engine import SqlConnections


class BlobIndexSql(SqlConnections):
    def add_blob(self, blob: BlobRecord) -> None:
        with self._write() as conn:
            conn.execute(sa.insert(t.blobs).values(
                key=blob.key, owner_id=blob.owner_id, task_id=blob.task_id, size=blob.size,
                created_at=blob.created_at))
            self._hot.rows(conn, q.USAGE_ADD[self.engine.dialect.name],
                           {"b_user": blob.owner_id, "b_tasks": 0, "b_bytes": blob.size})

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
            c = t.blobs.c
            with self._write() as conn:
                owners = conn.execute(sa.select(c.owner_id, sa.func.sum(c.size))
                                      .where(c.key.in_(keys)).group_by(c.owner_id)).all()
                conn.execute(sa.delete(t.blobs).where(c.key.in_(keys)))
                q.change_usage(self._hot, conn,
                               {owner: (0, -int(size)) for owner, size in owners})
