"""``make demo-scale``: the demo on three processes, and what it says without servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "demo_scale.py"


def run(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_demo_scale_runs_every_step_on_three_processes(postgresql: Any, rabbitmq: Any) -> None:
    # (The fixtures: the servers are there, or the test is skipped or failed saying why.)
    done = run()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every step worked on three processes" in done.stdout
    assert "Hello Bob Smith" in done.stdout and "200 results, all right" in done.stdout
    made = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("made ")]
    removed = [line.split()[-1] for line in done.stdout.splitlines()
               if line.startswith(("dropped ", "deleted "))]
    assert len(made) == 2 and sorted(made) == sorted(removed), done.stdout


def test_demo_scale_says_what_to_start_when_a_server_is_missing() -> None:
    done = run(FARCALL_DEMO_POSTGRESQL_URL="postgresql+psycopg://postgres@127.0.0.1:9/x",
               FARCALL_DEMO_AMQP_URL="amqp://guest:guest@127.0.0.1:9/")
    assert done.returncode == 2, done.stderr
    assert "PostgreSQL does not answer at 127.0.0.1:9" in done.stderr
    assert "RabbitMQ does not answer at 127.0.0.1:9" in done.stderr
    assert "docker run" in done.stderr and "made " not in done.stdout
