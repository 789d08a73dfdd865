"""The reboot test, boot 2 of 2, on the --disk boot 1 wrote (see reboot_boot1.py): nothing is
live; the boot unit, installed as README says, runs `volctl restore`; the same CHAP credentials
read the same bytes, a wrong password is still refused, and doctor is clean."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CONFIGFS, REPO, STEP_TIMEOUT, TOOLS, sh
from guard import DISK_SERIAL, require_guest
from reboot import DB, VG, load_database, read_sha256, state_dir, write_settings

import initiator

# udev makes the by-path link; under TCG on a loaded 2-core machine that took more than 20 s
LOGIN_WAIT = 120

UNIT = Path("/etc/systemd/system/volctl-restore.service")
# systemd's PATH for services; the unit gets nothing else from the environment
UNIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def facts(iscsid) -> dict:
    require_guest("VMRUN_DISK", DISK_SERIAL)
    state = state_dir()
    found = json.loads((state / "facts.json").read_text())
    # the host's disks: the inventory and the saved LIO config come back; everything else is new
    load_database(state / "volctl.db", DB)
    Path(found["save_file"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(state / "saveconfig.json", found["save_file"])
    write_settings()
    return found


def volctl(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(["/usr/local/bin/volctl", *args], capture_output=True, text=True, env=UNIT_ENV,
                          timeout=STEP_TIMEOUT)
    assert done.returncode == expect, f"volctl {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}"
    return done


def test_boot2_nothing_is_live_and_the_thin_lv_is_left_inactive(facts):
    assert not list(CONFIGFS.glob("iqn.*"))
    attrs = dict(line.split() for line in sh("lvs", "--noheadings", "-o", "lv_name,lv_attr", VG).stdout.splitlines())
    thin = attrs[f"volume-{facts['ids']['r-thin']}"]
    assert thin[9] == "k" and thin[4] != "a", attrs  # activation skip: nothing at boot activates it


def test_boot2_the_unit_installed_as_readme_says_runs_volctl_restore(facts):
    # README: the venv's volctl and cinder-rtstool on systemd's PATH, then install + enable
    for tool in (REPO / ".venv" / "bin" / "volctl", TOOLS / "cinder-rtstool"):
        Path("/usr/local/bin", tool.name).symlink_to(tool)
    sh("install", "-m", "0644", str(REPO / "systemd" / UNIT.name), str(UNIT.parent) + "/")
    sh("systemctl", "enable", UNIT.name)  # offline: the guest's PID 1 is not systemd
    assert Path("/etc/systemd/system/multi-user.target.wants", UNIT.name).resolve() == UNIT
    verify = sh("systemd-analyze", "verify", str(UNIT), check=False)
    assert verify.returncode == 0 and UNIT.name not in verify.stdout + verify.stderr, verify.stderr
    [exec_start] = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    started = time.monotonic()
    done = subprocess.run(shlex.split(exec_start), capture_output=True, text=True, env=UNIT_ENV, timeout=STEP_TIMEOUT)
    seconds = time.monotonic() - started
    (state_dir() / "boot2-restore.json").write_text(json.dumps({"command": exec_start, "seconds": round(seconds, 2),
                                                                "exit": done.returncode, "stdout": done.stdout}))
    assert done.returncode == 0, done.stderr
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
