"""`volctl metrics` at 1,000 volumes (issue 23: under a second), against its floor in the same run.

    .venv/bin/python bench/metrics.py [--volumes 1000] [--runs 20]

The inventory is bench/inventory_fixture.py's (built through volctl's own inventory code), in a thin
group. LVM is a stand-in on PATH: an `lvs` that prints, as lvm2 2.03.16 does, the report of the
group's thin pool and one thin LV per volume (prepared once), so the figure is volctl's own cost plus
one program start; a real `lvs` of 1,000 LVs adds its own time to both sides (3.2 s under TCG in the
guest, BENCHMARKS.md section 7). The floor: one Python process on the same interpreter that runs the
same three queries on the same file, the same `lvs` through subprocess, parses its JSON and writes
the same kind of text. Both are whole processes (fork to reaped), interleaved round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, VENV_PYTHON, VOLCTL, Stats, child_env, run_measured  # noqa: E402
import inventory_fixture  # noqa: E402

VG = inventory_fixture.VG
POOL = f"{VG}-pool"
GIB = 1024**3
FLOOR = r"""
import json, sqlite3, subprocess, sys
c = sqlite3.connect(sys.argv[1])
lines = []
for status, n in c.execute("SELECT status, count(*) FROM volumes GROUP BY 1"):
    lines.append(f'volctl_volumes{{status="{status}"}} {n}')
rows = c.execute("SELECT status, volume_group, lv_name, size, updated_at, export_protocol FROM volumes").fetchall()
c.execute("SELECT volume_group, volume_size FROM snapshots").fetchall()
c.execute("SELECT count(*) FROM connections").fetchone()
out = subprocess.run(["lvs", "--reportformat", "json", "-o", "vg_name,lv_name,lv_size,data_percent", sys.argv[2]],
                     capture_output=True, text=True, check=True).stdout
lvs = json.loads(out)["report"][0]["lv"]
held = sum(int(lv["lv_size"]) * float(lv["data_percent"] or 0) / 100 for lv in lvs)
lines.append(f'volctl_allocated_bytes{{volume_group="{sys.argv[2]}"}} {held}')
sys.stdout.write("\n".join(lines) + "\n")
"""


def lvs_report(db: Path) -> str:
    """The group as lvs prints it: the pool and one thin LV per volume of the inventory."""
    import sqlite3

    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT lv_name, size FROM volumes").fetchall()
    conn.close()
    vg_size, pool_size = 2048 * GIB, 1945 * GIB
    common = {"vg_name": VG, "vg_size": str(vg_size), "vg_free": str(vg_size - pool_size - 2 * 128 * 1024**2)}
    lvs = [{"lv_name": POOL, "lv_size": str(pool_size), "lv_attr": "twi-aotz--", "data_percent": "31.41",
            "metadata_percent": "12.07", "lv_metadata_size": str(128 * 1024**2), "lv_health_status": "", "pool_lv": "",
            **common}]
    lvs += [{"lv_name": name, "lv_size": str(size * GIB), "lv_attr": "Vwi-aotz--", "data_percent": f"{(i * 7) % 100}.00",
             "metadata_percent": "", "lv_metadata_size": "", "lv_health_status": "", "pool_lv": POOL, **common}
            for i, (name, size) in enumerate(rows)]
    return json.dumps({"report": [{"lv": lvs}]}, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--volumes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    work = RESULTS / "metrics"
    (work / "bin").mkdir(parents=True, exist_ok=True)
    db, _ = inventory_fixture.cached(args.volumes, RESULTS)
    report = work / "lvs.json"
    report.write_text(lvs_report(db))
    lvs = work / "bin" / "lvs"
    lvs.write_text(f"#!/bin/sh\nexec cat {report}\n")
    lvs.chmod(0o755)
    config = work / "volctl.toml"
    config.write_text(f'volume_group = "{VG}"\nlvm_type = "thin"\nlvm_udev = "off"\n')
    env = child_env(PATH=f"{work / 'bin'}:{os.environ['PATH']}")
    command = [str(VOLCTL), "--db", str(db), "--config", str(config), "metrics"]
    floor = [str(VENV_PYTHON), "-c", FLOOR, str(db), VG]
    for argv in (command, floor):  # warm-up, and both must work
        run = run_measured(argv, env=env)
        if run.rc != 0:
            raise SystemExit(f"{argv[:4]} exited {run.rc}: {run.stderr[-800:]}")
    walls: dict[str, list[float]] = {"metrics": [], "floor": []}
    for _ in range(args.runs):
        walls["metrics"].append(run_measured(command, env=env).wall)
        walls["floor"].append(run_measured(floor, env=env).wall)
    ours, bare = Stats.of(walls["metrics"]), Stats.of(walls["floor"])
    result = {"volumes": args.volumes, "runs": args.runs, "metrics": ours.__dict__, "floor": bare.__dict__,
              "ratio": round(ours.median / bare.median, 2), "under_a_second": ours.p90 < 1.0}
    print(f"volctl metrics at {args.volumes} volumes: {ours.ms()}, floor {bare.ms()}, "
          f"{ours.median / bare.median:.2f}x", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
