"""Serialization cost of one task cycle: farcall against the official serializer.

A cycle is what the wire format asks of a task's life: serialize a function for
registration, pack a payload of args and kwargs, unpack and deserialize all three
on the endpoint, serialize the result there and deserialize it in the SDK. Both
sides use their default strategies (DillCode ``01`` and DillDataBase64 ``00``), so
they write the same format.

This file runs itself a second time under the official SDK's interpreter
(``FARCALL_COMPAT_PYTHON``, set up by ``make bench``) so that the function is in
``__main__`` on both sides and the figures come from the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def work(x, y=2, *, name="task"):
    import math

    return {"name": name, "value": math.sqrt(x) + y}


CASES = {
    "small": ((16, "héllo ✓", [1.5, {"k": (1, 2)}]), {"y": 3, "name": "zz"}),
    "1 MB args": ((16, "x" * 1_000_000), {"y": 3}),
}
#: The case the target (at most half the official serializer's time) is for: a
#: standard task. The 1 MB case is shown for what it says: both sides spend most of
#: it in MIME base64, which the wire format prescribes.
TARGET_CASE = "small"


def make_serializer(side: str):
    if side == "official":
        from globus_compute_sdk.serialize import ComputeSerializer

        return ComputeSerializer()
    from farcall.serialize import Serializer

    return Serializer()


def cycle(s, args, kwargs):
    function_code = s.pack_buffers([s.serialize(work)])
    payload = s.pack_buffers([s.serialize(args), s.serialize(kwargs)])
    fn, fargs, fkwargs = s.unpack_and_deserialize(function_code + payload)
    return s.deserialize(s.serialize(fn(fargs[0], **fkwargs)))


#: Runs of each side, taking turns.
TURNS = 3


def measure(side: str, cycles: int, repeats: int) -> dict[str, float]:
    """Median microseconds per cycle, per case."""
    s = make_serializer(side)
    out = {}
    for case, (args, kwargs) in CASES.items():
        n = cycles if case == "small" else max(cycles // 100, 5)
        assert cycle(s, args, kwargs)["value"] == 7.0
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(n):
                cycle(s, args, kwargs)
            samples.append((time.perf_counter() - start) / n * 1e6)
        out[case] = statistics.median(samples)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles, a few seconds")
    parser.add_argument("--side", choices=["farcall", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "serialize.json")
    opts = parser.parse_args()
    cycles, repeats = (500, 3) if opts.quick else (3000, 7)

    if opts.side:  # the child run: print figures as JSON
        json.dump(measure(opts.side, cycles, repeats), sys.stdout)
        return 0

    compat = os.environ.get("FARCALL_COMPAT_PYTHON")
    if not compat:
        print("FARCALL_COMPAT_PYTHON is not set: run `make bench`", file=sys.stderr)
        return 2
    # The two sides take turns, three runs each: this machine's speed drifts within
    # the seconds one side's run takes, and a single pair once read the same code 0.53.
    runs: dict[str, list[dict[str, float]]] = {"official": [], "farcall": []}
    for turn in range(1, TURNS + 1):
        for side, python in (("official", compat), ("farcall", sys.executable)):
            print(f"measuring {side} ({turn}/{TURNS}) ...", file=sys.stderr, flush=True)
            argv = [python, __file__, "--side", side] + (["--quick"] if opts.quick else [])
            done = subprocess.run(argv, check=True, capture_output=True, text=True)
            runs[side].append(json.loads(done.stdout))
    figures = {side: {case: statistics.median(run[case] for run in measured) for case in CASES}
               for side, measured in runs.items()}

    print(f"\nSerialization, one task cycle ({platform.python_version()}, {os.cpu_count()} cores)")
    print(f"{'case':<12} {'official µs':>12} {'farcall µs':>12} {'ratio':>7}  target <= 0.50")
    rows = []
    for case in CASES:
        official, ours = figures["official"][case], figures["farcall"][case]
        ratio = ours / official
        rows.append({"case": case, "official_us": official, "farcall_us": ours, "ratio": ratio})
        verdict = ("holds" if ratio <= 0.5 else "MISSED") if case == TARGET_CASE else "(no target)"
        print(f"{case:<12} {official:>12.1f} {ours:>12.1f} {ratio:>7.2f}  {verdict}")
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps({
        "benchmark": "serialize",
        "machine": {"python": platform.python_version(), "cores": os.cpu_count(),
                    "platform": platform.platform()},
        "cycles": cycles, "repeats": repeats, "turns": TURNS, "rows": rows,
    }, indent=2))
    print(f"\nwritten to {opts.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
