"""volctl against a real kernel: real LVM, real LIO through Cinder's cinder-rtstool, a real
open-iscsi login with the CHAP credentials volctl handed out, and os-brick as nova uses it.

The tests run in file order in one boot and share the first volume (`seed`), as an operator's
session would; each later test makes its own volumes."""

from __future__ import annotations

import json
import uuid

import pytest
from conftest import INITIATOR_1, INITIATOR_2, SAVE_FILE, brick, configfs_acls, lv_names, saved_target

import initiator
from reboot import read_sha256

GIB = 1024**3
seed: dict = {}


def test_seed_flow_create_reserve_export_connect_attach(volctl):
    vol = volctl.json("create", "--size", "1", "--name", "seed")
    assert vol["status"] == "available"
    assert f"volume-{vol['id']}" in lv_names()
    assert volctl.json("reserve", "seed")["status"] == "attaching"
    vol = volctl.json("export", "seed")
    iqn = f"iqn.2010-10.org.openstack:volume-{vol['id']}"
    assert vol["provider_location"] == f"127.0.0.1:3260,{iqn} {iqn} 0"
    assert volctl.rtstool("get-targets").split() == [iqn]
    again = volctl("export", "seed")  # idempotent: nothing changes, exit 0
    assert "already exported" in again.stderr

    connector = brick("connector", {})
    assert connector["initiator"] == INITIATOR_1
    info = volctl.json("connect", "seed", "--connector", "-", input=json.dumps(connector))
    data = info["data"]
    assert info["driver_volume_type"] == "iscsi"
    assert (data["target_iqn"], data["target_portal"], data["target_lun"]) == (iqn, "127.0.0.1:3260", 0)
    assert len(data["auth_username"]) == 20 and len(data["auth_password"]) == 16
    assert configfs_acls(iqn) == {INITIATOR_1}
    saved = saved_target(iqn)
    assert saved is not None, f"{iqn} not in {SAVE_FILE}"
    [acl] = saved["tpgs"][0]["node_acls"]
    assert (acl["node_wwn"], acl["chap_userid"]) == (INITIATOR_1, data["auth_username"])

    instance = str(uuid.uuid4())
    vol = volctl.json("attach", "seed", "--instance", instance, "--host", "Compute_1", "--mountpoint", "/dev/vdb")
    assert (vol["status"], vol["attach_status"]) == ("in-use", "attached")
    assert vol["attachments"][0]["attached_host"] == "compute-1"
    seed.update(vol=vol, info=info, iqn=iqn, instance=instance)


def test_chap_login_writes_and_reads_back_bytes():
    session = initiator.login(seed["info"]["data"])
    try:
        device = session.device()
        assert initiator.block_size(device) == 1 * GIB
        seed["sha256"] = initiator.write_and_read_back(device, seed["vol"]["lv_path"])
    finally:
        session.logout()


def test_wrong_chap_password_is_refused():
    with pytest.raises(initiator.LoginFailed) as refused:
        initiator.login(seed["info"]["data"], password="WrongPassword234")
    assert refused.value.returncode == initiator.AUTH_FAILURE


def test_initiator_that_never_connected_is_refused():
    """Right CHAP credentials, but an initiator name with no ACL: LIO refuses the login."""
    with pytest.raises(initiator.LoginFailed):
        initiator.login(seed["info"]["data"], iface="stranger")


def test_os_brick_connect_volume_takes_the_connection_info_unchanged():
    result = brick("connect", {"connection_info": seed["info"], "offset": 1024 * 1024, "length": 4 * 1024 * 1024})
    assert result["device"]["type"] == "block"
    assert result["size"] == 1 * GIB
    assert result["sha256"] == seed["sha256"]


def test_disconnect_detach_delete_leave_nothing(volctl):
    iqn, vol = seed["iqn"], seed["vol"]
    volctl("disconnect", "seed", "--initiator", INITIATOR_1)
    assert configfs_acls(iqn) == set()
    vol = volctl.json("detach", "seed")
    assert (vol["status"], vol["provider_location"]) == ("available", None)
    assert iqn not in volctl.rtstool("get-targets").split()
    volctl("--config", volctl.zero_config, "delete", "seed")
    assert f"volume-{seed['vol']['id']}" not in lv_names()
    assert saved_target(iqn) is None
    history = volctl.json("history", seed["vol"]["id"])
    password = seed["info"]["data"]["auth_password"]
    assert password not in json.dumps(history)
    assert history[-1]["to_status"] == "deleted"
    assert volctl.json("doctor")["clean"] is True


def test_delete_zeroed_the_data_before_lvremove(volctl):
    """The VG is empty again, so a new LV lands on the seed's extents: the bytes written over
    iSCSI must be gone (LVM itself wipes only the first 4 KiB of a new LV)."""
    vol = volctl.json("create", "--size", "1", "--name", "reuse")
    with open(vol["lv_path"], "rb", buffering=0) as lv:
        lv.seek(1024 * 1024)
        assert lv.read(4 * 1024 * 1024) == bytes(4 * 1024 * 1024)
    volctl("delete", "reuse")


def test_multiattach_two_initiators_share_one_target(volctl):
    vol = volctl.json("create", "--size", "1", "--name", "shared", "--multiattach")
    iqn = f"iqn.2010-10.org.openstack:volume-{vol['id']}"
    info_1 = volctl.json("connect", "shared", "--initiator", INITIATOR_1)
    info_2 = volctl.json("connect", "shared", "--initiator", INITIATOR_2)
    assert info_1["data"]["target_iqn"] == info_2["data"]["target_iqn"] == iqn
    assert configfs_acls(iqn) == {INITIATOR_1, INITIATOR_2}
    instance_a, instance_b = str(uuid.uuid4()), str(uuid.uuid4())
    volctl("reserve", "shared")
    volctl("attach", "shared", "--instance", instance_a, "--initiator", INITIATOR_1)
    volctl("reserve", "shared")
    vol = volctl.json("attach", "shared", "--instance", instance_b, "--initiator", INITIATOR_2)
    assert len(vol["attachments"]) == 2
    lv_path = vol["lv_path"]
    session_a = initiator.login(info_1["data"])
    session_b = initiator.login(info_2["data"], iface="second")
    try:
        assert initiator.block_size(session_a.device()) == initiator.block_size(session_b.device()) == GIB
        written = initiator.write_and_read_back(session_a.device(), lv_path)
    finally:
        session_a.logout()
    # nova's order: the first host's connection goes before its detach.
    volctl("disconnect", "shared", "--initiator", INITIATOR_1)
    vol = volctl.json("detach", "shared", "--instance", instance_a)
    assert vol["status"] == "in-use" and vol["provider_location"]
    assert configfs_acls(iqn) == {INITIATOR_2}
    with pytest.raises(initiator.LoginFailed):  # the first host's ACL is gone: right CHAP, no entry
        initiator.login(info_1["data"])
    session_b.rescan()  # the other host's session is untouched and reads what the first wrote
    assert initiator.block_size(session_b.device()) == GIB
    assert read_sha256(session_b.device()) == written
    session_b.logout()
    volctl("disconnect", "shared", "--initiator", INITIATOR_2)
    vol = volctl.json("detach", "shared")
    assert vol["status"] == "available"
    assert iqn not in volctl.rtstool("get-targets").split()
    volctl("delete", "shared")
    assert f"volume-{vol['id']}" not in lv_names()


def test_extend_is_seen_by_the_initiator_after_a_rescan(volctl):
    vol = volctl.json("create", "--size", "1", "--name", "grow")
    info = volctl.json("connect", "grow", "--initiator", INITIATOR_1)
    session = initiator.login(info["data"])
    try:
        assert initiator.block_size(session.device()) == 1 * GIB
        assert volctl.json("extend", "grow", "--size", "2")["size"] == 2
        session.rescan()
        assert initiator.block_size(session.device()) == 2 * GIB
    finally:
        session.logout()
    volctl("disconnect", "grow", "--initiator", INITIATOR_1)
    volctl("unexport", "grow")
    volctl("delete", "grow")
    assert f"volume-{vol['id']}" not in lv_names()


def test_doctor_sees_and_repairs_a_target_removed_behind_its_back(volctl):
    volctl.json("create", "--size", "1", "--name", "drift")
    info = volctl.json("connect", "drift", "--initiator", INITIATOR_1)
    iqn = info["data"]["target_iqn"]
    volctl.rtstool("delete", iqn)
    report = json.loads(volctl("--json", "doctor", expect=5).stdout)
    assert {d["kind"] for d in report["drift"]} >= {"target_missing", "saved_config"}
    repaired = json.loads(volctl("--json", "doctor", "--repair").stdout)
    assert repaired["clean"] is True
    assert iqn in volctl.rtstool("get-targets").split()
    assert configfs_acls(iqn) == {INITIATOR_1}
    session = initiator.login(info["data"])  # the same credentials work again
    session.logout()
    volctl("disconnect", "drift", "--initiator", INITIATOR_1)
    volctl("unexport", "drift")
    volctl("delete", "drift")
    assert volctl.json("doctor")["clean"] is True
