"""The reboot test, boot 2 of 2, on the --disk boot 1 wrote (see reboot_boot1.py): nothing is
live; the boot unit, installed as README says, runs `volctl restore`; the same CHAP credentials
read the same bytes, a wrong password is still refused, and doctor is clean."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import CONFIGFS, REPO, STEP_TIMEOUT, TOOLS, sh
from guard import DISK_SERIAL, require_guest
from reboot import UNIT, VG, carry_over, install_unit, read_sha256, run_unit_restore, unit_volctl

import initiator

# udev makes the by-path link; under TCG on a loaded 2-core machine that took more than 20 s
LOGIN_WAIT = 120



@pytest.fixture(scope="module")
def facts(iscsid) -> dict:
    require_guest("VMRUN_DISK", DISK_SERIAL)
    return carry_over("saveconfig.json")


def volctl(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    return unit_volctl(*args, expect=expect, timeout=STEP_TIMEOUT)


def test_boot2_nothing_is_live_and_the_thin_lv_is_left_inactive(facts):
    assert not list(CONFIGFS.glob("iqn.*"))
    attrs = dict(line.split() for line in sh("lvs", "--noheadings", "-o", "lv_name,lv_attr", VG).stdout.splitlines())
    thin = attrs[f"volume-{facts['ids']['r-thin']}"]
    assert thin[9] == "k" and thin[4] != "a", attrs  # activation skip: nothing at boot activates it


def test_boot2_the_unit_installed_as_readme_says_runs_volctl_restore(facts):
    install_unit(REPO, TOOLS)
    verify = sh("systemd-analyze", "verify", str(UNIT), check=False)
    assert verify.returncode == 0 and UNIT.name not in verify.stdout + verify.stderr, verify.stderr
    done = run_unit_restore(STEP_TIMEOUT)
    assert sorted(line.split()[1] for line in done.stdout.splitlines() if line.startswith("restored")) == ["r-thick1", "r-thin"]
    assert {p.name for p in CONFIGFS.glob("iqn.*")} == {info["data"]["target_iqn"] for info in facts["infos"].values()}


def test_boot2_same_chap_same_bytes_wrong_password_refused(facts):
    for name, info in facts["infos"].items():
        session = initiator.login(info["data"])
        try:
            assert read_sha256(session.device(wait=LOGIN_WAIT)) == facts["sha256"][name], f"{name}: other bytes after the reboot"
        finally:
            session.logout()
        with pytest.raises(initiator.LoginFailed) as refused:
            initiator.login(info["data"], password="WrongPassword234")
        assert refused.value.returncode == initiator.AUTH_FAILURE


def test_boot2_doctor_is_clean_and_history_says_what_restore_did(facts):
    report = json.loads(volctl("--json", "doctor").stdout)
    assert report["clean"] is True, report
    history = json.loads(volctl("--json", "history", "r-thin").stdout)
    notes = [e["detail"] for e in history if e["kind"] == "note" and e["action"] == "restore"]
    assert notes and "activated LV" in notes[-1] and "ACL for" in notes[-1], notes
    shown = json.loads(volctl("--json", "show", "r-thick1").stdout)
    assert (shown["status"], shown["attach_status"]) == ("in-use", "attached")
