"""Part 1: start-up and read commands against inventories of 0 .. 100,000 volumes.

Every figure is a whole process (fork to reaped) of `.venv/bin/volctl`, next to its floor: the
same interpreter (`.venv/bin/python -c`, the venv's link to the real interpreter, not pyenv's shell
shim `python3`) opening the same SQLite file and running the one query the command needs. Runs of a
command and its floor are interleaved round by round, so load from elsewhere on the machine hits
both alike (it protects the ratio, not the absolute times). Peak RSS is each child's own ru_maxrss.

`--tree DIR` times the volctl code of another checkout (e.g. `git archive OLD volctl | tar -x -C
DIR`) through the same console script: DIR goes first on PYTHONPATH, ahead of the editable
install's finder, so a before and an after can be measured on the same machine state.

    .venv/bin/python bench/startup.py [--sizes 100,100000] [--runs 20] [--only show-name-json] [--tree DIR]
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, VENV_PYTHON, VOLCTL, Stats, child_env, run_measured  # noqa: E402
import inventory_fixture  # noqa: E402

FLOOR_SHOW_ID = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('SELECT * FROM volumes WHERE id = ?', (sys.argv[2],)).fetchone()"
FLOOR_SHOW_NAME = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('SELECT * FROM volumes WHERE name = ?', (sys.argv[2],)).fetchone()"
FLOOR_LIST = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1])\nfor row in c.execute('SELECT * FROM volumes'): pass"
FLOOR_START = "pass"
SLOW = 5.0  # seconds: a command this slow gets no separate warm-up run


@dataclass
class Case:
    key: str  # e.g. "show-name-json"
    label: str  # what the table shows
    argv: list[str]
    floor_label: str
    floor: list[str]
    runs: int
    expect_rc: int = 0
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    floor_walls: list[float] = field(default_factory=list)
    floor_rss: list[int] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)  # CPU seconds: less moved by other load than wall time
    floor_cpus: list[float] = field(default_factory=list)
    skipped: str = ""

    def result(self, size: int | None) -> dict:
        out = {"key": self.key, "command": self.label, "size": size, "floor_command": self.floor_label,
               "runs": len(self.walls), "skipped": self.skipped}
        if self.walls:
            s, f = Stats.of(self.walls), Stats.of(self.floor_walls)
            out.update(wall=s.__dict__, floor=f.__dict__, ratio=s.median / f.median,
                       maxrss_kib=max(self.rss), floor_maxrss_kib=max(self.floor_rss))
            if self.cpus and self.floor_cpus:
                c, fc = Stats.of(self.cpus), Stats.of(self.floor_cpus)
                out.update(cpu=c.__dict__, floor_cpu=fc.__dict__, cpu_ratio=c.median / fc.median)
        return out


def _py(code: str, *args: str) -> list[str]:
    return [str(VENV_PYTHON), "-c", code, *args]


def cases_for(db: Path, size: int, runs: int, only: set[str] | None = None) -> list[Case]:
    """The read commands for one inventory (those named in `only`, when given)."""
    i = (size // 2) // 10 * 10  # a volume in the middle that is in-use with an attachment
    name = inventory_fixture.volume_name(i) if size else "vol-absent"
    vid = inventory_fixture.volume_id(i) if size else "00000000-0000-4000-8000-000000000000"
    missing = 0 if size else 3
    volctl = [str(VOLCTL), "--db", str(db)]
    list_runs = runs if size < 100_000 else max(3, runs // 2)
    cases = [
        Case("show-id-json", "show ID --json", [*volctl, "show", vid, "--json"], "SELECT ... WHERE id = ?",
             _py(FLOOR_SHOW_ID, str(db), vid), runs, missing),
        Case("show-name-json", "show NAME --json", [*volctl, "show", name, "--json"], "SELECT ... WHERE name = ?",
             _py(FLOOR_SHOW_NAME, str(db), name), runs, missing),
        Case("list-json", "list --json", [*volctl, "list", "--json"], "SELECT * FROM volumes (streamed)",
             _py(FLOOR_LIST, str(db)), list_runs),
        Case("list-table", "list (table)", [*volctl, "list"], "SELECT * FROM volumes (streamed)",
             _py(FLOOR_LIST, str(db)), list_runs),
    ]
    return [c for c in cases if only is None or c.key in only]


def measure(case: Case, env: dict, budget: float | None = None, progress=None) -> None:
    """Warm-up run of each (page cache, pyc), then case.runs interleaved pairs. A command whose
    single run exceeds `budget` seconds is not repeated (figures of that one run are kept)."""
    warm = run_measured(case.argv, env=env)
    run_measured(case.floor, env=env)
    first = 0
    if warm.wall > SLOW:  # a warm-up changes nothing for a command this long: it counts as run 1
        case.walls.append(warm.wall)
        case.rss.append(warm.maxrss_kib)
        case.cpus.append(warm.cpu)
        floor = run_measured(case.floor, env=env)
        case.floor_walls.append(floor.wall)
        case.floor_rss.append(floor.maxrss_kib)
        case.floor_cpus.append(floor.cpu)
        first = 1
    for n in range(first, case.runs):
        order = (case.argv, case.floor) if n % 2 == 0 else (case.floor, case.argv)
        for argv in order:
            r = run_measured(argv, env=env)
            if argv is case.argv:
                if r.rc != case.expect_rc:
                    raise RuntimeError(f"{' '.join(argv)}: exit {r.rc} (expected {case.expect_rc}): {r.stderr.strip()[-500:]}")
                if "locked" in r.stderr:
                    raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
                case.walls.append(r.wall)
                case.rss.append(r.maxrss_kib)
                case.cpus.append(r.cpu)
            else:
                case.floor_walls.append(r.wall)
                case.floor_rss.append(r.maxrss_kib)
                case.floor_cpus.append(r.cpu)
        if progress:
            progress(".")
        if budget is not None and case.walls and case.walls[-1] > budget and n + 1 < case.runs:
            case.skipped = f"{n + 1} run(s): one takes over {budget:g} s"
            break


def check_outputs(db: Path, size: int, env: dict) -> None:
    """Not timed: the commands print what they should (list --json has `size` items)."""
    done = subprocess.run([str(VOLCTL), "--db", str(db), "list", "--json"], capture_output=True, env=env)
    items = json.loads(done.stdout)
    if len(items) != size:
        raise RuntimeError(f"list --json at {size}: {len(items)} items")


def version_case(runs: int) -> Case:
    return Case("version", "--version", [str(VOLCTL), "--version"], "python -c pass", _py(FLOOR_START), runs)


def run(sizes: list[int], runs: int, *, rebuild: bool = False, log=print, budget: float | None = 60.0,
        only: set[str] | None = None, tree: Path | None = None) -> dict:
    """`only`: the case keys to run (version, show-id-json, show-name-json, list-json, list-table);
    `tree`: a checkout whose volctl/ the console script imports instead of this one's."""
    env = child_env(**({"PYTHONPATH": str(tree.resolve())} if tree else {}))
    cache = RESULTS / "inventories"
    results: dict = {"builds": {}, "cases": [], "tree": str(tree) if tree else None}
    if tree:
        found = subprocess.run([str(VENV_PYTHON), "-c", "import volctl; print(volctl.__file__)"], capture_output=True,
                               text=True, env=env, cwd="/").stdout.strip()
        if not found.startswith(str(tree.resolve())):
            raise RuntimeError(f"--tree {tree}: volctl imports from {found}")
        log(f"  volctl from {found}")
    if only is None or "version" in only:
        case = version_case(runs)
        log(f"  --version x{runs} ", end="")
        measure(case, env, progress=lambda s: log(s, end=""))
        log("")
        results["cases"].append(case.result(None))
    for size in sizes:
        db, built = inventory_fixture.cached(size, cache, rebuild=rebuild)
        results["builds"][str(size)] = {"path": str(db), "seconds": built, "bytes": db.stat().st_size}
        log(f"  inventory {size}: " + (f"built in {built:.1f} s" if built is not None else "cached") + f", {db.stat().st_size / 1e6:.1f} MB")
        check_outputs(db, size, env)
        for case in cases_for(db, size, runs, only):
            log(f"    {case.label} x{case.runs} ", end="")
            measure(case, env, budget=budget, progress=lambda s: log(s, end=""))
            r = case.result(size)
            log(f" {r['wall']['median'] * 1000:.0f} ms (floor {r['floor']['median'] * 1000:.0f} ms, {r['ratio']:.2f}x;"
                f" CPU {r['cpu']['median'] * 1000:.0f} ms against {r['floor_cpu']['median'] * 1000:.0f} ms, {r['cpu_ratio']:.2f}x)")
            results["cases"].append(r)
    return results


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="0,100")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", help="comma-separated case keys (version, show-id-json, show-name-json, list-json, list-table)")
    p.add_argument("--tree", type=Path, help="time the volctl/ of this checkout (before/after on one machine state)")
    a = p.parse_args()
    out = run([int(s) for s in a.sizes.split(",")], a.runs, log=lambda *x, **k: print(*x, **k, file=sys.stderr, flush=True),
              only=set(a.only.split(",")) if a.only else None, tree=a.tree)
    print(json.dumps(out, indent=1))
