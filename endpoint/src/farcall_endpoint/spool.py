"""Results on disk until the service acknowledges them.

A small SQLite file in the endpoint's directory. Results are written in batches
(one transaction per report) while they are on their way to the service, and
forgotten once acknowledged, so an endpoint killed at any moment resends on its next
start what the service may not have recorded. A result lost with the endpoint
before it was written is a task the service runs again under the next session.

Forgetting costs no transaction of its own: acknowledged results are deleted in the
next write, or by :meth:`ResultSpool.tidy`. One acknowledged but not yet deleted is
at worst sent again, and the service acknowledges a repeat without recording it.
WAL with ``synchronous=NORMAL`` survives the process dying; a power cut may lose the
last writes, whose tasks the service then runs again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from farcall.private_files import private_dir, private_sqlite

SPOOL_FILE = "spool.db"


class ResultSpool:
    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        private_sqlite(path)  # results may hold anything a function returns
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (task_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
        )
        self._acknowledged: list[tuple[str]] = []

    def put(self, outcomes: Iterable[dict[str, Any]]) -> None:
        """Write ``outcomes``, and delete what was acknowledged before, in one transaction."""
        rows = [(o["task_id"], json.dumps(o)) for o in outcomes]
        with self._lock:
            if not rows and not self._acknowledged:
                return
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM results WHERE task_id = ?", self._acknowledged)
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
            self._acknowledged = []

    def forget(self, task_ids: Iterable[str]) -> None:
        """Mark results acknowledged; they are deleted with the next write."""
        with self._lock:
            self._acknowledged.extend((t,) for t in task_ids)

    @property
    def untidy(self) -> bool:
        """True while acknowledged results wait to be deleted."""
        return bool(self._acknowledged)

    def tidy(self) -> None:
        """Delete the acknowledged results now."""
        self.put(())

    def load(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM results ORDER BY rowid").fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # what stays is sent again next time
            self.tidy()
        with self._lock:
            self._db.close()


def spooled_count(directory: Path) -> int:
    """Results a stopped endpoint will send at its next start, for ``farcall endpoint
    status``: after a kill, they may include one report the service acknowledged."""
    path = directory / SPOOL_FILE
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM results").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0
