"""Exports survive what Debian's LIO unit does on every upgrade of python3-rtslib-fb (`targetctl
clear`, then `targetctl restore` of Debian's file), and `volctl restore` brings back what a clear
alone took away: twice changes nothing, and a missing LV fails only its own volume.

Debian's python3-rtslib-fb and targetcli-fb are installed on the host (tests/vm/setup-host.sh), so
the guest sees Debian's targetctl, unit file and /etc/rtslib-fb-target, as a storage host has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CONFIGFS, DEBIAN_UNIT, INITIATOR_1, INITIATOR_2, SAVE_FILE, configfs_acls, lv_names, saved_target, sh

import initiator

# udev makes the by-path link; under TCG on a loaded 2-core machine that took more than 20 s
LOGIN_WAIT = 120

TARGETCTL = "/usr/bin/targetctl"  # Debian's, with Debian's rtslib: what rtslib-fb-targetctl.service runs
NAMES = ("trap1", "trap2", "trap3")
made: dict = {}


def live_targets() -> set[str]:
    return {p.name for p in CONFIGFS.glob("iqn.*")} if CONFIGFS.is_dir() else set()


def lio_snapshot() -> dict:
    """Every live target with its ACLs and their CHAP user ids, read from configfs."""
    found = {}
    for iqn in sorted(live_targets()):
        acls = CONFIGFS / iqn / "tpgt_1" / "acls"
        found[iqn] = {a.name: (a / "auth" / "userid").read_text().strip() for a in sorted(acls.iterdir())}
    return found


def login_works(info: dict) -> None:
    session = initiator.login(info["data"])
    try:
        assert initiator.block_size(session.device(wait=LOGIN_WAIT)) == 1024**3
    finally:
        session.logout()


def test_the_host_is_debian_like_and_volctl_saves_where_its_unit_restores(volctl):
    assert DEBIAN_UNIT.exists() and Path(TARGETCTL).exists(), "tests/vm/setup-host.sh installs python3-rtslib-fb"
    assert SAVE_FILE == Path("/etc/rtslib-fb-target/saveconfig.json")
    for name in NAMES:
        made[name] = volctl.json("create", "--size", "1", "--name", name)
    made["info1"] = volctl.json("connect", "trap1", "--initiator", INITIATOR_1)
    made["info2"] = volctl.json("connect", "trap2", "--initiator", INITIATOR_2)
    volctl.json("connect", "trap2", "--initiator", INITIATOR_1)
    volctl("export", "trap3")
    made["iqns"] = {name: f"iqn.2010-10.org.openstack:volume-{made[name]['id']}" for name in NAMES}
    for name in NAMES:
        assert saved_target(made["iqns"][name]) is not None, f"{name} not in {SAVE_FILE}"
    report = volctl.json("doctor")
    assert report["clean"] is True, report


def test_upgrade_trap_targetctl_clear_then_restore_brings_every_export_back(volctl):
    before = lio_snapshot()
    assert set(before) == set(made["iqns"].values())
    sh(TARGETCTL, "clear")
    assert live_targets() == set()
    sh(TARGETCTL, "restore")  # no volctl command: Debian's unit restores the file volctl saved to
    assert lio_snapshot() == before
    assert configfs_acls(made["iqns"]["trap2"]) == {INITIATOR_1, INITIATOR_2}
    login_works(made["info1"])
    assert volctl.json("doctor")["clean"] is True


def test_targetctl_clear_alone_then_volctl_restore(volctl):
    before = lio_snapshot()
    sh(TARGETCTL, "clear")
    assert live_targets() == set()
    report = volctl.json("restore")
    assert sorted(report["restored"]) == sorted(NAMES) and report["failed"] == [] and report["saved"] is True
    assert lio_snapshot() == before
    login_works(made["info1"])
    with pytest.raises(initiator.LoginFailed) as refused:
        initiator.login(made["info1"]["data"], password="WrongPassword234")
    assert refused.value.returncode == initiator.AUTH_FAILURE
    assert volctl.json("doctor")["clean"] is True


def test_restore_twice_changes_nothing_the_second_time(volctl):
    before, saved_bytes = lio_snapshot(), SAVE_FILE.read_bytes()
    events = {name: len(volctl.json("history", name)) for name in NAMES}
    report = volctl.json("restore")
    assert report["restored"] == [] and sorted(report["present"]) == sorted(NAMES) and report["saved"] is False
    assert lio_snapshot() == before
    assert SAVE_FILE.read_bytes() == saved_bytes
    # no command and no note filed against any volume: nothing was done to it
    assert {name: len(volctl.json("history", name)) for name in NAMES} == events


def test_restore_with_one_lv_missing_restores_the_others_and_exits_6_naming_it(volctl):
    gone = made["trap3"]
    volctl.rtstool("delete", made["iqns"]["trap3"])  # the target holds the LV open
    sh("lvremove", "-qq", "-f", f"{gone['lv_path']}")
    assert f"volume-{gone['id']}" not in lv_names()
    sh(TARGETCTL, "clear")
    done = volctl("--json", "restore", expect=6)
    report = json.loads(done.stdout)
    assert sorted(report["restored"]) == ["trap1", "trap2"]
    assert [f["volume"] for f in report["failed"]] == ["trap3"] and "missing" in report["failed"][0]["error"]
    assert live_targets() == {made["iqns"]["trap1"], made["iqns"]["trap2"]}
    login_works(made["info1"])
    human = volctl("restore", "trap3", expect=6)
    assert "trap3" in human.stdout and "missing" in human.stdout


def test_cleanup_leaves_nothing(volctl):
    for name in NAMES:
        volctl("delete", name)  # removes the export with its ACLs, then the LV
    assert live_targets() == set()
    assert volctl.json("doctor")["clean"] is True
