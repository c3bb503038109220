"""Reliability tests: fixtures, and the figures printed at the end of the run."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_endpoint")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reliability_kit as kit  # noqa: E402


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[kit.Stack]:
    """A live service with its first user; every process is killed at teardown."""
    with kit.live_stack(tmp_path) as live:
        yield live


@pytest.fixture(scope="session", autouse=True)
def figures_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the run's figures are written as JSON when it ends."""
    path = tmp_path_factory.getbasetemp() / "reliability-figures.json"
    yield path
    if kit.FIGURES:
        kit.FIGURES_FILE = path
        path.write_text(json.dumps({"soak": kit.SOAK, **kit.FIGURES}, indent=2, sort_keys=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not kit.FIGURES:
        return
    title = "reliability figures (soak)" if kit.SOAK else "reliability figures"
    terminalreporter.write_sep("=", title)
    for section in sorted(kit.FIGURES):
        values = ", ".join(f"{name}={_fmt(value)}"
                           for name, value in sorted(kit.FIGURES[section].items()))
        terminalreporter.write_line(f"{section}: {values}")
    if kit.FIGURES_FILE is not None:
        terminalreporter.write_line(f"written to {kit.FIGURES_FILE}")


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
