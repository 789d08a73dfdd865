"""The NVMe/TCP reboot test on the backports kernel (6.12), boot 1 of 2 (scripts/test runs it last
in the 6.12 guest's boot, after test_nvme_auth.py, then boots that kernel again on the same --disk
for nvme_reboot_boot2.py): a volume exported over NVMe/TCP, connected with DH-HMAC-CHAP keys and
attached, known bytes written through an authenticated `nvme connect`; then the guest powers off
with everything still exported, as a storage host that loses power.

Not collected by `pytest tests/vm/e2e` (its name does not start with test_): it is only right
as the first half of a pair, named explicitly."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest
from conftest import NVMET, NVMET_SAVE_FILE, TOOLS, Volctl, nvmet_attr, sh
from guard import DISK_SERIAL, require_guest
from reboot import DB, NVME_SETTINGS, VG, save_database, state_dir, write_settings

import initiator
import nvme_initiator


@pytest.fixture(scope="module")
def rvolctl(timings, nvme_host) -> Volctl:
    disk = require_guest("VMRUN_DISK", DISK_SERIAL)
    sh("pvcreate", "-qq", "-ff", "-y", disk)  # a fresh image: nothing of an earlier pair survives
    sh("vgcreate", "-qq", VG, disk)
    write_settings(NVME_SETTINGS)
    env = {**os.environ, "VOLCTL_DB": str(DB), "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    env.pop("VOLCTL_CONFIG", None)  # volctl's default /etc/volctl/volctl.toml, as the boot unit reads it
    return Volctl(env, timings)


def test_boot1_connect_with_keys_attach_write_then_power_off_without_cleaning_up(rvolctl, nvme_host):
    vol = rvolctl.json("create", "--size", "1", "--name", "nr-1")
    rvolctl("reserve", "nr-1")
    info = rvolctl.json("connect", "nr-1", "--initiator", nvme_host)
    data = info["data"]
    assert data["auth_method"] == "DH-HMAC-CHAP", "no keys: is this the backports kernel (6.12)?"
    rvolctl("attach", "nr-1", "--instance", str(uuid.uuid4()), "--initiator", nvme_host)
    assert nvmet_attr(NVMET / "hosts" / nvme_host / "dhchap_key") == data["dhchap_secret"]
    controller = nvme_initiator.connect(data, vol["id"], hostnqn=nvme_host, secret=data["dhchap_secret"],
                                        ctrl_secret=data["dhchap_ctrl_secret"])
    try:
        sha256 = initiator.write_and_read_back(controller.device(), vol["lv_path"])
    finally:
        controller.disconnect()  # the initiator's business; volctl's export stays as it is
    assert rvolctl.json("doctor")["clean"] is True

    state = state_dir()
    save_database(DB, state / "volctl.db")
    shutil.copy2(NVMET_SAVE_FILE, state / "nvmet-config.json")
    (state / "facts.json").write_text(json.dumps({"info": info, "sha256": sha256, "id": vol["id"]}))
    (state / "facts.json").chmod(0o600)  # the DH-HMAC-CHAP keys, as in the inventory
    sh("sync")
