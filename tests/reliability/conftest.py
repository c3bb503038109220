"""Reliability tests: fixtures (the figures are printed by farcall_testkit.figures)."""

from __future__ import annotations

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
