"""Power cuts at random moments (issue 24): N runs of tests/vm/power_cut with random seeds, and
the tally the README states: cuts, commands lost, inventories corrupt, repairs that did not
converge, restores that failed, bytes that differed.

    .venv/bin/python bench/power_cuts.py --cuts 50 --out bench/results/power-cuts   # ~3 min a cut
    .venv/bin/python bench/power_cuts.py --report bench/results/power-cuts/cuts.jsonl

One guest at a time (each cut is two boots on one disk). Every cut's line is appended to
DIR/cuts.jsonl as it ends, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POWER_CUT = ROOT / "tests" / "vm" / "power_cut"


def run(cuts: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = out / "cuts.jsonl"
    for _ in range(cuts):
        done = subprocess.run([sys.executable, str(POWER_CUT), "--out", str(out), "--random", "1"],
                              capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                with open(lines, "a") as f:
                    f.write(line + "\n")
                print(line, flush=True)
    return lines


def report(lines: Path) -> dict:
    results = [json.loads(line) for line in lines.read_text().splitlines() if line.strip()]
    kinds = Counter(r.get("kind", "?") for r in results if r["verdict"] != "ok")
    return {
        "cuts": len(results),
        "cut before the lives ended": sum(r["cut"] for r in results),
        "commands returned before a cut": sum(r["returned"] for r in results),
        "commands in flight at a cut": sum(len(r["in_flight"]) for r in results),
        "checks passed": sum(r["verdict"] == "ok" for r in results),
        "lost (returned 0, not in the inventory)": kinds["lost"],
        "corrupt inventories": kinds["corrupt"],
        "repairs that did not converge": kinds["converge"],
        "restores that failed": kinds["restore"],
        "other bytes read back": kinds["bytes"],
        "other failures": {k: v for k, v in kinds.items() if k not in ("lost", "corrupt", "converge", "restore",
                                                                    "bytes")},
        "doctor --repair runs needed": dict(Counter(len(r.get("repairs", [])) for r in results
                                                    if r["verdict"] == "ok")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cuts", type=int, default=50)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "power-cuts")
    ap.add_argument("--report", type=Path, help="only tally an earlier run's cuts.jsonl")
    args = ap.parse_args()
    lines = args.report or run(args.cuts, args.out)
    print(json.dumps(report(lines), indent=1))


if __name__ == "__main__":
    main()
