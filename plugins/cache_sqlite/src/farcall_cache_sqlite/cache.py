"""Completed task documents in SQLite, keyed by service and task id.

Only terminal documents are ever stored (the Client caches nothing else), so an
entry never goes stale. The file is opened per call: several processes may share it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farcall.private_files import in_farcall_home, private_dir, private_sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    service TEXT NOT NULL,
    task_id TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (service, task_id)
)
"""


class SqliteResultCache:
    def __init__(self, path: Path, service: str) -> None:
        self.path = path
        self.service = service
        self._local = threading.local()
        # Results may hold anything a function returns: owner-only, like every file
        # farcall writes (a cache_path folder the user chose keeps its mode).
        private_dir(path.parent, tighten=in_farcall_home(path.parent))
        private_sqlite(path)
        with self._connect() as db:
            db.execute(SCHEMA)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SqliteResultCache:
        from farcall.sdk.profile import farcall_home

        path = Path(settings.get("cache_path") or farcall_home() / "cache" / "results.db")
        return cls(path, str(settings.get("base_url", "")))

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
        return db

    def get(self, task_id: str) -> dict[str, Any] | None:
        row = self._connect().execute(
            "SELECT document FROM results WHERE service = ? AND task_id = ?",
            (self.service, task_id),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, task_id: str, document: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO results (service, task_id, document) VALUES (?, ?, ?)",
                (self.service, task_id, json.dumps(document)),
            )

    def clear(self) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM results WHERE service = ?", (self.service,))
