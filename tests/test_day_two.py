"""Day two on the fake host (LVM and LIO through their command lines): extend of an in-use or
exported volume, taking existing LVs in (manageable, manage), letting volumes go (unmanage), and
doctor's line between volctl's objects and foreign ones (Cinder's, after a hand-off)."""

from __future__ import annotations

import json

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, inventory_tables, lio_of

from volctl.doctor import Doctor
from volctl.errors import AlreadyExists, InvalidState, NotFound, UsageError, VolctlError
from volctl.iscsi import Chap
from volctl.lvm import GIB

VG = "cinder-volumes"
UUID = "0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f"


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def in_use(service, name="v1", initiators=(INITIATOR_1,)):
    service.create(size=1, name=name)
    service.reserve(name)
    for initiator in initiators:
        service.connect(name, {"initiator": initiator})
    service.attach(name, instance=INSTANCE_1, initiator=initiators[0])
    return service.show(name)


# -- extend while in use ------------------------------------------------------------------------


def test_extend_of_an_in_use_volume_grows_the_lv_under_its_export_and_goes_back_to_in_use(service, host):
    volume = in_use(service, initiators=(INITIATOR_1, INITIATOR_2))
    iqn = lio_of(service).target_name(volume)
    host.calls.clear()
    done = service.extend("v1", 2)
    assert [c[0] for c in host.calls] == ["vgs", "lvextend"]  # the admission's vgs; nothing asked of LIO: its block backstore reads the size live
    assert (done.volume.status, done.volume.attach_status, done.volume.size) == ("in-use", "attached", 2)
    assert host.lvs[(VG, volume.lv_name)]["size"] == 2 * GIB and iqn in host.targets
    assert done.data["rescans"] == [{"host": INITIATOR_1, "run": f"iscsiadm -m node -T {iqn} -R"},
                                    {"host": INITIATOR_2, "run": f"iscsiadm -m node -T {iqn} -R"}]
    moves = [(e.from_status, e.to_status) for e in service.history("v1") if e.action == "extend" and e.kind == "transition"]
    assert moves == [("in-use", "extending"), ("extending", "in-use")]


def test_extend_of_an_exported_available_volume_stays_available(service, host):
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    done = service.extend("v1", 3)
    assert (done.volume.status, done.volume.size, done.volume.provider_location is not None) == ("available", 3, True)


def test_a_failed_extend_of_an_in_use_volume_is_error_extending_as_cinders(service, host):
    in_use(service)
    host.fail(["lvextend"], stderr="  Insufficient free space: 256 extents needed, but only 10 available\n")
    with pytest.raises(VolctlError) as failed:
        service.extend("v1", 50)
    assert failed.value.exit_code == 6
    assert (service.show("v1").status, service.show("v1").size) == ("error_extending", 1)


def test_extend_in_use_through_the_cli_says_what_each_host_runs(volctl, service):
    in_use(service)
    iqn = lio_of(service).target_name(service.show("v1"))
    person = ok(volctl("extend", "v1", "--size", "2"))
    assert f"{INITIATOR_1}: iscsiadm -m node -T {iqn} -R" in person.stdout and "extended v1 to 2 GiB" in person.stderr
    doc = ok(volctl("extend", "v1", "--size", "3", "--json")).json()
    assert (doc["size"], doc["status"], doc["rescans"][0]["host"]) == (3, "in-use", INITIATOR_1)


def test_a_thick_origin_with_snapshots_stays_refused_while_exported_with_the_reason(service, host):
    in_use(service)
    service.snapshot_create("v1", name="s1", force=True)
    host.calls.clear()
    with pytest.raises(InvalidState, match="only while inactive"):
        service.extend("v1", 2)
    assert service.show("v1").status == "in-use" and "lvextend" not in [c[0] for c in host.calls]


def test_a_killed_extend_of_an_in_use_volume_is_settled_back_to_in_use_with_the_lvs_size(service, host, db_path):
    import sqlite3

    volume = in_use(service)
    host.lvs[(VG, volume.lv_name)]["size"] = 2 * GIB  # lvextend ran, then the process died
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE volumes SET status = 'extending', previous_status = 'in-use', "
                 "updated_at = '2020-01-01T00:00:00+00:00' WHERE id = ?", [volume.id])
    conn.commit()
    conn.close()
    report = Doctor(service, stale_after=0).repair(Doctor(service, stale_after=0).examine())
    assert report.clean, report
    assert (service.show("v1").status, service.show("v1").attach_status, service.show("v1").size) == ("in-use", "attached", 2)


# -- manageable ----------------------------------------------------------------------------------


def test_manageable_lists_every_lv_with_cinders_fields_and_why_it_is_not_safe(service, host):
    managed = service.create(size=1, name="v1").volume
    service.snapshot_create("v1", name="s1")
    host.add_lv(VG, "legacy-db", 1)
    host.lvs[(VG, "legacy-db")]["size"] = GIB + 4 * 1024 * 1024  # rounded up: 2 GiB
    host.add_lv(VG, "busy", 1, attr="-wi-ao----")  # held open by someone else
    host.add_lv(VG, f"clone-snap-{UUID}", 1, attr="swi-a-s---")
    host.add_lv(VG, "cinder-volumes-pool", 5, attr="twi-a-tz--")
    entries = {e["reference"]["source-name"]: e for e in service.manageable()}
    assert entries["legacy-db"] == {"reference": {"source-name": "legacy-db"}, "size": 2, "safe_to_manage": True,
                                    "reason_not_safe": None, "cinder_id": None, "extra_info": None}
    reasons = {name: (e["safe_to_manage"], e["reason_not_safe"], e["cinder_id"]) for name, e in entries.items()}
    assert reasons[managed.lv_name] == (False, "already managed", managed.id)
    assert reasons["busy"] == (False, "volume in use", None)
    assert reasons[service.snapshot_show("s1").lv_name] == (False, "a snapshot", None)
    assert reasons[f"clone-snap-{UUID}"][1] in ("a snapshot", "a temporary clone snapshot")
    assert reasons["cinder-volumes-pool"] == (False, "the thin pool", None)
    assert list(entries) == sorted(entries)
    assert [c for c in host.calls if c[0] == "lvs"] and all(c[0] in ("lvs", "vgs", "lvcreate") for c in host.calls)


def test_an_lv_another_tools_live_export_holds_is_in_use(service, host):
    host.add_lv(VG, "legacy-db", 1)
    lio_of(service).create(f"/dev/{VG}/legacy-db", "iqn.2003-01.org.example:legacy", Chap("olduser", "oldpassword12345"),
                           iser=False, ips=["127.0.0.1"], port=3260)
    assert {e["reference"]["source-name"]: e["reason_not_safe"] for e in service.manageable()}["legacy-db"] == "volume in use"
    with pytest.raises(VolctlError, match="volume in use") as refused:
        service.manage("legacy-db")
    assert refused.value.exit_code == 5 and (VG, "legacy-db") in host.lvs


# -- manage --------------------------------------------------------------------------------------


def test_manage_renames_the_lv_to_a_new_id_and_records_where_it_came_from(service, host, volctl):
    host.add_lv(VG, "legacy-db", 1)
    host.lvs[(VG, "legacy-db")]["size"] = GIB + 1
    doc = ok(volctl("manage", "--source-name", "legacy-db", "--name", "db1", "--json")).json()
    assert (doc["name"], doc["size"], doc["status"], doc["multiattach"]) == ("db1", 2, "available", False)
    new_lv = f"volume-{doc['id']}"
    assert ["lvrename", VG, "legacy-db", new_lv] in host.calls
    assert (VG, new_lv) in host.lvs and (VG, "legacy-db") not in host.lvs
    history = service.history("db1")
    assert [(e.from_status, e.to_status) for e in history if e.kind == "transition"] == [(None, "managing"),
                                                                                        ("managing", "available")]
    assert any("legacy-db" in (e.detail or "") for e in history)
    service.connect("db1", {"initiator": INITIATOR_1})  # a volume like any other from now on
    assert Doctor(service).examine().clean


@pytest.mark.parametrize("setup, source, error, code", [
    (lambda s, h: None, "nosuch", NotFound, 3),
    (lambda s, h: h.add_lv(VG, "busy", 1, attr="-wi-ao----"), "busy", VolctlError, 5),
    (lambda s, h: h.add_lv(VG, "cinder-volumes-pool", 5, attr="twi-a-tz--"), "cinder-volumes-pool", VolctlError, 5),
    (lambda s, h: s.create(size=1, name="v1"), None, AlreadyExists, 4),
])
def test_manage_refuses_with_nothing_changed(service, host, db_path, setup, source, error, code):
    setup(service, host)
    source = source or service.show("v1").lv_name
    service.inventory()
    before, lvs = inventory_tables(db_path), dict(host.lvs)
    with pytest.raises(error) as refused:
        service.manage(source)
    assert refused.value.exit_code == code
    assert inventory_tables(db_path) == before and host.lvs == lvs
    assert not [c for c in host.calls if c[0] == "lvrename"]


@pytest.mark.parametrize("args", [("--source-name", "a b"), ("--source-name", "vg/lv"), ("--source-name", "legacy", "--name", "has space"),
                                  ("--source-name", "legacy", "--name", UUID)])
def test_manage_bad_input_is_exit_2_before_anything(volctl, host, args):
    host.add_lv(VG, "legacy", 1)
    refused = volctl("manage", *args)
    assert refused.exit_code == 2 and "\n" not in refused.stderr.strip()
    assert host.calls == []


def test_a_failed_rename_is_error_managing_in_history(service, host):
    host.add_lv(VG, "legacy", 1)
    host.fail(["lvrename"], stderr="  device-mapper: rename ioctl failed: Device or resource busy\n")
    with pytest.raises(VolctlError) as failed:
        service.manage("legacy", name="db1")
    assert failed.value.exit_code == 6
    volume = service.show("db1")
    assert volume.status == "error_managing" and (VG, "legacy") in host.lvs
    assert "rename ioctl failed" in service.history("db1")[-1].detail
    service.unmanage("db1")  # an error_managing volume can be let go again
    assert {e["reference"]["source-name"]: e["safe_to_manage"] for e in service.manageable()}["legacy"] is True


# -- unmanage ------------------------------------------------------------------------------------


def test_unmanage_removes_and_saves_the_export_then_forgets_the_volume_keeping_lv_and_history(service, host, volctl):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    iqn = lio_of(service).target_name(service.show("v1"))
    doc = ok(volctl("unmanage", "v1", "--json")).json()
    assert doc == {"id": volume.id, "name": "v1", "lv": f"{VG}/{volume.lv_name}", "unmanaged": True,
                   "cinder_manage": f"cinder manage --name v1 <host@backend#pool> {volume.lv_name}"}
    assert iqn not in host.targets and iqn not in host.saved  # gone, and saved gone
    assert (VG, volume.lv_name) in host.lvs
    assert ok(volctl("list", "--json")).json() == []
    assert [e.to_status for e in service.history("v1") if e.kind == "transition"][-2:] == ["unmanaging", "unmanaged"]
    # volctl let it go: not its orphan, and takeable again
    report = Doctor(service).examine()
    assert report.clean and any("let go by volctl unmanage" in n for n in report.notes)
    assert {e["reference"]["source-name"]: e["safe_to_manage"] for e in service.manageable()}[volume.lv_name] is True


@pytest.mark.parametrize("setup, why", [
    (lambda s: in_use(s), "'in-use'"),
    (lambda s: (s.create(size=1, name="v1"), s.snapshot_create("v1", name="s1")), "snapshots"),
    (lambda s: (s.create(size=1, name="v1"), s.reset_state("v1", status="maintenance")), "'maintenance'"),
])
def test_unmanage_refused_attached_with_snapshots_or_busy_with_nothing_changed(service, host, db_path, setup, why):
    setup(service)
    before = inventory_tables(db_path)
    with pytest.raises(InvalidState, match=why):
        service.unmanage("v1")
    assert inventory_tables(db_path) == before


def test_unmanage_whose_export_removal_fails_rolls_back(service, host):
    service.create(size=1, name="v1")
    service.export("v1")
    host.fail(["cinder-rtstool", "delete"], stderr="simulated")
    with pytest.raises(VolctlError):
        service.unmanage("v1")
    volume = service.show("v1")
    assert volume.status == "available" and volume.provider_location
    assert "rolled back" in service.history("v1")[-1].detail


# -- sharing the host with Cinder ----------------------------------------------------------------


def test_what_volctl_never_had_is_foreign_never_drift_never_repaired(service, host, volctl):
    service.create(size=1, name="v1")
    cinders = f"volume-{UUID}"  # Cinder names its LVs and targets as volctl does
    host.add_lv(VG, cinders, 1)
    iqn = "iqn.2010-10.org.openstack:" + cinders
    lio = lio_of(service)
    lio.create(f"/dev/{VG}/{cinders}", iqn, lio.chap(service.export("v1").volume), iser=False, ips=["127.0.0.1"],
               port=3260)  # Cinder's create_export before its initialize_connection: no ACL yet
    lio.save()
    report = ok(volctl("doctor", "--repair", "--json")).json()
    assert report["clean"] is True and report["drift"] == []
    assert {n.split(" (")[0] for n in report["notes"] if n.startswith("foreign")} == {
        f"foreign: LV /dev/{VG}/{cinders}", f"foreign: target {iqn}"}
    assert iqn in host.targets and (VG, cinders) in host.lvs  # untouched


def _volctls_export_beside_a_live_cinder_target(service, host):
    """volctl's v1 connected, and a target Cinder's create_export made on an LV of its own (saved
    by Cinder to its own file, so not to volctl's): the LIO helper and Cinder's IQN."""
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    cinders = f"volume-{UUID}"
    host.add_lv(VG, cinders, 1)
    iqn = "iqn.2010-10.org.openstack:" + cinders
    lio = lio_of(service)
    lio.create(f"/dev/{VG}/{cinders}", iqn, Chap("u" * 20, "p" * 16), iser=False, ips=["127.0.0.1"], port=3260)
    return lio, iqn

def test_a_foreign_target_cinder_saved_elsewhere_is_no_saved_config_drift_and_stays_out_of_volctls_save(
        service, host, volctl):
    """Cinder's cinder-rtstool saves to rtslib's default file, not to the one volctl saves to (the
    host's restore unit's): its live target missing from volctl's saved config is not volctl's
    drift, and doctor --repair does not write it there (found by tests/vm/e2e/test_cinder_handoff.py)."""
    lio, iqn = _volctls_export_beside_a_live_cinder_target(service, host)
    lio.add_initiator(iqn, Chap("u" * 20, "p" * 16), INITIATOR_2)  # Cinder's initialize_connection; no save of volctl's
    saved_before = dict(host.saved)
    report = ok(volctl("doctor", "--repair", "--json")).json()
    assert report["clean"] is True and report["drift"] == [], report
    assert f"foreign: target {iqn}" in {n.split(" (")[0] for n in report["notes"]}
    assert iqn in host.targets and iqn not in host.saved and host.saved == saved_before
    # volctl's own target still counts: an ACL added behind its back and not saved is drift
    lio.add_initiator(lio.target_name(service.show("v1")), Chap("u" * 20, "p" * 16), INITIATOR_2)
    report = volctl("doctor", "--json").json()
    saved_config = [d for d in report["drift"] if d["kind"] == "saved_config"]
    assert len(saved_config) == 1 and iqn not in json.dumps(saved_config), report


def test_restore_beside_a_foreign_target_cinder_saved_elsewhere_makes_no_whole_save(service, host, volctl):
    """restore decides whether to save volctl's whole LIO config from what is unsaved: a live
    Cinder target that Cinder saved to its own file is not volctl's to save."""
    _, iqn = _volctls_export_beside_a_live_cinder_target(service, host)
    saved_before = dict(host.saved)
    report = ok(volctl("restore", "--json")).json()
    assert iqn not in host.saved and host.saved == saved_before
    assert report["saved"] is False, report


def test_a_bad_source_name_never_reaches_lvm(service, host):
    with pytest.raises(UsageError):
        service.manage("bad name")
    assert host.calls == []
