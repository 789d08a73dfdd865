"""Day two on a real kernel (issue 22): growing a volume while a host has it connected, and taking
an LV in and letting a volume go.

- iSCSI: a CHAP session with bytes on it; `volctl extend` of the in-use volume; os-brick's
  ISCSIConnector.extend_volume, as nova runs it on Cinder's volume-extended event, rescans and
  returns the new size; the session's disk has it, the old bytes are intact and bytes written past
  the old end over the session are on the LV;
- the same over NVMe/TCP (nvmet's namespace revalidated by volctl; `nvme connect`, then os-brick's
  NVMeOFConnector.extend_volume);
- an LV made with plain `lvcreate`, listed safe by `manageable`, taken in by `manage` (renamed to
  volume-<id>), read over iSCSI with its own bytes, then let go by `unmanage`: the LV stays, its
  target is gone, it is takeable again and doctor does not call it volctl's orphan; an LV held open
  by another process is listed not safe and `manage` refuses it (exit 5) changing nothing.

Each test makes its own volumes and LVs and removes them."""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
import sys
import uuid
from pathlib import Path

from conftest import CONFIGFS, INITIATOR_1, VG, brick, configfs_acls, inventory_tables, lv_names, saved_target, sh
from reboot import LENGTH, OFFSET, read_sha256

import initiator
import nvme_initiator

GIB = 1024**3
MIB = 1024**2
PAST_OLD_END = GIB + MIB  # where bytes go after a 1 -> 2 GiB extend


def in_use(volctl, name: str, *connect_args: str) -> tuple[dict, dict]:
    """A 1 GiB volume reserved, connected (exported on the way) and attached: in-use."""
    vol = volctl.json("create", "--size", "1", "--name", name)
    volctl("reserve", name)
    info = volctl.json("connect", name, *connect_args)
    vol = volctl.json("attach", name, "--instance", str(uuid.uuid4()), "--host", "compute1")
    assert (vol["status"], vol["attach_status"]) == ("in-use", "attached")
    return vol, info


def extend_in_use(volctl, name: str, host: str) -> dict:
    grown = volctl.json("extend", name, "--size", "2")
    assert (grown["size"], grown["status"], grown["attach_status"]) == (2, "in-use", "attached")
    assert [r["host"] for r in grown["rescans"]] == [host]
    return grown


def lv_bytes(lv_path: str, offset: int, length: int) -> bytes:
    """Straight from the LV, not the initiator's device (O_DIRECT: no page cache answers)."""
    fd = os.open(lv_path, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, length)
        os.preadv(fd, [buf], offset)
        return bytes(buf)
    finally:
        os.close(fd)


def grown_device_keeps_and_takes_bytes(device: str, lv_path: str, old_sha: str) -> None:
    """The device shows 2 GiB; the bytes written before the extend are intact; bytes written past
    the old end over it are on the LV (write_and_read_back reads them back from the LV itself)."""
    assert initiator.block_size(device) == 2 * GIB
    assert read_sha256(device) == old_sha
    sha_past = initiator.write_and_read_back(device, lv_path, offset=PAST_OLD_END)
    assert hashlib.sha256(lv_bytes(lv_path, PAST_OLD_END, LENGTH)).hexdigest() == sha_past


def test_grow_in_use_over_iscsi_seen_through_os_brick_extend_volume(volctl, iscsid):
    vol, info = in_use(volctl, "d2-grow", "--initiator", INITIATOR_1)
    iqn = info["data"]["target_iqn"]
    session = initiator.login(info["data"])  # CHAP, with the credentials connect handed out
    try:
        device = session.device()
        assert initiator.block_size(device) == GIB
        old_sha = initiator.write_and_read_back(device, vol["lv_path"])

        grown = extend_in_use(volctl, "d2-grow", INITIATOR_1)
        assert grown["rescans"] == [{"host": INITIATOR_1, "run": f"iscsiadm -m node -T {iqn} -R"}]
        assert sh("lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_size",
                  f"{VG}/volume-{vol['id']}").stdout.strip() == str(2 * GIB)
        # LIO answers READ CAPACITY with the LV's size but raises no "capacity data has changed":
        # the session's disk keeps the old size until the initiator rescans.
        assert initiator.block_size(device) == GIB
        assert brick("extend", {"connection_info": info}) == {"new_size": 2 * GIB}
        assert session.device() == device
        grown_device_keeps_and_takes_bytes(device, vol["lv_path"], old_sha)
    finally:
        session.logout()
    vol = volctl.json("detach", "d2-grow")  # the last attachment: its export goes
    assert (vol["status"], vol["size"], vol["provider_location"]) == ("available", 2, None)
    assert not (CONFIGFS / iqn).exists()
    volctl("delete", "d2-grow")
    assert f"volume-{vol['id']}" not in lv_names()


def test_grow_in_use_over_nvme_tcp_seen_through_os_brick_extend_volume(volctl, nvme_host):
    vol, info = in_use(volctl, "d2-nvgrow", "--protocol", "nvmet_tcp", "--initiator", nvme_host)
    data = info["data"]
    assert info["driver_volume_type"] == "nvmeof"
    nqn = data["nqn"]
    # keys only where the export hands them out (a kernel with in-band authentication, 6.12); the
    # stock 6.1 this runs on (guest b) has none, so none are passed
    controller = nvme_initiator.connect(data, vol["id"], hostnqn=nvme_host, secret=data.get("dhchap_secret"),
                                        ctrl_secret=data.get("dhchap_ctrl_secret"))
    try:
        device = controller.device()
        assert initiator.block_size(device) == GIB
        old_sha = initiator.write_and_read_back(device, vol["lv_path"])

        grown = extend_in_use(volctl, "d2-nvgrow", nvme_host)
        assert grown["rescans"][0]["run"].startswith("nvme ns-rescan")
        ns = Path("/sys/kernel/config/nvmet/subsystems", nqn, "namespaces", data["ns_id"])
        assert (ns / "device_path").read_text().strip() == vol["lv_path"]
        # os-brick, as nova: `nvme id-ns` (nsze), waits for sysfs to show it (nvmet's revalidate_size
        # sent the namespace-changed event), else `nvme ns-rescan`; returns the size in bytes
        assert brick("extend", {"connection_info": info}) == {"new_size": 2 * GIB}
        assert controller.device() == device
        grown_device_keeps_and_takes_bytes(device, vol["lv_path"], old_sha)
    finally:
        controller.disconnect()
    assert nvme_initiator.connected_to(nqn) == []
    vol = volctl.json("detach", "d2-nvgrow")
    assert (vol["status"], vol["size"], vol["provider_location"]) == ("available", 2, None)
    assert not Path("/sys/kernel/config/nvmet/subsystems", nqn).exists()
    volctl("delete", "d2-nvgrow")
    assert f"volume-{vol['id']}" not in lv_names()


def write_lv(path: str, offset: int = OFFSET, length: int = LENGTH) -> str:
    """Random bytes straight onto an LV (O_DIRECT, fsync'd), as a former owner left them."""
    data = os.urandom(length)
    buf = mmap.mmap(-1, length)
    buf.write(data)
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    try:
        os.pwritev(fd, [buf], offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def lv_attr(name: str) -> str:
    return sh("lvs", "--noheadings", "-o", "lv_attr", f"{VG}/{name}").stdout.strip()


def test_take_in_an_lv_read_it_over_iscsi_and_let_it_go_and_refuse_one_held_open(volctl, iscsid):
    legacy, held = "d2-legacy", "d2-held"  # made by hand, not by volctl
    sh("lvcreate", "-qq", "-y", "-n", legacy, "-L", "1g", VG)
    sh("lvcreate", "-qq", "-y", "-n", held, "-L", "64m", VG)
    taken_lv = None
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); print('held', flush=True); "
         "sys.stdin.read()", f"/dev/{VG}/{held}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        sha = write_lv(f"/dev/{VG}/{legacy}")
        assert holder.stdout.readline().strip() == "held"
        assert lv_attr(held)[5] == "o" and lv_attr(legacy)[5] == "-"

        listed = {e["reference"]["source-name"]: e for e in volctl.json("manageable")}
        assert (listed[legacy]["safe_to_manage"], listed[legacy]["reason_not_safe"], listed[legacy]["size"]) == (
            True, None, 1)
        assert (listed[held]["safe_to_manage"], listed[held]["reason_not_safe"]) == (False, "volume in use")

        db = volctl.env["VOLCTL_DB"]
        before = inventory_tables(db)
        refused = volctl("manage", "--source-name", held, expect=5)
        assert "in use" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert inventory_tables(db) == before  # no row, no history
        assert held in lv_names()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    try:
        vol = volctl.json("manage", "--source-name", legacy, "--name", "d2-taken")
        taken_lv = f"volume-{vol['id']}"
        assert (vol["status"], vol["size"], vol["lv_path"]) == ("available", 1, f"/dev/{VG}/{taken_lv}")
        assert taken_lv in lv_names() and legacy not in lv_names()

        info = volctl.json("connect", "d2-taken", "--initiator", INITIATOR_1)  # exported on the way
        iqn = info["data"]["target_iqn"]
        assert iqn == f"iqn.2010-10.org.openstack:{taken_lv}" and configfs_acls(iqn) == {INITIATOR_1}
        session = initiator.login(info["data"])
        try:
            device = session.device()
            assert initiator.block_size(device) == GIB
            assert read_sha256(device) == sha  # the former owner's bytes, over iSCSI
        finally:
            session.logout()
        volctl("disconnect", "d2-taken", "--initiator", INITIATOR_1)
        assert configfs_acls(iqn) == set() and (CONFIGFS / iqn).exists()

        gone = volctl.json("unmanage", "d2-taken")  # still exported: unmanage removes the export first
        assert (gone["id"], gone["lv"], gone["unmanaged"]) == (vol["id"], f"{VG}/{taken_lv}", True)
        assert taken_lv in lv_names()
        assert not (CONFIGFS / iqn).exists() and saved_target(iqn) is None
        assert hashlib.sha256(lv_bytes(f"/dev/{VG}/{taken_lv}", OFFSET, LENGTH)).hexdigest() == sha

        listed = {e["reference"]["source-name"]: e for e in volctl.json("manageable")}
        assert (listed[taken_lv]["safe_to_manage"], listed[taken_lv]["reason_not_safe"]) == (True, None)
        report = volctl.json("doctor")  # exit 0
        assert report["clean"] is True and report["drift"] == [], report
        assert any(n.startswith(f"foreign: LV /dev/{VG}/{taken_lv} (let go by volctl unmanage)")
                   for n in report["notes"]), report["notes"]
    finally:
        for lv in (held, legacy, taken_lv):
            if lv and lv in lv_names():
                sh("lvremove", "-qq", "-f", f"{VG}/{lv}", check=False)
