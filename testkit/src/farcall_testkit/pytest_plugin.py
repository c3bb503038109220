"""Fixtures every farcall distribution's tests may use, loaded through ``pytest11``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The interpreter with the official globus-compute-sdk, set by ``make test``.
COMPAT_PYTHON = "FARCALL_COMPAT_PYTHON"


@pytest.fixture(scope="session")
def compat_python() -> str:
    """The interpreter of .venv-compat, which has the official globus-compute-sdk."""
    path = os.environ.get(COMPAT_PYTHON)
    if not path or not Path(path).exists():
        pytest.skip(f"{COMPAT_PYTHON} is not set: run through `make test`")
    return path
