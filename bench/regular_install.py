"""Read commands from a regular (non-editable) install, as `pip install volctl` leaves it.

The editable .venv that part 1 measures has a path finder that every interpreter in it runs at
start-up (16 ms of `site`, BENCHMARKS.md), the floor included, which inflates the floor. Here:

- a fresh venv in a temporary directory (never .venv), made with the interpreter .venv was made
  from, and `pip install` of a copy of the working tree (a wheel built and installed, with its
  bytecode compiled at install time, as pip does);
- `volctl show ID --json`, `show NAME --json` and `--version` from that venv, each against
  floors run interleaved with it, round by round:
  * outside: the same interpreter outside any venv (`python3.11 -c` the one SQLite query), the
    floor the issue names; it runs that interpreter's own site-packages .pth files;
  * venv: the regular venv's own `python -c`, the same query: no editable finder, no .pth;
  * bare: the same interpreter with -S (no site at all): the interpreter and the query alone.

    .venv/bin/python bench/regular_install.py [--sizes 0,100,10000,100000] [--runs 10] [--json FILE] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory_fixture  # noqa: E402
from common import REPO, RESULTS, Stats, git_describe, machine, run_measured, table, write_json  # noqa: E402
from startup import FLOOR_SHOW_ID, FLOOR_SHOW_NAME, FLOOR_START  # noqa: E402

GOAL = 3.0


def base_python() -> Path:
    """The interpreter .venv was made from (pyvenv.cfg), run outside any venv."""
    for line in (REPO / ".venv" / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "executable":
            return Path(value.strip())
    return Path(sys.base_prefix) / "bin" / "python3"


def install(tmp: Path, log) -> tuple[Path, Path]:
    src = tmp / "src"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    venv = tmp / "venv"
    started = time.perf_counter()
    subprocess.run([str(base_python()), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", str(src)], check=True,
                   stdout=subprocess.DEVNULL)
    log(f"  regular install into {venv} in {time.perf_counter() - started:.0f} s")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import volctl; print(volctl.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp).stdout.strip()
    if not found.startswith(str(venv)):
        raise RuntimeError(f"volctl imported from {found}, not the regular install")
    return venv / "bin" / "python", venv / "bin" / "volctl"


def env() -> dict:
    """As a person's shell runs it: bytecode from the install's own __pycache__, C locale."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("VOLCTL_", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "VIRTUAL_ENV"))}
    e.pop("PYTHONWARNINGS", None)
    e["LC_ALL"] = "C"
    return e


def measure(argv: list[str], floors: dict[str, list[str]], runs: int, expect_rc: int, e: dict) -> dict:
    """Warm-up of each, then `runs` rounds; each round runs the command and every floor, in an
    order that rotates from round to round."""
    order = [("volctl", argv), *floors.items()]
    for _, a in order:
        run_measured(a, env=e)
    walls: dict[str, list[float]] = {k: [] for k, _ in order}
    rss: dict[str, int] = {k: 0 for k, _ in order}
    for n in range(runs):
        for key, a in order[n % len(order):] + order[:n % len(order)]:
            r = run_measured(a, env=e)
            if key == "volctl" and r.rc != expect_rc:
                raise RuntimeError(f"{' '.join(a)}: exit {r.rc}: {r.stderr.strip()[-400:]}")
            walls[key].append(r.wall)
            rss[key] = max(rss[key], r.maxrss_kib)
    out = {k: {**Stats.of(v).__dict__, "maxrss_kib": rss[k]} for k, v in walls.items()}
    for k in floors:
        out[k]["ratio"] = out["volctl"]["median"] / out[k]["median"]
    return out


def cases(python: Path, volctl: Path, sizes: list[int]) -> list[tuple[str, int | None, list[str], str, list[str], int]]:
    out = [("--version", None, [str(volctl), "--version"], FLOOR_START, [], 0)]
    for size in sizes:
        db, _ = inventory_fixture.cached(size, RESULTS / "inventories")
        i = (size // 2) // 10 * 10
        vid = inventory_fixture.volume_id(i) if size else "00000000-0000-4000-8000-000000000000"
        name = inventory_fixture.volume_name(i) if size else "vol-absent"
        rc = 0 if size else 3
        out.append(("show ID --json", size, [str(volctl), "--db", str(db), "show", vid, "--json"], FLOOR_SHOW_ID, [str(db), vid], rc))
        out.append(("show NAME --json", size, [str(volctl), "--db", str(db), "show", name, "--json"], FLOOR_SHOW_NAME,
                    [str(db), name], rc))
    return out


def importtime(argv: list[str], e: dict, runs: int = 5) -> dict:
    """Where a process's start-up goes, from `-X importtime` (median of `runs`, microseconds):
    top-level imports (site's own included) by cumulative time, and every import down to depth 3
    with its cumulative time, largest first. `argv` without the interpreter's -X flag."""
    per_run: list[dict[tuple[int, str], int]] = []
    for _ in range(runs):
        done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, env=e)
        row: dict[tuple[int, str], int] = {}
        for line in done.stderr.splitlines():
            parts = line[len("import time:"):].split("|") if line.startswith("import time:") else []
            if len(parts) == 3 and parts[1].strip().isdigit():
                label = parts[2][1:]
                depth = (len(label) - len(label.lstrip(" "))) // 2
                key = (depth, label.strip())
                row[key] = row.get(key, 0) + int(parts[1])
        per_run.append(row)
    keys = set().union(*per_run)
    med = {k: sorted(r.get(k, 0) for r in per_run)[runs // 2] for k in keys}
    top = {name: us for (depth, name), us in med.items() if depth == 0}
    return {"top_level_us": dict(sorted(top.items(), key=lambda kv: -kv[1])[:25]), "total_us": sum(top.values()),
            "tree_us": [{"depth": d, "module": n, "cumulative_us": us}
                        for (d, n), us in sorted(med.items(), key=lambda kv: -kv[1]) if d <= 3][:40]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="0,100,10000,100000")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--profile", action="store_true", help="also -X importtime of show NAME --json (both floors)")
    p.add_argument("--keep", action="store_true", help="keep the temporary venv")
    a = p.parse_args()

    def log(*x, end="\n"):
        print(*x, end=end, file=sys.stderr, flush=True)

    results: dict = {"commit": git_describe(), "when": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(),
                     "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()), "cases": []}
    tmp = Path(tempfile.mkdtemp(prefix="volctl-regular-"))
    try:
        python, volctl = install(tmp, log)
        base = base_python()
        results["interpreters"] = {"venv": str(python), "outside": str(base)}
        e = env()
        for label, size, argv, code, args, rc in cases(python, volctl, [int(s) for s in a.sizes.split(",")]):
            floors = {"outside": [str(base), "-c", code, *args], "venv": [str(python), "-c", code, *args],
                      "bare": [str(base), "-S", "-c", code, *args]}
            log(f"  {label} at {size}: ", end="")
            m = measure(argv, floors, a.runs, rc, e)
            log(f"{m['volctl']['median'] * 1000:.0f} ms; floors " + ", ".join(
                f"{k} {m[k]['median'] * 1000:.0f} ms ({m[k]['ratio']:.2f}x)" for k in floors))
            results["cases"].append({"command": label, "size": size, **m})
        if a.profile:
            size = max(int(s) for s in a.sizes.split(","))
            db, _ = inventory_fixture.cached(size, RESULTS / "inventories")
            name = inventory_fixture.volume_name((size // 2) // 10 * 10)
            results["importtime"] = {
                "volctl show NAME --json": importtime([str(python), str(volctl), "--db", str(db), "show", name, "--json"], e),
                "floor outside the venv": importtime([str(base), "-c", FLOOR_SHOW_NAME, str(db), name], e),
                "floor venv python": importtime([str(python), "-c", FLOOR_SHOW_NAME, str(db), name], e),
            }
            for label, r in results["importtime"].items():
                log(f"  importtime {label}: {r['total_us'] / 1000:.1f} ms of imports; "
                    + ", ".join(f"{k} {v / 1000:.1f}" for k, v in list(r["top_level_us"].items())[:8]))
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    results["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = []
    for c in results["cases"]:
        rows.append([c["command"], "-" if c["size"] is None else f"{c['size']:,}", Stats(**{k: c["volctl"][k] for k in
                     ("n", "median", "p10", "p90", "min", "max")}).ms()]
                    + [f"{c[k]['median'] * 1000:.0f} ms ({c[k]['ratio']:.2f}x)" for k in ("outside", "venv", "bare")])
    print(f"regular install, {results['commit']}, {results['when']}; load {results['loadavg_start']} -> {results['loadavg_end']}")
    print(table(["command", "volumes", "median [p10-p90]", "floor outside venv", "floor venv python", "floor -S"], rows))
    shows = [c for c in results["cases"] if c["command"].startswith("show")]
    if shows:
        worst = max(c["outside"]["ratio"] for c in shows)
        print(f"goal: show --json within {GOAL:g}x of the floor outside the venv: worst {worst:.2f}x -> "
              + ("met" if worst <= GOAL else "NOT met"))
    if a.json:
        write_json(Path(a.json), results)


if __name__ == "__main__":
    main()
