"""Which Python the real-kernel tier should run on: the same work on two venvs' interpreters inside
the QEMU guest, where every process runs at a few per cent of the host's speed (BENCHMARKS.md
section 10: the gain it shows did not carry over to the whole tier, so scripts/setup keeps python3
from PATH).

Runs inside the guest (stdlib only); each venv has volctl installed (scripts/setup's .venv, or
`PYTHON=... scripts/setup` into another checkout):

    tests/vm/vmrun --rw "$PWD/bench/results" -- /usr/bin/python3 "$PWD/bench/vm_interpreters.py" \\
        --python pyenv=/path/a/.venv/bin/python --python debian=/path/b/.venv/bin/python \\
        --runs 5 --out "$PWD/bench/results/vm-interpreters.json"

Each round runs, in an order that rotates between the interpreters: `-I -S -c pass` (the floor: the
interpreter's own start), `volctl --version` through the venv's console script, a CPU-bound loop
(200,000 dict inserts, a json.dumps and a sort), and `pytest -q tests/test_model.py`. Medians; each
figure is also printed as a ratio to the first --python's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from vm_startup import REPO, timed  # timed: one process, wall time, its stderr when it fails

CPU = "d = {str(i): i * 2 for i in range(200000)}; import json; json.dumps(d); sorted(d.values())"


def workloads(python: Path) -> dict[str, list[str]]:
    return {
        "floor (-I -S -c pass)": [str(python), "-I", "-S", "-c", "pass"],
        "volctl --version": [str(python.parent / "volctl"), "--version"],
        "cpu loop": [str(python), "-c", CPU],
        "pytest tests/test_model.py": [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                       str(REPO / "tests" / "test_model.py")],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", required=True, metavar="LABEL=PATH")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    pythons = {label: Path(path) for label, path in (item.split("=", 1) for item in args.python)}
    for python in pythons.values():  # a warm-up of each: bytecode compiled, the page cache filled over 9p
        for argv in workloads(python).values():
            timed(argv, dict(os.environ))
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in pythons}
    for round_ in range(args.runs):
        order = list(pythons.items())
        order = order[round_ % len(order):] + order[:round_ % len(order)]
        for label, python in order:
            for name, argv in workloads(python).items():
                samples[label].setdefault(name, []).append(timed(argv, dict(os.environ)))
    medians = {label: {name: statistics.median(times) for name, times in by_name.items()}
               for label, by_name in samples.items()}
    base = next(iter(medians))
    for name in medians[base]:
        row = "  ".join(f"{label} {medians[label][name]:7.2f} s ({medians[label][name] / medians[base][name]:.2f}x)"
                        for label in medians)
        print(f"{name:30} {row}")
    if args.out:
        args.out.write_text(json.dumps({"runs": args.runs, "python": {k: str(v) for k, v in pythons.items()},
                                        "samples": samples, "medians": medians}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
