"""Start-up of volctl inside the QEMU guest (issue 20): `volctl --version` and `volctl show NAME
--json` against their floors, N interleaved rounds, medians. Under TCG every millisecond of the
host's start-up is about seven, and the real-kernel tier starts volctl hundreds of times.

Runs inside the guest (stdlib only besides volctl itself); nothing here needs LVM or LIO:

    tests/vm/vmrun --rw "$PWD/bench/results" -- \\
        "$PWD/.venv/bin/python" "$PWD/bench/vm_startup.py" --runs 15 \\
        --tree before="$PWD/bench/results/tree-d413cc4" --out "$PWD/bench/results/vm-startup.json"

Each round runs, in an order that rotates: `python -c pass` (the floor of --version), the one
indexed SQLite query (the floor of show, as bench/startup.py), and `volctl --version` and `volctl
show NAME --json` once for this checkout ("after") and once per --tree LABEL=DIR (that checkout's
volctl/ first on PYTHONPATH, through the same console script: `git archive COMMIT volctl | tar -x
-C DIR` makes one). Bytecode goes to a fresh directory in the guest; one warm-up run of each
compiles it and fills the page cache over 9p, as a regular install has its .pyc already.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = REPO / ".venv" / "bin" / "python"
VOLCTL = REPO / ".venv" / "bin" / "volctl"
sys.path.insert(0, str(HERE))

import inventory_fixture  # noqa: E402

FLOOR_SHOW = ("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
              "c.execute('SELECT * FROM volumes WHERE name = ?', (sys.argv[2],)).fetchone()")


def timed(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.decode(errors='replace')[-400:]}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--size", type=int, default=100, help="volumes in the inventory show reads (default 100)")
    p.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR", help="another checkout to time too")
    p.add_argument("--out", type=Path, help="write the figures as JSON (a --rw directory of vmrun)")
    a = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="volctl-startup-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VOLCTL_", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"))}
    base.update(LC_ALL="C", PYTHONPYCACHEPREFIX=str(work / "pycache"))
    db, _ = inventory_fixture.cached(a.size, work / "inventories")
    name = inventory_fixture.volume_name(a.size // 2 // 10 * 10)
    trees = {"after": None, **{label: Path(d).resolve() for label, d in (t.split("=", 1) for t in a.tree)}}
    envs = {label: {**base, **({"PYTHONPATH": str(d)} if d else {})} for label, d in trees.items()}
    for label, d in trees.items():
        found = subprocess.run([str(PYTHON), "-c", "import volctl; print(volctl.__file__)"], env=envs[label], cwd="/",
                               capture_output=True, text=True).stdout.strip()
        if d and not found.startswith(str(d)):
            raise SystemExit(f"--tree {label}: volctl imports from {found}")
        print(f"{label}: volctl from {found}", file=sys.stderr)

    cases = {"python -c pass": ([str(PYTHON), "-c", "pass"], base),
             "SELECT ... WHERE name = ?": ([str(PYTHON), "-c", FLOOR_SHOW, str(db), name], base)}
    for label in trees:
        cases[f"{label}: volctl --version"] = ([str(VOLCTL), "--version"], envs[label])
        cases[f"{label}: volctl show NAME --json"] = ([str(VOLCTL), "--db", str(db), "show", name, "--json"], envs[label])
    keys = list(cases)
    for key in keys:  # warm-up: bytecode, page cache
        timed(*cases[key])
    walls: dict[str, list[float]] = {k: [] for k in keys}
    started = time.monotonic()
    for n in range(a.runs):
        for key in keys[n % len(keys):] + keys[:n % len(keys)]:
            walls[key].append(timed(*cases[key]))
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    med = {k: statistics.median(v) for k, v in walls.items()}
    floor = {"version": med["python -c pass"], "show": med["SELECT ... WHERE name = ?"]}
    rows = [f"| {k} | {med[k]:.2f} s | {min(walls[k]):.2f}-{max(walls[k]):.2f} s | "
            + (f"{med[k] / floor['version' if '--version' in k else 'show']:.2f}x |" if ":" in k else "floor |")
            for k in keys]
    where = "in the guest" if os.environ.get("VMRUN_GUEST") else "on this host (not in a guest)"
    print(f"volctl start-up {where}, {a.runs} rounds, {a.size} volumes, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("| what | median | min-max | ratio to its floor |\n|---|---|---|---|\n" + "\n".join(rows))
    if a.out:
        a.out.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M:%S %z"), "runs": a.runs, "size": a.size,
                                     "trees": {k: str(v) if v else str(REPO) for k, v in trees.items()},
                                     "seconds": round(time.monotonic() - started, 1), "walls": walls,
                                     "median": med, "loadavg": os.getloadavg(), "guest": bool(os.environ.get("VMRUN_GUEST"))},
                                    indent=1))


if __name__ == "__main__":
    main()
