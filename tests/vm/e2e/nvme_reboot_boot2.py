"""The NVMe/TCP reboot test, boot 2 of 2, on the --disk boot 1 wrote (see nvme_reboot_boot1.py), on
the same backports kernel: nothing is live, nvmet not even loaded; the boot unit, installed as
README says, runs `volctl restore`, which loads nvmet; the same keys read the same bytes, no key
and a wrong key are still refused, and doctor is clean."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import NVMET, NVMET_SAVE_FILE, REPO, STEP_TIMEOUT, TOOLS, nvmet_attr, sh
from guard import DISK_SERIAL, require_guest
from nvme_initiator import ConnectFailed, nvmet_tree
from reboot import DB, NVME_SETTINGS, load_database, read_sha256, state_dir, write_settings

import nvme_initiator
from volctl.nvmeof import dhchap_secret

UNIT = Path("/etc/systemd/system/volctl-restore.service")
# systemd's PATH for services; the unit gets nothing else from the environment
UNIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore"}


@pytest.fixture(scope="module")
def facts(nvme_host) -> dict:
    require_guest("VMRUN_DISK", DISK_SERIAL)
    state = state_dir()
    found = json.loads((state / "facts.json").read_text())
    # the host's disks: the inventory and the saved nvmet config come back; everything else is new
    load_database(state / "volctl.db", DB)
    NVMET_SAVE_FILE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(state / "nvmet-config.json", NVMET_SAVE_FILE)
    write_settings(NVME_SETTINGS)
    return found


def volctl(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(["/usr/local/bin/volctl", *args], capture_output=True, text=True, env=UNIT_ENV,
                          timeout=STEP_TIMEOUT)
    assert done.returncode == expect, f"volctl {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}"
    return done


def test_boot2_nothing_is_live(facts):
    assert not NVMET.exists() or nvmet_tree()["subsystems"] == []


def test_boot2_the_unit_installed_as_readme_says_runs_volctl_restore(facts, nvme_host):
    # README: the venv's volctl and cinder-rtstool on systemd's PATH, then install + enable
    for tool in (REPO / ".venv" / "bin" / "volctl", TOOLS / "cinder-rtstool"):
        Path("/usr/local/bin", tool.name).symlink_to(tool)
    sh("install", "-m", "0644", str(REPO / "systemd" / UNIT.name), str(UNIT.parent) + "/")
    sh("systemctl", "enable", UNIT.name)  # offline: the guest's PID 1 is not systemd
    assert Path("/etc/systemd/system/multi-user.target.wants", UNIT.name).resolve() == UNIT
    [exec_start] = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    started = time.monotonic()
    done = subprocess.run(shlex.split(exec_start), capture_output=True, text=True, env=UNIT_ENV, timeout=STEP_TIMEOUT)
    seconds = time.monotonic() - started
    (state_dir() / "boot2-restore.json").write_text(json.dumps({"command": exec_start, "seconds": round(seconds, 2),
                                                                "exit": done.returncode, "stdout": done.stdout}))
    assert done.returncode == 0, done.stderr
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
