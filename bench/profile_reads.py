"""Where the read commands spend their time: `-X importtime` of `show --json` (minimum over
several runs, by top-level import) and cProfile of `list` (table) and `list --json`,
summed by package. Writes the raw .prof files under bench/results/profiles/.

    bench/run --profile [--sizes 10000]      (sizes: the inventories to profile `list` on)
    .venv/bin/python bench/profile_reads.py --sizes 100000 [--tree DIR] [--no-list]
                                             (--tree: another checkout's volctl/, as bench/startup.py)
"""

from __future__ import annotations

import pstats
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inventory_fixture  # noqa: E402
from common import RESULTS, VENV_PYTHON, VOLCTL, child_env  # noqa: E402

RUNS = 7


def importtime(argv: list[str], env: dict | None = None) -> list[tuple[str, int, float]]:
    """(module, depth, min cumulative ms) for imports at depth <= 2, in import order."""
    best: dict[str, tuple[int, float]] = {}
    order: list[str] = []
    for _ in range(RUNS):
        err = subprocess.run([str(VENV_PYTHON), "-X", "importtime", *argv], capture_output=True, text=True,
                             env=env or child_env()).stderr
        for line in err.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not m:
                continue
            name, depth, cum = m[4], len(m[3]) // 2, int(m[2]) / 1000
            if name not in best:
                order.append(name)
                best[name] = (depth, cum)
            else:
                best[name] = (depth, min(best[name][1], cum))
    return [(n, *best[n]) for n in order if best[n][0] <= 2]


def package_of(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/volctl/" in filename:
        return "volctl"
    if filename.startswith("<") or filename == "~":
        return "builtins"
    return "stdlib"


def cprofile(argv: list[str], out: Path) -> tuple[float, dict[str, float], list[tuple[str, float, float]]]:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(VENV_PYTHON), "-m", "cProfile", "-o", str(out), *argv], stdout=subprocess.DEVNULL, check=True, env=child_env())
    stats = pstats.Stats(str(out))
    by_package: dict[str, float] = defaultdict(float)
    top = []
    for (filename, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
        by_package[package_of(filename)] += tt
        top.append((f"{Path(filename).name}:{line}({func})", tt, ct))
    top.sort(key=lambda t: -t[1])
    return stats.total_tt, dict(by_package), top[:12]


def main(sizes: list[int] | None = None) -> None:
    if sizes is None:
        sizes = [10_000]
        if "--sizes" in sys.argv:
            sizes = [int(s) for s in sys.argv[sys.argv.index("--sizes") + 1].split(",")]
    tree = Path(sys.argv[sys.argv.index("--tree") + 1]).resolve() if "--tree" in sys.argv else None
    env = child_env(**({"PYTHONPATH": str(tree)} if tree else {}))
    biggest = max(sizes)
    db, _ = inventory_fixture.cached(biggest, RESULTS / "inventories")
    name = inventory_fixture.volume_name(biggest // 2 // 10 * 10)
    print(f"# -X importtime of `volctl show {name} --json` ({biggest:,} volumes), min of {RUNS} runs, cumulative ms"
          + (f"; volctl/ from {tree}" if tree else ""))
    found = importtime([str(VOLCTL), "--db", str(db), "show", name, "--json"], env)
    for module, depth, cum in found:
        if cum >= 1.0:
            print(f"{cum:8.1f}  {'  ' * depth}{module}")
    top = [(module, cum) for module, depth, cum in found if depth == 0]
    names = [module for module, _ in top]
    after_site = sum(cum for module, cum in top[names.index("site") + 1:]) if "site" in names else 0.0
    print(f"{after_site:8.1f}  in all: the imports after site (volctl and what it brings; site "
          f"{dict(top).get('site', 0):.1f} ms, which the floor pays too)")
    if "--no-list" in sys.argv:
        return
    for size in sizes:
        db, _ = inventory_fixture.cached(size, RESULTS / "inventories")
        for label, extra in (("list", []), ("list --json", ["--json"])):
            out = RESULTS / "profiles" / f"{label.replace(' --', '-')}-{size}.prof"
            total, by_package, top = cprofile([str(VOLCTL), "--db", str(db), "list", *extra], out)
            print(f"\n# cProfile of `volctl {label}` ({size:,} volumes): {total:.2f} s of profiled time -> {out}")
            for package, tt in sorted(by_package.items(), key=lambda kv: -kv[1]):
                if tt >= 0.01 * total:
                    print(f"  {tt:7.2f} s {100 * tt / total:5.1f} %  {package}")
            print("  top functions by own time:")
            for fn, tt, ct in top[:8]:
                print(f"  {tt:7.2f} s own {ct:7.2f} s cum  {fn}")


if __name__ == "__main__":
    main()
