"""Speed of two commits of farcall, measured taking turns in one run.

This machine's speed drifts by half within a minute, so two figures compare only when
measured close together. Each side (an old commit, and a newer one or the working
tree) gets its own venv (``commit_venvs.py``); then, round by round, each side in turn
(the order alternating) starts its own stack in a fresh home directory, measures a
batch's throughput and sequential round trips with its own SDK (``compare_side.py``),
and stops it. Prints each round's figures, then each side's medians and the ratios
new/old: the speed is kept when the median throughput and the median p50 of the new
side are within 10% of the old's.

Needs only the standard library (and git, and Linux's ``/proc``), so it runs from any
interpreter; the venvs are built with the one that runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from commit_venvs import BuildError, Side, ensure_venv, git, resolve

HERE = Path(__file__).resolve().parent
SIDE_SCRIPT = HERE / "compare_side.py"
DEFAULT_BASE = "3919f90"  # the commit before the seams of issue 18
TOLERANCE = 0.10
# Targets of docs/performance.md that this run measures too (the others: benchmarks/e2e.py).
TARGETS = (("throughput", ">=", 1500.0), ("p50_ms", "<=", 3.0), ("p99_ms", "<=", 10.0))


class SideFailed(Exception):
    """A side's turn did not produce figures."""


def say(message: str) -> None:
    print(message, flush=True)


# -- one turn ---------------------------------------------------------------------------


def stray_processes(home: Path) -> list[int]:
    """Processes (of this user) whose environment says ``FARCALL_HOME=home``: the stack
    a turn started there sets it for the service, the endpoint and its workers."""
    marker = f"FARCALL_HOME={home}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if environ.startswith(marker) or b"\0" + marker in environ:
            found.append(int(entry.name))
    return found


def kill_strays(home: Path) -> int:
    """SIGTERM whatever of a turn's stack is still running, SIGKILL it after 10 s."""
    strays = stray_processes(home)
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while strays and time.monotonic() < deadline:
            time.sleep(0.1)
            strays = stray_processes(home)
        if not strays:
            break
    return len(stray_processes(home))


def _die_with_parent() -> None:
    """In a turn's child: be sent SIGTERM (and so stop its stack) when this process
    dies, even of a SIGKILL that runs none of its ``finally`` blocks."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Turn:
    """One side's measurement as a child process in its own session; ``close`` stops it
    and anything it left behind, however it ended."""

    def __init__(self, side: Side, sizes: dict[str, int]) -> None:
        self.side = side
        self.home = Path(tempfile.mkdtemp(prefix=f"farcall-compare-{side.label}-"))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("FARCALL_") and k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join([str(side.python.parent), env.get("PATH", "")])
        env["VIRTUAL_ENV"] = str(side.venv)
        command = [str(side.python), str(SIDE_SCRIPT), "--home", str(self.home),
                   *(f"--{name}={value}" for name, value in sizes.items())]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env, cwd=self.home,
                                        start_new_session=True, preexec_fn=_die_with_parent)

    def result(self, timeout: float) -> dict[str, float]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SideFailed(f"{self.side.description} took over {timeout:.0f} s") from None
        lines = out.strip().splitlines()
        if self.process.returncode != 0 or not lines:
            tail = "\n".join(err.strip().splitlines()[-15:])
            raise SideFailed(f"{self.side.description} failed (exit {self.process.returncode}):"
                             f"\n{tail}")
        figures: dict[str, float] = json.loads(lines[-1])
        return figures

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the child stops its stack
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        left = kill_strays(self.home)
        if left:
            say(f"  warning: {left} processes of {self.home} would not stop")
        shutil.rmtree(self.home, ignore_errors=True)


def run_turn(side: Side, sizes: dict[str, int], timeout: float) -> dict[str, float]:
    turn = Turn(side, sizes)
    try:
        return turn.result(timeout)
    finally:
        turn.close()


# -- the run ----------------------------------------------------------------------------


def run_rounds(sides: tuple[Side, Side], rounds: int, sizes: dict[str, int],
               timeout: float) -> dict[str, list[dict[str, float]]]:
    figures: dict[str, list[dict[str, float]]] = {side.label: [] for side in sides}
    for number in range(rounds):
        order = sides if number % 2 == 0 else sides[::-1]
        for side in order:
            figures[side.label].append(run_turn(side, sizes, timeout))
        old, new = (figures[side.label][-1] for side in sides)
        say(f"round {number + 1}/{rounds} ({order[0].label} first): "
            f"{describe(old)}  |  {describe(new)}  |  new/old throughput "
            f"{new['throughput'] / old['throughput']:.2f}, p50 {new['p50_ms'] / old['p50_ms']:.2f}")
    return figures


def describe(f: dict[str, float]) -> str:
    return f"{f['throughput']:6.0f} tasks/s, p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms"


def summarize(sides: tuple[Side, Side], figures: dict[str, list[dict[str, float]]]
              ) -> tuple[dict[str, Any], bool]:
    medians = {label: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
               for label, runs in figures.items()}
    old, new = (medians[side.label] for side in sides)
    ratios = {"throughput": new["throughput"] / old["throughput"],
              "p50_ms": new["p50_ms"] / old["p50_ms"]}
    kept = {"throughput": ratios["throughput"] >= 1 - TOLERANCE,
            "p50_ms": ratios["p50_ms"] <= 1 + TOLERANCE}

    say(f"\nmedians over the rounds (old = {sides[0].description}, new = {sides[1].description})")
    for side in sides:
        say(f"  {side.label}: {describe(medians[side.label])}")
    verdict = {True: "holds (within 10%)", False: "misses"}
    say(f"new/old median throughput  {ratios['throughput']:.3f}  {verdict[kept['throughput']]}")
    say(f"new/old median p50         {ratios['p50_ms']:.3f}  {verdict[kept['p50_ms']]}")
    per_round = [n["throughput"] / o["throughput"]
                 for o, n in zip(*(figures[s.label] for s in sides), strict=True)]
    say(f"  (throughput ratio by round {min(per_round):.2f}-{max(per_round):.2f})")
    say("targets of docs/performance.md measured here (p99 of a few hundred round trips "
        "is noisy; make bench measures them all):")
    for key, sense, bound in TARGETS:
        for side in sides:
            value = medians[side.label][key]
            ok = value >= bound if sense == ">=" else value <= bound
            shown = f"{value:.0f}" if key == "throughput" else f"{value:.2f}"
            say(f"  {side.label} {key} {shown} {'holds' if ok else 'MISSED'} ({sense} {bound:g})")
    return {"medians": medians, "ratios": ratios, "kept": kept}, all(kept.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help=f"the old commit (default {DEFAULT_BASE})")
    parser.add_argument("--new", default=None, help="the new commit (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds (default 5; 2 with --quick)")
    parser.add_argument("--tasks", type=int, default=None, help="tasks in the batch (default 5000)")
    parser.add_argument("--samples", type=int, default=None, help="round trips (default 300)")
    parser.add_argument("--quick", action="store_true", help="a tiny run, to try the harness")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the speed is not kept")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per turn")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "compare.json")
    opts = parser.parse_args()
    rounds = opts.rounds or (2 if opts.quick else 5)
    sizes = {"tasks": opts.tasks or (1000 if opts.quick else 5000),
             "samples": opts.samples or (60 if opts.quick else 300),
             "warmup": 10 if opts.quick else 20}
    # A SIGTERM or SIGHUP ends the run through the same ``finally`` blocks as Ctrl-C.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)

    repo = Path(git(HERE, "rev-parse", "--show-toplevel").strip())
    try:
        sides = (resolve(repo, opts.base, "old"), resolve(repo, opts.new, "new"))
        for number, side in enumerate(sides, 1):
            ensure_venv(repo, side, number, len(sides))
        say(f"\n{rounds} round{'s' * (rounds != 1)}, each side in turn: {sizes['tasks']} tasks "
            f"by batch, {sizes['samples']} round trips after {sizes['warmup']} not counted")
        say(f"  old = {sides[0].description}, new = {sides[1].description}")
        figures = run_rounds(sides, rounds, sizes, opts.timeout)
    except (BuildError, SideFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary, kept = summarize(sides, figures)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps({
        "benchmark": "compare_commits", "sizes": sizes, "rounds": rounds,
        "sides": {s.label: {"description": s.description, "sha": s.sha} for s in sides},
        "machine": {"python": platform.python_version(), "cores": os.cpu_count()},
        "figures": figures, **summary,
    }, indent=2))
    say(f"\nwritten to {opts.json}")
    return 1 if opts.strict and not kept else 0


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
