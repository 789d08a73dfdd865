"""The NVMe/TCP reboot test, boot 2 of 2, on the --disk boot 1 wrote (see nvme_reboot_boot1.py), on
the same backports kernel: nothing is live, nvmet not even loaded; the boot unit, installed as
README says, runs `volctl restore`, which loads nvmet; the same keys read the same bytes, no key
and a wrong key are still refused, and doctor is clean."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import NVMET, NVMET_SAVE_FILE, REPO, STEP_TIMEOUT, TOOLS, nvmet_attr
from guard import DISK_SERIAL, require_guest
from nvme_initiator import ConnectFailed, nvmet_tree
from reboot import NVME_SETTINGS, carry_over, install_unit, read_sha256, run_unit_restore, unit_volctl

import nvme_initiator
from volctl.nvmeof import dhchap_secret



@pytest.fixture(scope="module")
def facts(nvme_host) -> dict:
    require_guest("VMRUN_DISK", DISK_SERIAL)
    return carry_over("nvmet-config.json", NVMET_SAVE_FILE, NVME_SETTINGS)


def volctl(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    return unit_volctl(*args, expect=expect, timeout=STEP_TIMEOUT)


def test_boot2_nothing_is_live(facts):
    assert not NVMET.exists() or nvmet_tree()["subsystems"] == []


def test_boot2_the_unit_installed_as_readme_says_runs_volctl_restore(facts, nvme_host):
    install_unit(REPO, TOOLS)
    done = run_unit_restore(STEP_TIMEOUT)
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("restored")] == ["nr-1"]
    nqn = facts["info"]["data"]["nqn"]
    tree = nvmet_tree()
    assert (tree["subsystems"], tree["hosts"], tree["allowed"], tree["linked"]) == (
        [nqn], [nvme_host], [f"{nqn}<-{nvme_host}"], [f"1->{nqn}"])
    entry = NVMET / "hosts" / nvme_host
    assert (nvmet_attr(entry / "dhchap_key"), nvmet_attr(entry / "dhchap_ctrl_key")) == (
        facts["info"]["data"]["dhchap_secret"], facts["info"]["data"]["dhchap_ctrl_secret"])


def test_boot2_the_same_keys_read_the_same_bytes_no_key_and_a_wrong_key_refused(facts, nvme_host):
    data = facts["info"]["data"]
    controller = nvme_initiator.connect(data, facts["id"], hostnqn=nvme_host, secret=data["dhchap_secret"],
                                        ctrl_secret=data["dhchap_ctrl_secret"])
    try:
        assert read_sha256(controller.device()) == facts["sha256"], "other bytes after the reboot"
    finally:
        controller.disconnect()
    for keys in ({}, {"secret": dhchap_secret(), "ctrl_secret": data["dhchap_ctrl_secret"]}):
        with pytest.raises(ConnectFailed):
            nvme_initiator.connect(data, facts["id"], hostnqn=nvme_host, **keys)


def test_boot2_doctor_is_clean_and_history_says_what_restore_did(facts, nvme_host):
    report = json.loads(volctl("--json", "doctor").stdout)
    assert report["clean"] is True, report
    history = json.loads(volctl("--json", "history", "nr-1").stdout)
    notes = [e["detail"] for e in history if e["kind"] == "note" and e["action"] == "restore"]
    assert notes and "target nqn." in notes[-1] and f"ACL for {nvme_host}" in notes[-1], notes
    shown = json.loads(volctl("--json", "show", "nr-1").stdout)
    assert (shown["status"], shown["attach_status"], shown["protocol"]) == ("in-use", "attached", "nvmet_tcp")
