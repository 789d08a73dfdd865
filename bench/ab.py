"""A/B of two volctl source trees on the same commands, runs interleaved (A, B, B, A, ...), so
that load from elsewhere on the machine hits both alike. For measuring one change to volctl:

    cp -r volctl /tmp/before/        # before the change (a copy of the package directory)
    ... edit volctl/ ...
    .venv/bin/python bench/ab.py --a /tmp/before --runs 20

Tree A runs with PYTHONPATH=<A> (the console script's sys.path puts it ahead of the editable
install); tree B is this checkout (or --b DIR). Prints median, p10-p90 and min per command,
and B/A of the medians.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory_fixture  # noqa: E402
from common import RESULTS, VOLCTL, Stats, child_env, run_measured, table  # noqa: E402


def commands(sizes: list[int]) -> list[tuple[str, list[str], int, bool]]:
    """(label, argv, expected exit, needs a writable copy)."""
    out = [("--version", ["--version"], 0, False)]
    for size in sizes:
        db, _ = inventory_fixture.cached(size, RESULTS / "inventories")
        i = (size // 2) // 10 * 10
        name = inventory_fixture.volume_name(i) if size else "vol-absent"
        rc = 0 if size else 3
        out.append((f"show NAME --json @{size:,}", ["--db", str(db), "show", name, "--json"], rc, False))
        out.append((f"list --json @{size:,}", ["--db", str(db), "list", "--json"], 0, False))
    return out


def _row(label: str, walls: dict, runs: int) -> list[str]:
    sa, sb = Stats.of(walls["A"]), Stats.of(walls["B"])
    print(f"  {label}: A {sa.median * 1000:.0f} ms, B {sb.median * 1000:.0f} ms", file=sys.stderr, flush=True)
    return [label, f"{sa.ms()} min {sa.min * 1000:.0f}", f"{sb.ms()} min {sb.min * 1000:.0f}",
            f"{sb.median / sa.median:.2f}x", str(runs)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="directory holding the volctl package of tree A (e.g. /tmp/before)")
    p.add_argument("--b", help="directory holding tree B's volctl package (default: this checkout)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--sizes", default="100,100000")
    a = p.parse_args()
    env_a = child_env(PYTHONPATH=a.a)
    env_b = child_env(PYTHONPATH=a.b) if a.b else child_env()
    rows = []
    # A write command too: reserve + unreserve of one volume on a scratch copy of the 100 inventory.
    work = Path(tempfile.mkdtemp(prefix="volctl-ab-"))
    try:
        scratch = work / "volctl.db"
        shutil.copy(inventory_fixture.cached(100, RESULTS / "inventories")[0], scratch)
        cases = commands([int(s) for s in a.sizes.split(",")])
        for label, argv, rc, _ in cases:
            runs = a.runs if "list --json @100,000" not in label else max(3, a.runs // 4)
            walls = {"A": [], "B": []}
            for n in range(runs + 1):  # the first pair warms up
                for tree in (("A", "B") if n % 2 else ("B", "A")):
                    r = run_measured([str(VOLCTL), *argv], env=env_a if tree == "A" else env_b)
                    if r.rc != rc:
                        raise SystemExit(f"{tree}: volctl {' '.join(argv)}: exit {r.rc}: {r.stderr.strip()}")
                    if n:
                        walls[tree].append(r.wall)
            rows.append(_row(label, walls, runs))
        # Writes: reserve then unreserve of one volume (both win every time), on a scratch copy.
        walls = {("reserve", "A"): [], ("reserve", "B"): [], ("unreserve", "A"): [], ("unreserve", "B"): []}
        for n in range(a.runs + 1):
            for tree in (("A", "B") if n % 2 else ("B", "A")):
                for op in ("reserve", "unreserve"):
                    r = run_measured([str(VOLCTL), "--db", str(scratch), "--json", op, "vol-000001"],
                                     env=env_a if tree == "A" else env_b)
                    if r.rc != 0:
                        raise SystemExit(f"{tree}: volctl {op}: exit {r.rc}: {r.stderr.strip()}")
                    if n:
                        walls[(op, tree)].append(r.wall)
        for op in ("reserve", "unreserve"):
            rows.append(_row(f"{op} --json", {"A": walls[(op, "A")], "B": walls[(op, "B")]}, a.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(["command", f"A {a.a}", f"B {a.b or 'this checkout'}", "B/A", "runs"], rows))


if __name__ == "__main__":
    main()
