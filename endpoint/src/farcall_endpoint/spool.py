"""Results on disk until the service acknowledges them.

A small SQLite file in the endpoint's directory. Results are written in batches
(one transaction per flush) before they are sent, and deleted once acknowledged,
so an endpoint killed at any moment resends on its next start what the service may
not have recorded. WAL with ``synchronous=NORMAL`` survives the process dying; a
power cut may lose the last flushes, whose tasks the service then runs again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPOOL_FILE = "spool.db"


class ResultSpool:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (task_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
        )

    def put(self, outcomes: Iterable[dict[str, Any]]) -> None:
        rows = [(o["task_id"], json.dumps(o)) for o in outcomes]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def delete(self, task_ids: Iterable[str]) -> None:
        ids = [(t,) for t in task_ids]
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM results WHERE task_id = ?", ids)
            self._db.execute("COMMIT")

    def load(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM results ORDER BY rowid").fetchall()
        return [json.loads(body) for (body,) in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def spooled_count(directory: Path) -> int:
    """Unacknowledged results of a stopped endpoint, for ``farcall endpoint status``."""
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
