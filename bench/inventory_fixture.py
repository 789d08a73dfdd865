"""Inventories of a given size, built through volctl's own inventory code (Inventory.open and
add_volume / add_attachment / record inside one `with inv.write():` per batch), never by hand-written SQL.

Every 10th volume is in-use with one live attachment (and its connection: an ACL), every 40th of those also has a detached
attachment in its past, every 5th is exported (provider_location and provider_auth set), and
each volume has its `create` transition in the history, as after `volctl create`.

    .venv/bin/python bench/inventory_fixture.py PATH COUNT
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from volctl.inventory import Inventory  # noqa: E402
from volctl.model import Attachment, Connection  # noqa: E402

BATCH = 2000
VG = "cinder-volumes"
PREFIX = "iqn.2010-10.org.openstack:"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def volume_name(i: int) -> str:
    return f"vol-{i:06d}"


def volume_id(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def fingerprint() -> str:
    """Cached inventories are rebuilt when the schema or this builder changes (bench/run --rebuild
    forces it, e.g. after a change to how inventory.py writes rows)."""
    h = hashlib.sha256()
    for f in (REPO / "volctl" / "migrations.py", Path(__file__)):
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


def build(path: Path, count: int) -> float:
    """Returns the seconds it took."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # as volctl's own state directory; otherwise every timed call warns
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    inv = Inventory.open(path, create=True)
    for start in range(0, count, BATCH):
        with inv.write():
            for i in range(start, min(start + BATCH, count)):
                _add(inv, i)
    inv.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    inv.close()
    return time.perf_counter() - started


def _add(inv: Inventory, i: int) -> None:
    vid = volume_id(i)
    stamp = (EPOCH + timedelta(seconds=i)).isoformat(timespec="microseconds")
    lv = f"volume-{vid}"
    in_use = i % 10 == 0
    exported = in_use or i % 5 == 0
    iqn = PREFIX + lv
    inv.add_volume(
        id=vid, name=volume_name(i), size=1 + i % 100, status="in-use" if in_use else "available",
        attach_status="attached" if in_use else "detached", multiattach=int(i % 100 == 0), volume_group=VG,
        lv_name=lv, provider_location=f"127.0.0.1:3260,{iqn} {iqn} 0" if exported else None,
        provider_auth="CHAP benchuser0123456789A benchpass01234567" if exported else None,
        created_at=stamp, updated_at=stamp,
    )
    inv.record((vid, volume_name(i)), "transition", "create", to_status="creating", detail=f"{1 + i % 100} GiB")
    if in_use:
        connector = {"initiator": f"iqn.1994-05.com.redhat:compute{i % 7}", "host": f"compute{i % 7}"}
        inv.add_connection(Connection(vid, connector["initiator"], connector, stamp))
        if i % 400 == 0:
            inv.add_attachment(Attachment(
                id=str(uuid.UUID(int=random.Random(-i - 1).getrandbits(128), version=4)), volume_id=vid,
                instance_uuid=str(uuid.UUID(int=random.Random(-i - 2).getrandbits(128), version=4)),
                attached_host=f"compute{i % 7}", mountpoint="/dev/vdc", attach_mode="rw", attach_status="detached",
                attach_time=stamp, detach_time=stamp, connector=connector,
            ))
        inv.add_attachment(Attachment(
            id=str(uuid.UUID(int=random.Random(-i - 3).getrandbits(128), version=4)), volume_id=vid,
            instance_uuid=str(uuid.UUID(int=random.Random(-i - 4).getrandbits(128), version=4)),
            attached_host=f"compute{i % 7}", mountpoint="/dev/vdb", attach_mode="rw", attach_status="attached",
            attach_time=stamp, connector=connector,
        ))


def cached(count: int, directory: Path, rebuild: bool = False) -> tuple[Path, float | None]:
    """(path, build seconds or None when it came from the cache)."""
    path = directory / f"inventory-{count}-{fingerprint()}.db"
    if path.exists() and not rebuild:
        return path, None
    for stale in directory.glob(f"inventory-{count}-*.db*"):  # other schema or builder versions
        stale.unlink()
    tmp = path.with_suffix(".tmp.db")
    # In a child process: the benchmark's own process stays small (a 100k build peaks at ~300 MB).
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, str(tmp), str(count)], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    tmp.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    return path, seconds


if __name__ == "__main__":
    target, n = Path(sys.argv[1]), int(sys.argv[2])
    took = build(target, n)
    print(f"{n} volumes in {took:.1f} s -> {target}")
