"""`make demo` runs examples/demo.py: it must keep working, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("farcall_dev")

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


def test_demo_runs_every_step(tmp_path):
    done = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "Hello Bob Smith" in out
    assert "division by zero" in out
    assert "search as the guest: ['double_public', 'hello_lab']" in out
    assert out.rstrip().endswith("Demo finished: every step worked.")
