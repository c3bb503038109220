"""Shared fixtures for the cross-distribution tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_json(python: str, args: list[str], stdin: object = None, timeout: float = 120) -> object:
    """Run a script with ``python`` and decode the JSON it prints."""
    proc = subprocess.run(
        [python, *args],
        input=None if stdin is None else json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{python} {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def farcall_python() -> str:
    return sys.executable
