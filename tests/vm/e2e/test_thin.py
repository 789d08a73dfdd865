"""lvm_type = "thin" on a real kernel: the pool made on first use at 95 % of the VG's free space,
a thin volume exported, logged in to, written, extended while exported and read again, then
detached and deleted. Runs after test_real_kernel.py (file order) and removes its pool, so the
VG is empty again for the tests after it."""

from __future__ import annotations

import hashlib
import uuid

from conftest import INITIATOR_1, VG, configfs_acls, lv_names, sh

import initiator

GIB = 1024**3
POOL = f"{VG}-pool"


def lv_report(name: str) -> dict:
    out = sh("lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|",
             "-o", "lv_name,lv_attr,lv_size,pool_lv", f"{VG}/{name}").stdout.strip()
    lv_name, attr, size, pool = out.split("|")
    return {"name": lv_name, "attr": attr, "size": int(size), "pool": pool}


def vg_free() -> int:
    return int(sh("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", VG).stdout)


def test_thin_volume_flow_with_extend_while_exported(volctl, tmp_path):
    config = tmp_path / "thin.toml"
    # In-process LIO: thin volumes export through the rtslib helper here, thick ones through
    # lioadm in the other modules; and no cinder-rtstool call (~3 s each in the guest) is paid.
    config.write_text(f'volume_group = "{VG}"\nlvm_type = "thin"\nvolume_clear = "zero"\ntarget_helper = "rtslib"\n')
    thin = ("--config", str(config))
    assert POOL not in lv_names()
    free_before = vg_free()

    vol = volctl.json(*thin, "create", "--size", "1", "--name", "thin1")
    lv = vol["lv_path"].rsplit("/", 1)[1]
    pool = lv_report(POOL)
    assert pool["attr"].startswith("t")
    assert pool["size"] == int(free_before * 0.95 / GIB) * GIB  # Cinder's 95 %, whole GiB
    thin_lv = lv_report(lv)
    assert (thin_lv["attr"][0], thin_lv["size"], thin_lv["pool"]) == ("V", GIB, POOL)

    assert volctl.json(*thin, "reserve", "thin1")["status"] == "attaching"
    iqn = volctl.json(*thin, "export", "thin1")["provider_location"].split()[1]
    info = volctl.json(*thin, "connect", "thin1", "--initiator", INITIATOR_1)
    assert configfs_acls(iqn) == {INITIATOR_1}
    instance = str(uuid.uuid4())
    assert volctl.json(*thin, "attach", "thin1", "--instance", instance)["status"] == "in-use"

    session = initiator.login(info["data"])
    try:
        device = session.device()
        assert initiator.block_size(device) == GIB
        initiator.write_and_read_back(device, vol["lv_path"])
    finally:
        session.logout()
    volctl(*thin, "disconnect", "thin1", "--initiator", INITIATOR_1)
    vol = volctl.json(*thin, "detach", "thin1")
    assert (vol["status"], vol["provider_location"]) == ("available", None)

    # extend needs 'available' (not attached), so a second thin volume is extended while exported
    # and logged in to: the initiator sees the new size after a rescan, the bytes are still there.
    grow = volctl.json(*thin, "create", "--size", "1", "--name", "thin2")
    info = volctl.json(*thin, "connect", "thin2", "--initiator", INITIATOR_1)
    session = initiator.login(info["data"])
    try:
        device = session.device()
        before = initiator.write_and_read_back(device, grow["lv_path"])
        assert volctl.json(*thin, "extend", "thin2", "--size", "2")["size"] == 2
        assert lv_report(grow["lv_path"].rsplit("/", 1)[1])["size"] == 2 * GIB
        session.rescan()
        assert initiator.block_size(device) == 2 * GIB
        with open(device, "rb", buffering=0) as f:
            f.seek(1024 * 1024)
            assert hashlib.sha256(f.read(4 * 1024 * 1024)).hexdigest() == before
    finally:
        session.logout()
    volctl(*thin, "disconnect", "thin2", "--initiator", INITIATOR_1)
    volctl(*thin, "unexport", "thin2")

    for name, volume in (("thin1", vol), ("thin2", grow)):
        volctl(*thin, "delete", name)
        assert f"volume-{volume['id']}" not in lv_names()
    assert POOL in lv_names()  # Cinder never removes the pool; volctl neither
    assert volctl.json(*thin, "doctor")["clean"] is True
    sh("lvremove", "-qq", "-f", f"{VG}/{POOL}")
