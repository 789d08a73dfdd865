"""What volctl's runner (volctl/runner.py, the one user of `sh`) adds to each program it starts,
against the floor measured in the same run: `subprocess.run` of the same argv, output captured.

    .venv/bin/python bench/runner.py [--reps 30]

Two programs: `true` (the fixed cost a command pays per program: `lvs`, `lvcreate`,
cinder-rtstool...) and `seq 1 100000` (589 KB of output, the size of an `lvs` of thousands of
LVs). Both are timed in one process after a warm-up (the `sh` import is not in the figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from volctl.runner import Runner  # noqa: E402

PROGRAMS = {"true": ["true"], "seq 1 100000": ["seq", "1", "100000"]}


def median_ms(call, reps: int) -> float:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    runner = Runner()
    runner.run(["true"])  # warm-up: imports sh
    rows = {}
    for name, argv in PROGRAMS.items():
        floor = median_ms(lambda: subprocess.run(argv, capture_output=True, check=True), args.reps)
        ours = median_ms(lambda: runner.run(argv), args.reps)
        rows[name] = {"runner_ms": round(ours, 2), "floor_ms": round(floor, 2), "ratio": round(ours / floor, 2),
                      "added_ms": round(ours - floor, 2)}
        print(f"{name:>14}: runner {ours:7.2f} ms, subprocess.run {floor:7.2f} ms, "
              f"{ours / floor:5.2f}x, +{ours - floor:.2f} ms", file=sys.stderr)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
