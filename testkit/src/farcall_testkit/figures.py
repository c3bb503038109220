"""Figures tests record for the summary at the end of a run (tasks, faults, losses,
latencies), printed by the process that reports the run.

Under pytest-xdist the figures are recorded in the workers, which print nothing: each
worker hands its tables to the controller as it finishes (:func:`hand_over`,
:func:`take_over`, called by the testkit's pytest plugin), and the controller prints
them (:func:`summarize`). Run on one process, that process does it all.
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Under which key a pytest-xdist worker hands its tables to the controller.
WORKER_KEY = "farcall_testkit.figures"


@dataclass
class Table:
    """Figures by section, then by name, printed under ``title``; written as JSON
    (``meta`` first) to ``json_name`` in pytest's temporary directory when named."""

    title: str
    json_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(
        default_factory=lambda: collections.defaultdict(dict))

    def record(self, section: str, **values: Any) -> None:
        """Add figures; numbers add up across calls (and workers), anything else is
        replaced."""
        with _lock:
            bucket = self.sections[section]
            for name, value in values.items():
                if isinstance(value, (int, float)) and isinstance(bucket.get(name), (int, float)):
                    bucket[name] += value
                else:
                    bucket[name] = value


#: This process's tables, by title.
TABLES: dict[str, Table] = {}
_lock = threading.RLock()


def table(title: str, json_name: str | None = None, meta: dict[str, Any] | None = None) -> Table:
    """The table called ``title``, made on first use."""
    with _lock:
        if title not in TABLES:
            TABLES[title] = Table(title, json_name, dict(meta or {}))
        return TABLES[title]


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker, whose output nobody sees."""
    return hasattr(config, "workeroutput")


def hand_over(config: pytest.Config) -> None:
    """On a pytest-xdist worker at the end of its session: give the controller the
    tables."""
    output = getattr(config, "workeroutput", None)
    if output is not None and TABLES:
        output[WORKER_KEY] = [
            {"title": t.title, "json_name": t.json_name, "meta": t.meta,
             "sections": {name: dict(values) for name, values in t.sections.items()}}
            for t in TABLES.values()
        ]


def take_over(node: Any) -> None:
    """On the controller, as a worker finishes: add the tables it handed over."""
    for handed in getattr(node, "workeroutput", {}).get(WORKER_KEY, []):
        mine = table(handed["title"], handed["json_name"], handed["meta"])
        for section, values in handed["sections"].items():
            mine.record(section, **values)


def summarize(terminal: pytest.TerminalReporter) -> None:
    """Print every table, and write those that name a file, in the reporting process."""
    if is_worker(terminal.config):
        return
    for t in TABLES.values():
        if not t.sections:
            continue
        terminal.write_sep("=", t.title)
        for section in sorted(t.sections):
            values = ", ".join(f"{name}={_fmt(value)}"
                               for name, value in sorted(t.sections[section].items()))
            terminal.write_line(f"{section}: {values}")
        if t.json_name:
            factory: pytest.TempPathFactory = terminal.config._tmp_path_factory  # type: ignore[attr-defined]
            path = factory.getbasetemp() / t.json_name
            path.write_text(json.dumps({**t.meta, **t.sections}, indent=2, sort_keys=True))
            terminal.write_line(f"written to {path}")


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
