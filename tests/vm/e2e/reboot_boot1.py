"""The reboot test, boot 1 of 2 (scripts/test runs it last in the main e2e boot, then boots again
on the same --disk for reboot_boot2.py): three volumes, thick and thin, two exported and
connected, one attached, known bytes written through iSCSI logins; then the guest powers off
with everything still exported, as a storage host that loses power.

Not collected by `pytest tests/vm/e2e` (its name does not start with test_): it is only right
as the first half of a pair, named explicitly."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest
from conftest import CONFIGFS, INITIATOR_1, SAVE_FILE, TOOLS, Volctl, sh
from guard import DISK_SERIAL, require_guest
from reboot import DB, THIN_CONFIG, VG, save_database, state_dir, write_settings

import initiator

# udev makes the by-path link; under TCG on a loaded 2-core machine that took more than 20 s
LOGIN_WAIT = 120


@pytest.fixture(scope="module")
def rvolctl(timings, iscsid) -> Volctl:
    disk = require_guest("VMRUN_DISK", DISK_SERIAL)
    sh("pvcreate", "-qq", "-ff", "-y", disk)  # a fresh image: nothing of an earlier pair survives
    sh("vgcreate", "-qq", VG, disk)
    write_settings()
    env = {**os.environ, "VOLCTL_DB": str(DB), "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    env.pop("VOLCTL_CONFIG", None)  # volctl's default /etc/volctl/volctl.toml, as the boot unit reads it
    return Volctl(env, timings)


def test_boot1_export_connect_attach_write_then_power_off_without_cleaning_up(rvolctl):
    thick1 = rvolctl.json("create", "--size", "1", "--name", "r-thick1")
    rvolctl.json("create", "--size", "1", "--name", "r-thick2")  # never exported: restore leaves it be
    thin = rvolctl.json("--config", str(THIN_CONFIG), "create", "--size", "1", "--name", "r-thin")
    infos = {"r-thick1": rvolctl.json("connect", "r-thick1", "--initiator", INITIATOR_1),
             "r-thin": rvolctl.json("connect", "r-thin", "--initiator", INITIATOR_1)}
    rvolctl("reserve", "r-thick1")
    rvolctl("attach", "r-thick1", "--instance", str(uuid.uuid4()), "--initiator", INITIATOR_1)
    sha256 = {}
    for name, vol in (("r-thick1", thick1), ("r-thin", thin)):
        lun = CONFIGFS / infos[name]["data"]["target_iqn"] / "tpgt_1" / "lun" / "lun_0"
        assert lun.is_dir(), f"{name}: the target has no LUN 0"
        session = initiator.login(infos[name]["data"])
        try:
            sha256[name] = initiator.write_and_read_back(session.device(wait=LOGIN_WAIT), vol["lv_path"])
        finally:
            session.logout()  # the initiator's business; volctl's exports stay as they are
    # What a thin snapshot or clone carries: vgchange -aay at boot leaves such an LV inactive.
    sh("lvchange", "-qq", "-ky", f"{VG}/volume-{thin['id']}")
    assert rvolctl.json("doctor")["clean"] is True

    state = state_dir()
    save_database(DB, state / "volctl.db")
    shutil.copy2(SAVE_FILE, state / "saveconfig.json")
    (state / "facts.json").write_text(json.dumps({
        "save_file": str(SAVE_FILE), "infos": infos, "sha256": sha256,
        "ids": {"r-thick1": thick1["id"], "r-thin": thin["id"]},
    }))
    (state / "facts.json").chmod(0o600)  # the CHAP passwords, as in the inventory
    sh("sync")
