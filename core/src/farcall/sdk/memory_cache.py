"""The ``memory`` result cache: completed tasks are kept for the session."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class MemoryResultCache:
    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, task_id: str) -> dict[str, Any] | None:
        return self._documents.get(task_id)

    def put(self, task_id: str, document: dict[str, Any]) -> None:
        with self._lock:
            self._documents[task_id] = document

    def clear(self) -> None:
        with self._lock:
            self._documents.clear()
