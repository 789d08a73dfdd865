"""`volctl restore` with N recorded exports, in the QEMU guest (real LVM, real cinder-rtstool).

For each N: N thin LVs, and an inventory with N exported volumes (one connection each, own CHAP),
written through volctl's Inventory as `volctl connect` leaves them; nothing live in LIO, as after
a reboot. Then timed: `volctl restore` (everything re-created, one save), `volctl restore` again
(everything present). The inventory is built rather than made with N `volctl connect` calls,
whose saves alone would take hours at N = 100 under TCG (BENCHMARKS.md).

    tests/vm/vmrun --rw OUT -- .venv/bin/python bench/vm_restore.py --sizes 10,100 --out OUT/restore.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "vm")]

from guard import require_guest  # noqa: E402

from volctl import iscsi  # noqa: E402
from volctl.inventory import Inventory, now  # noqa: E402
from volctl.model import Connection  # noqa: E402

VG = "volctl-bench"
POOL = f"{VG}-pool"
PREFIX = "iqn.2010-10.org.openstack:"
TOOLS = REPO / ".cache" / "vm" / "tools" / "bin"
CONFIGFS = Path("/sys/kernel/config/target/iscsi")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def sh(*argv: str, env: dict | None = None, timeout: float | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return done


def build(work: Path, count: int) -> Path:
    db = work / f"restore-{count}" / "volctl.db"
    db.parent.mkdir(mode=0o700, parents=True)
    inv = Inventory.open(db, create=True)
    with inv.write():
        for i in range(count):
            vid = str(uuid.uuid4())
            lv = f"volume-{vid}"
            iqn = PREFIX + lv
            sh("lvcreate", "-qq", "-T", "-V", "1g", "-n", lv, f"{VG}/{POOL}")
            stamp = now()
            inv.add_volume(id=vid, name=f"r{count}-{i:03d}", size=1, status="available", attach_status="detached",
                           multiattach=0, volume_group=VG, lv_name=lv,
                           provider_location=iscsi.provider_location(("127.0.0.1",), 3260, iqn),
                           provider_auth=iscsi.provider_auth(iscsi.generate_chap()), created_at=stamp, updated_at=stamp)
            initiator = f"iqn.2024-01.test.volctl:bench{i:03d}"
            inv.add_connection(Connection(vid, initiator, {"initiator": initiator}, stamp))
    inv.close()
    return db


def timed_restore(env: dict, timeout: float) -> dict:
    started = time.perf_counter()
    done = subprocess.run([str(REPO / ".venv" / "bin" / "volctl"), "--json", "restore"], capture_output=True, text=True,
                          env=env, timeout=timeout)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"volctl restore: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    report = json.loads(done.stdout)
    return {"seconds": round(seconds, 2), "restored": len(report["restored"]), "present": len(report["present"]),
            "failed": len(report["failed"]), "saved": report["saved"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10,100")
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=3600.0, help="per volctl restore")
    args = p.parse_args()
    scratch = require_guest()
    sh("pvcreate", "-qq", "-ff", "-y", scratch)
    sh("vgcreate", "-qq", VG, scratch)
    sh("lvcreate", "-qq", "-T", "-L", "2g", f"{VG}/{POOL}")
    work = Path("/var/tmp/volctl-bench-restore")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "volctl.toml"
    config.write_text(f'volume_group = "{VG}"\nvolume_clear = "none"\n')
    results = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(), "sizes": {}}
    for count in [int(s) for s in args.sizes.split(",")]:
        sh(str(TOOLS / "cinder-rtstool"), "get-targets", env={**os.environ, "PYTHONWARNINGS": "ignore"})  # loads LIO
        for iqn in [p.name for p in CONFIGFS.glob("iqn.*")]:  # the previous size's targets
            sh(str(TOOLS / "cinder-rtstool"), "delete", iqn, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        started = time.perf_counter()
        db = build(work, count)
        built = time.perf_counter() - started
        env = {**os.environ, "VOLCTL_DB": str(db), "VOLCTL_CONFIG": str(config), "PYTHONWARNINGS": "ignore",
               "PATH": f"{TOOLS}:{os.environ['PATH']}"}
        first = timed_restore(env, args.timeout)
        log(f"  {count} exports: restore {first['seconds']} s ({first})")
        second = timed_restore(env, args.timeout)
        log(f"  {count} exports: restore again {second['seconds']} s ({second})")
        results["sizes"][str(count)] = {"build_seconds": round(built, 1), "restore": first, "restore_again": second}
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
