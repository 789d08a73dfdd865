"""What durable commits cost (issue 24): the inventory's `synchronous = FULL` against NORMAL, per
write transaction and per whole write command, on the file system the inventory is on.

Each round runs, interleaved so load from elsewhere hits both alike: a reserve and an unreserve
through the service (one transaction each: the compare-and-swap and its history row) with the
inventory's connection at NORMAL, then the same at FULL (volctl's setting). Then a whole
`volctl reserve` / `volctl unreserve` process pair, FULL as shipped, beside the same pair with
NORMAL (this checkout's volctl/ with the one PRAGMA changed, through the same interpreter).

    .venv/bin/python bench/durability.py [--dir DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from volctl.config import Settings  # noqa: E402
from volctl.inventory import Inventory  # noqa: E402
from volctl.service import VolumeService  # noqa: E402


def transactions(workdir: Path, rounds: int) -> dict:
    service = VolumeService(workdir / "tx.db", Settings(lvm_udev="on"))
    service.inventory()  # made, WAL
    inv = service.inventory()
    inv.add_volume(id="6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", name="v1", size=1, status="available",
                   attach_status="detached", multiattach=0, volume_group="vg", lv_name="volume-x",
                   created_at="t", updated_at="t")
    times: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    for _ in range(rounds):
        for mode in ("NORMAL", "FULL"):
            inv.db.conn.execute(f"PRAGMA synchronous = {mode}")
            started = time.perf_counter()
            service.reserve("v1")
            service.unreserve("v1")
            times[mode].append((time.perf_counter() - started) / 2)
    return {mode: statistics.median(values) * 1000 for mode, values in times.items()}


def normal_tree(workdir: Path) -> Path:
    tree = workdir / "tree-normal"
    shutil.copytree(ROOT / "volctl", tree / "volctl", ignore=shutil.ignore_patterns("__pycache__"))
    source = tree / "volctl" / "inventory.py"
    text = source.read_text()
    assert text.count('conn.execute("PRAGMA synchronous = FULL")') == 1
    source.write_text(text.replace('conn.execute("PRAGMA synchronous = FULL")', 'conn.execute("PRAGMA synchronous = NORMAL")'))
    return tree


def commands(workdir: Path, rounds: int) -> dict:
    db = workdir / "cmd.db"
    env = {**os.environ, "VOLCTL_DB": str(db)}
    volctl = [sys.executable, "-c", "import sys; from volctl.cli import main; sys.argv[0] = 'volctl'; main()"]
    subprocess.run([*volctl, "create", "--size", "1", "--name", "v1"], env={**env, "PATH": _fake_lvm(workdir)},
                   check=True, capture_output=True)
    trees = {"FULL": str(ROOT), "NORMAL": str(normal_tree(workdir))}
    times: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    for _ in range(rounds):
        for mode, tree in trees.items():
            started = time.perf_counter()
            for command in ("reserve", "unreserve"):
                subprocess.run([*volctl, command, "v1"], env={**env, "PYTHONPATH": tree}, check=True, capture_output=True)
            times[mode].append((time.perf_counter() - started) / 2)
    return {mode: statistics.median(values) * 1000 for mode, values in times.items()}


def _fake_lvm(workdir: Path) -> str:
    """`lvcreate` and `vgs` that succeed without touching anything (create's LV is not measured)."""
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("lvcreate", "lvs", "vgs"):
        (bindir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bindir / tool).chmod(0o755)
    return f"{bindir}:{os.environ['PATH']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="where the inventories go (default: a temporary directory)")
    ap.add_argument("--rounds", type=int, default=100)
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="volctl-durability-", dir=a.dir))
    try:
        fs = subprocess.run(["stat", "-f", "-c", "%T", str(workdir)], capture_output=True, text=True).stdout.strip()
        load = open("/proc/loadavg").read().split()[:3]
        tx = transactions(workdir, a.rounds)
        cmd = commands(workdir, max(a.rounds // 5, 10))
        result = {"dir": str(workdir), "filesystem": fs, "loadavg_before": load, "rounds": a.rounds,
                  "transaction_ms": tx, "command_ms": cmd,
                  "transaction_extra_ms": tx["FULL"] - tx["NORMAL"], "command_extra_ms": cmd["FULL"] - cmd["NORMAL"]}
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
