"""The inventory of N recorded exports that bench/vm_helpers.py restores: real LVs, real volctl
exports and ACLs made by volctl's own `connect` (target_helper = "rtslib"), each with its CHAP.

Runs INSIDE the vmrun guest only. Two shortcuts keep 1,000 of them to minutes under TCG, and
neither changes what a restore finds:

- The LVs (1 GiB, thick, on a sparse disk) are written into the volume group's metadata with
  one `vgcfgrestore` and activated with one `vgchange -ay`, rather than by 1,000 `lvcreate`
  runs (~1 s each under TCG, longer as the metadata grows). They are LVM LVs like any other:
  `lvs` lists them, and they are active as after a boot.
- Each volume's row is written as `volctl create` leaves it (status available), and then
  `VolumeService.connect` runs in this one process for every volume: the use case the CLI runs
  (export if missing, CHAP generated and stored, ACL, saved config), without 1,000 x 2 Python
  start-ups of ~3 s. Its saved config goes to a fresh file per chunk of 100 connects, merged into
  the real one at the end, so each connect rewrites at most 100 entries rather than up to 1,000
  (what the connect-vs-targets part measures); the merged file holds the same entries, and the
  build checks that it agrees with configfs (the helper's own `unsaved()`).

    .venv/bin/python bench/vm_inventory.py --db DB --config TOML --ids IDS.json --first 0 --count 100
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(REPO / "tests" / "vm")]

from guard import require_guest  # noqa: E402

CHUNK = 100


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return done.stdout


def volume_ids(count: int, seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def _lv_id(rng: random.Random) -> str:
    s = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32))
    cuts = (6, 4, 4, 4, 4, 4, 6)
    out, i = [], 0
    for n in cuts:
        out.append(s[i:i + n])
        i += n
    return "-".join(out)


def make_lvs(vg: str, names: list[str], size_gib: int = 1) -> dict:
    """Thick linear LVs, one after the other on pv0, in a volume group that has none yet."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="volctl-vgcfg-"))
    backup = work / "vg.txt"
    sh("vgcfgbackup", "-f", str(backup), vg)
    text = backup.read_text()
    if "logical_volumes" in text:
        raise RuntimeError(f"volume group {vg} already has LVs")
    extent_size = int(re.search(r"^\s*extent_size = (\d+)", text, re.M).group(1))  # 512-byte sectors
    pe_count = int(re.search(r"^\s*pe_count = (\d+)", text, re.M).group(1))
    extents = size_gib * 2 * 1024 * 1024 // extent_size
    if extents * len(names) > pe_count:
        raise RuntimeError(f"{vg}: {pe_count} extents, {extents * len(names)} needed")
    rng = random.Random(11)
    stamp = int(time.time())
    sections = []
    for i, name in enumerate(names):
        sections.append(
            f"\t\t{name} {{\n\t\t\tid = \"{_lv_id(rng)}\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n"
            f"\t\t\tflags = []\n\t\t\tcreation_time = {stamp}\n\t\t\tcreation_host = \"volctl-bench\"\n"
            f"\t\t\tsegment_count = 1\n\n\t\t\tsegment1 {{\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = {extents}\n\n"
            f"\t\t\t\ttype = \"striped\"\n\t\t\t\tstripe_count = 1\n\n\t\t\t\tstripes = [\n"
            f"\t\t\t\t\t\"pv0\", {i * extents}\n\t\t\t\t]\n\t\t\t}}\n\t\t}}\n")
    text = re.sub(r"seqno = (\d+)", lambda m: f"seqno = {int(m.group(1)) + 1}", text, count=1)
    end = text.rstrip().rfind("\n}")
    text = text[:end] + "\n\n\tlogical_volumes {\n\n" + "\n".join(sections) + "\t}\n" + text[end:]
    backup.write_text(text)
    sh("vgcfgrestore", "-f", str(backup), vg)
    restored = time.monotonic()
    sh("vgchange", "-a", "y", vg)
    listed = sh("lvs", "--noheadings", "-o", "lv_name", vg).split()
    if sorted(listed) != sorted(names):
        raise RuntimeError(f"{vg}: {len(listed)} LVs after vgcfgrestore, {len(names)} written")
    return {"lvs": len(names), "vgcfgrestore_s": round(restored - started, 1),
            "vgchange_s": round(time.monotonic() - restored, 1)}


def _merge(save_file: Path, parts: list[Path]) -> None:
    """The chunk files' targets and storage objects into the saved config, each replacing an entry
    of the same name, new ones appended in the order they were made (as per-connect saves leave them)."""
    from volctl.targets import saved

    document = saved.read(save_file)
    targets, sos = [], []
    for part in parts:
        doc = saved.read(part)
        targets += doc.get("targets", [])
        sos += doc.get("storage_objects", [])
    wwns = {t["wwn"] for t in targets}
    names = {s["name"] for s in sos}
    document["targets"] = [t for t in document.get("targets", []) if t.get("wwn") not in wwns] + targets
    document["storage_objects"] = [s for s in document.get("storage_objects", [])
                                   if not (s.get("plugin") == "block" and s.get("name") in names)] + sos
    saved.write(save_file, document)


def build(db: Path, config: Path, ids: list[str], first: int, count: int) -> dict:
    from volctl import iscsi  # noqa: F401  (imported as the CLI would, before the service)
    from volctl.config import load_settings
    from volctl.inventory import Inventory, now
    from volctl.service import VolumeService
    from volctl.targets import saved

    settings = load_settings(str(config))
    started = time.monotonic()
    inv = Inventory.open(db, create=True)
    with inv.write():
        for i in range(first, first + count):
            stamp = now()
            inv.add_volume(id=ids[i], name=f"r{i:04d}", size=1, status="available", attach_status="detached",
                           multiattach=0, volume_group=settings.volume_group, lv_name=settings.lv_name(ids[i]),
                           created_at=stamp, updated_at=stamp)
    inv.close()
    rows = time.monotonic()
    real = VolumeService(db, settings)
    real.inventory()  # makes the lock directory
    lio = real.targets.for_new_export()
    save_file = lio.save_file
    if not save_file.exists():
        lio.save()  # what the first connect on a host without a saved config does
    work = Path(tempfile.mkdtemp(prefix="volctl-build-"))
    parts, walls = [], []
    for start in range(first, first + count, CHUNK):
        part = work / f"chunk-{start:05d}.json"
        saved.write(part, {"fabric_modules": [], "storage_objects": [], "targets": []})
        parts.append(part)
        svc = VolumeService(db, settings, save_file=part)
        for i in range(start, min(start + CHUNK, first + count)):
            t = time.perf_counter()
            svc.connect(f"r{i:04d}", {"initiator": f"iqn.2024-01.test.volctl:restore{i:04d}"})
            walls.append(time.perf_counter() - t)
        svc.inventory().close()
    connected = time.monotonic()
    _merge(save_file, parts)
    unsaved = lio.unsaved()
    if unsaved:
        raise RuntimeError(f"saved config and configfs differ for {len(unsaved)} targets, e.g. {unsaved[:3]}")
    walls.sort()
    return {"volumes": count, "rows_s": round(rows - started, 2), "connects_s": round(connected - rows, 1),
            "connect_median_s": round(walls[len(walls) // 2], 3), "connect_max_s": round(walls[-1], 3),
            "merge_and_check_s": round(time.monotonic() - connected, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", required=True, type=Path)
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--ids", required=True, type=Path, help="JSON list of the volume ids (their LVs exist)")
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    require_guest()
    print(json.dumps(build(a.db, a.config, json.loads(a.ids.read_text()), a.first, a.count)))


if __name__ == "__main__":
    main()
