"""Snapshots, volumes from snapshots, clones and revert on a real kernel, thick and thin (issue 14).

Each flow: known bytes A written over an iSCSI login, a snapshot taken while the session is live,
bytes B over A; then the snapshot's LV reads A, a volume made from it reads A over its own login,
a clone reads B, and (thick) revert brings A back, the snapshot made again. Deleting the thick
snapshot with volume_clear = "zero" leaves its exception store zeroed on the disk. Nothing is left
behind: no LV, no target, doctor clean.

Exports go through the rtslib helper (no ~3 s cinder-rtstool call per step under TCG); the target
helper plays no part in what LVM does here, and test_real_kernel.py covers lioadm.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess

import pytest
from conftest import CONFIGFS, INITIATOR_1, VG, lv_names, sh

import initiator

GIB = 1024**3
MIB = 1024**2
OFFSET, SIZE = 1 * MIB, 4 * MIB  # where the known bytes go
POOL = f"{VG}-pool"


def write_through(device: str, data: bytes) -> None:
    """O_DIRECT through the initiator's device, fsync'd: on the LV before this returns."""
    fd = os.open(device, os.O_RDWR | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, len(data))  # page-aligned, as O_DIRECT wants
        buf.write(data)
        os.pwritev(fd, [buf], OFFSET)
        os.fsync(fd)
    finally:
        os.close(fd)


def digest_of(device: str) -> str:
    """The bytes at OFFSET read with O_DIRECT (dd), so no page cache of an earlier read answers."""
    done = subprocess.run(["dd", f"if={device}", "bs=1M", f"skip={OFFSET // MIB}", f"count={SIZE // MIB}",
                           "iflag=direct", "status=none"], capture_output=True, check=True, timeout=300)
    assert len(done.stdout) == SIZE, device
    return hashlib.sha256(done.stdout).hexdigest()


def digest_over_iscsi(data: dict) -> str:
    session = initiator.login(data)
    try:
        return digest_of(session.device())
    finally:
        session.logout()


def lv_attr(name: str) -> str:
    return sh("lvs", "--noheadings", "-o", "lv_attr", f"{VG}/{name}").stdout.strip()


def cow_extents(snapshot_lv: str) -> tuple[str, int, int]:
    """(PV device, byte offset, byte length) of a thick snapshot's exception store on the disk."""
    out = sh("lvs", "--noheadings", "--segments", "-o", "seg_pe_ranges", f"{VG}/{snapshot_lv}").stdout.split()
    assert len(out) == 1, out  # one segment on one PV: the scratch disk
    device, _, extents = out[0].partition(":")
    first, _, last = extents.partition("-")
    pe_start = int(sh("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", device).stdout)
    extent = int(sh("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_extent_size", VG).stdout)
    return device, pe_start + int(first) * extent, (int(last) - int(first) + 1) * extent


def raw_head(device: str, offset: int, length: int = 16 * MIB) -> bytes:
    """The start of a byte range of the disk itself: where a COW store keeps the chunks it copied first."""
    with open(device, "rb", buffering=0) as disk:
        os.posix_fadvise(disk.fileno(), offset, length, os.POSIX_FADV_DONTNEED)
        disk.seek(offset)
        return disk.read(length)


def targets() -> set[str]:
    return {p.name for p in CONFIGFS.glob("iqn.*")} if CONFIGFS.is_dir() else set()


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """If a flow fails midway, what it made must not fail the modules after it (test_thin.py
    starts without a pool): its LVs go, by the names only this module uses."""
    yield
    for lv in sorted(lv_names()):
        if lv.startswith(("_snapshot-", "clone-snap-")):
            sh("lvremove", "-qq", "-f", f"{VG}/{lv}", check=False)
    for lv in sorted(lv_names()):
        if lv in MADE:
            sh("lvremove", "-qq", "-f", f"{VG}/{lv}", check=False)
    if POOL in lv_names() and not any(lv.startswith("volume-") for lv in lv_names()):
        sh("lvremove", "-qq", "-f", f"{VG}/{POOL}", check=False)


MADE: set[str] = set()


@pytest.fixture
def svolctl(volctl, tmp_path):
    def run(kind: str, zero: bool = False):
        config = tmp_path / f"{kind}-{zero}.toml"
        config.write_text(f'volume_group = "{VG}"\ntarget_ip_address = "127.0.0.1"\ntarget_helper = "rtslib"\n'
                          f'lvm_type = "{"thin" if kind == "thin" else "default"}"\n'
                          f'volume_clear = "{"zero" if zero else "none"}"\n')
        return _With(volctl, ("--config", str(config)))

    return run


class _With:
    def __init__(self, volctl, prefix):
        self.volctl, self.prefix = volctl, prefix

    def __call__(self, *args, expect: int = 0):
        return self.volctl(*self.prefix, *args, expect=expect)

    def json(self, *args):
        return self.volctl.json(*self.prefix, *args)


@pytest.mark.parametrize("kind", ["thick", "thin"])
def test_snapshot_volume_from_it_clone_and_revert(svolctl, kind):
    v = svolctl(kind)
    z = svolctl(kind, zero=True)
    thin = kind == "thin"
    name = f"snap-{kind}"
    vol = v.json("create", "--size", "1", "--name", name)
    origin_lv = vol["lv_path"].rsplit("/", 1)[1]
    MADE.add(origin_lv)
    info = v.json("connect", name, "--initiator", INITIATOR_1)
    a, b = os.urandom(SIZE), os.urandom(SIZE)
    session = initiator.login(info["data"])
    try:
        device = session.device()
        write_through(device, a)
        snap = v.json("snapshot", "create", name, "--name", f"{name}-s1")  # with the session live
        write_through(device, b)
        assert digest_of(device) == hashlib.sha256(b).hexdigest()
    finally:
        session.logout()
    digest_a, digest_b = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
    assert (snap["status"], snap["volume_size"], snap["volume_id"]) == ("available", 1, vol["id"])
    snap_lv = snap["lv_path"].rsplit("/", 1)[1]
    assert snap_lv == f"_snapshot-{snap['id']}"  # Cinder's escaped name
    attr = lv_attr(snap_lv)
    if thin:
        assert attr.startswith("V") and attr[9] == "k", attr  # a thin snapshot, skipped at activation
        sh("lvchange", "-a", "y", "-K", f"{VG}/{snap_lv}")  # to read it here; volctl activates it when it needs to
    else:
        assert attr.startswith("s") and lv_attr(origin_lv).startswith("o"), (attr, lv_attr(origin_lv))
    assert digest_of(snap["lv_path"]) == digest_a
    assert v.json("snapshot", "list", name)[0]["id"] == snap["id"]

    v("delete", name, expect=5)  # a volume with snapshots stays

    # a new volume from the snapshot, exported and logged in to, reads A
    copy = v.json("create", "--snapshot", f"{name}-s1", "--name", f"{name}-copy")
    assert (copy["status"], copy["size"]) == ("available", 1)
    copy_lv = copy["lv_path"].rsplit("/", 1)[1]
    MADE.add(copy_lv)
    assert lv_attr(copy_lv)[9:10] != "k"  # -k n: it comes up at boot by itself
    copy_info = v.json("connect", f"{name}-copy", "--initiator", INITIATOR_1)
    assert digest_over_iscsi(copy_info["data"]) == digest_a
    v("disconnect", f"{name}-copy", "--initiator", INITIATOR_1)
    v("unexport", f"{name}-copy")

    # a clone of the volume, one GiB larger, reads B
    clone = v.json("create", "--source-volume", name, "--size", "2", "--name", f"{name}-clone")
    MADE.add(f"volume-{clone['id']}")
    assert clone["size"] == 2 and int(sh("blockdev", "--getsize64", clone["lv_path"]).stdout) == 2 * GIB
    assert digest_of(clone["lv_path"]) == digest_b
    assert not any(n.startswith("clone-snap-") for n in lv_names())  # the temporary one is gone

    # revert: refused while exported (the merge needs the LV closed), and for thin
    v("revert", name, "--snapshot", f"{name}-s1", expect=5)
    v("disconnect", name, "--initiator", INITIATOR_1)
    v("unexport", name)
    if thin:
        v("revert", name, "--snapshot", f"{name}-s1", expect=5)
    else:
        reverted = v.json("revert", name, "--snapshot", f"{name}-s1")
        assert reverted["status"] == "available"
        assert digest_of(vol["lv_path"]) == digest_a
        again = v.json("snapshot", "show", f"{name}-s1")
        assert again["status"] == "available" and snap_lv in lv_names()  # made again after the merge
        assert lv_attr(snap_lv).startswith("s")

    # delete the snapshot: a thick one's exception store is zeroed first (volume_clear = "zero")
    if not thin:
        write_through_lv(vol["lv_path"], b)  # so the re-made snapshot's store holds A's chunks again
        disk, start, length = cow_extents(snap_lv)
        assert raw_head(disk, start).strip(b"\0"), "the COW store holds nothing before the delete: the check proves nothing"
    z("snapshot", "delete", f"{name}-s1")
    assert snap_lv not in lv_names()
    if not thin:
        assert not raw_head(disk, start, min(length, 16 * MIB)).strip(b"\0"), "the COW store was not zeroed"

    for gone in (f"{name}-clone", f"{name}-copy", name):
        v("delete", gone)
    assert not {origin_lv, copy_lv, f"volume-{clone['id']}"} & lv_names()
    assert not any(t.endswith(tuple(x["id"] for x in (vol, copy, clone))) for t in targets())
    assert v.json("doctor")["clean"] is True
    history = v.json("history", snap["id"])
    assert [e["action"] for e in history if e["kind"] == "transition"][-1] == "delete"


def write_through_lv(lv_path: str, data: bytes) -> None:
    """Straight onto the volume's LV (it is not exported now): the origin's old chunks go to the COW store."""
    write_through(lv_path, data)
