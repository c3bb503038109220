"""The SQL store's :class:`~farcall_service.storage.interface.RetentionStore`: ended
tasks deleted in small batches.

The purge walks the tasks in ``seq`` order (the primary key: SQLite's row id) rather
than through an index on ``completion_t``: such an index would cost every recorded
result one more write, and tasks end roughly in the order they were submitted
anyway. The walk stops at the first task submitted after the cut-off (nothing
submitted later can have ended before it), so a round reads only the old tasks
still kept, plus the batch it deletes.

Each batch is two steps: a read, outside any write lock, finds the ended tasks among
the next ``limit``; a short write transaction deletes those of them that are still
there, locking their rows with ``SKIP LOCKED`` on PostgreSQL, so two processes
purging at once each delete (and take off their owners' usage) only the rows they
hold: the counters stay exact and neither waits for the other.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage import sql_queue as q
from farcall_service.storage.records import QUEUED, RUNNING, PurgeBatch
from farcall_service.storage.sql_engine import SqlConnections

_UNFINISHED = (QUEUED, RUNNING)
#: Row ids in one ``IN (...)``: within every database's limit on parameters.
_CHUNK = 500
_c = t.tasks.c
_SIZE = (sa.func.length(_c.payload) + sa.func.coalesce(sa.func.length(_c.result), 0)
         + sa.func.coalesce(sa.func.length(_c.exception), 0)
         + sa.func.coalesce(sa.func.length(_c.exception_data), 0))


class RetentionSql(SqlConnections):
    """Deletes ended tasks a batch at a time, each batch one short transaction."""

    def purge_ended(self, before: float, limit: int, after: int = 0) -> PurgeBatch:
        limit = max(1, limit)
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_c.seq, _c.status, _c.created_at, _c.completion_t)
                .where(_c.seq > after).order_by(_c.seq).limit(limit)).all()
        if not rows:
            return PurgeBatch(0, after, True)
        # Every task that ends gets its completion_t in the same statement: a task
        # without one (in a state another part may add between) has not ended.
        ended = [row.seq for row in rows if row.status not in _UNFINISHED
                 and row.completion_t is not None and row.completion_t < before]
        done = len(rows) < limit or any(row.created_at >= before for row in rows)
        deleted = self._delete(ended, before) if ended else 0
        return PurgeBatch(deleted, int(rows[-1].seq), done)

    def _delete(self, seqs: list[int], before: float) -> int:
        """Delete the tasks among ``seqs`` that have still ended before ``before`` and
        that no concurrent purge holds; one transaction, usage included."""
        freed: dict[str, int] = defaultdict(int)
        deleted = 0
        with self._write() as conn:
            for start in range(0, len(seqs), _CHUNK):
                chunk = seqs[start : start + _CHUNK]
                held = conn.execute(
                    sa.select(_c.seq, _c.owner_id, _SIZE.label("size"))
                    .where(_c.seq.in_(chunk), _c.status.not_in(_UNFINISHED),
                           _c.completion_t < before)
                    .with_for_update(skip_locked=True)).all()
                if not held:
                    continue
                conn.execute(sa.delete(t.tasks).where(_c.seq.in_([row.seq for row in held])))
                deleted += len(held)
                for row in held:
                    freed[row.owner_id] += int(row.size or 0)
            q.change_usage(self._hot, conn, {user: (0, -chars) for user, chars in freed.items()})
        return deleted
