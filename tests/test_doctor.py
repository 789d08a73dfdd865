"""`volctl doctor` against every kind of drift the README's "Crashes" paragraph names, made behind
volctl's back on the FakeHost or in the inventory: doctor must report exactly that drift (exit 5),
`doctor --repair` must do exactly what the README promises (re-create missing exports and ACLs,
record what a killed export/connect left, save the LIO config, delete only orphaned targets WITHOUT
ACLs, never remove an LV, never take away an ACL, move stuck volumes on) and nothing else, and a
second doctor must be clean or report exactly what is left to the operator.

tests/test_crash.py makes drift by killing real processes; here each kind is made on its own, so
one test names one promise.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, was_volctls
from volctl import iscsi
from volctl.locks import Locks
from volctl.lvm import GIB

VG = "cinder-volumes"
PREFIX = "iqn.2010-10.org.openstack:"
ORPHAN = "0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f"  # a volume the inventory no longer has (was_volctls) or never had
ORPHAN_LV = f"volume-{ORPHAN}"
ORPHAN_IQN = PREFIX + ORPHAN_LV
HOUR_AGO = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="microseconds")


# -- helpers -------------------------------------------------------------------------------------

def on_host(host, *argv: str) -> None:
    """A change made behind volctl's back, with the real tool's own command line."""
    host.run(list(argv))


def lv(volume) -> str:
    return f"{VG}/{volume.lv_name}"


def iqn(volume) -> str:
    return PREFIX + volume.lv_name


def set_row(db_path: Path, volume_id: str, **fields) -> None:
    """The inventory changed as a killed volctl leaves it (no history row, updated_at as given)."""
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute(f"UPDATE volumes SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                         [*fields.values(), volume_id])
    finally:
        conn.close()


def inventory_dump(db_path: Path) -> dict:
    """Every record table but the history (doctor files notes there)."""
    conn = sqlite3.connect(db_path)
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for t in ("volumes", "attachments", "connections")}
    finally:
        conn.close()


def host_state(host) -> dict:
    return json.loads(json.dumps(host.to_state()))


def found(result) -> list[tuple]:
    return sorted((d["kind"], d["volume_name"], d["subject"]) for d in result.json()["drift"])


def doctor(volctl, *args: str):
    result = volctl("doctor", "--json", *args)
    assert result.exit_code in (0, 5), result
    document = result.json()
    assert set(document) == {"clean", "drift", "notes", "pools"}
    assert document["clean"] is (result.exit_code == 0), result
    return result


def assert_clean(volctl, *args: str) -> None:
    result = doctor(volctl, *args)
    assert (result.exit_code, result.json()["drift"]) == (0, []), result


def exported(service, name: str = "v1", *initiators: str, **create):
    service.create(size=1, name=name, **create)
    if initiators:
        for initiator in initiators:
            service.connect(name, {"initiator": initiator})
    else:
        service.export(name)
    return service.show(name)


def block_device(host, name: str) -> str:
    """An LV that is not named like a volctl volume, to back a target made behind volctl's back."""
    host.add_lv(VG, name, 1)
    return f"/dev/{VG}/{name}"


def orphan_target(host, *initiators: str) -> None:
    """A target named like a volctl volume's that the inventory does not know (a lost or restored
    inventory, or a target made by hand with volctl's prefix)."""
    on_host(host, "cinder-rtstool", "create", block_device(host, "scratch-0"), ORPHAN_IQN, "orphanuser",
            "orphanpassword16", "False", "-p3260", "-a127.0.0.1")
    for initiator in initiators:
        on_host(host, "cinder-rtstool", "add-initiator", ORPHAN_IQN, "orphanuser", "orphanpassword16", initiator)
    on_host(host, "cinder-rtstool", "save")


def assert_left_to_operator(volctl, host, db_path, expected: list[tuple]) -> None:
    """doctor reports `expected`; --repair changes nothing on the host or in the inventory and
    still reports it (not repaired, no error); a second doctor reports it again."""
    before_host, before_inv = host_state(host), inventory_dump(db_path)
    seen = doctor(volctl)
    assert (seen.exit_code, found(seen)) == (5, expected), seen
    assert all(d["repair"] is None for d in seen.json()["drift"]), seen
    repaired = doctor(volctl, "--repair")
    assert (repaired.exit_code, found(repaired)) == (5, expected), repaired
    assert all(not d["repaired"] and d["error"] is None for d in repaired.json()["drift"]), repaired
    assert host_state(host) == before_host
    assert inventory_dump(db_path) == before_inv
    again = doctor(volctl)
    assert (again.exit_code, found(again)) == (5, expected), again


def repair_all(volctl, expected: list[tuple]) -> None:
    """doctor reports exactly `expected`, each with a repair; --repair does them all (exit 0)."""
    seen = doctor(volctl)
    assert (seen.exit_code, found(seen)) == (5, expected), seen
    assert all(d["repair"] for d in seen.json()["drift"]), seen
    repaired = doctor(volctl, "--repair")
    assert repaired.exit_code == 0, repaired
    assert found(repaired) == expected
    assert all(d["repaired"] and d["error"] is None for d in repaired.json()["drift"]), repaired


# -- a clean host -------------------------------------------------------------------------------

def test_a_host_that_agrees_is_clean(volctl, service, host, db_path):
    exported(service, "v1", INITIATOR_1)
    service.create(size=2, name="v2")
    host.add_lv(VG, "not-a-volctl-lv", 1)  # another user's LV: not volctl's name template
    host.add_lv(VG, "volume-not-a-uuid", 1)
    before_host, before_inv = host_state(host), inventory_dump(db_path)
    assert_clean(volctl)
    assert_clean(volctl, "--repair")
    assert (host_state(host), inventory_dump(db_path)) == (before_host, before_inv)


# -- LVs: reported, never removed or resized --------------------------------------------------

def test_orphaned_lv_is_reported_and_never_removed(volctl, service, host, db_path):
    service.create(size=1, name="v1")
    was_volctls(service, ORPHAN)
    host.add_lv(VG, ORPHAN_LV, 2)  # the LV of a volume the inventory had
    host.add_lv(VG, "not-a-volctl-lv", 1)
    assert_left_to_operator(volctl, host, db_path, [("lv_orphaned", None, f"/dev/{VG}/{ORPHAN_LV}")])
    assert (VG, ORPHAN_LV) in host.lvs
    assert f"lvremove {VG}/{ORPHAN_LV}" in doctor(volctl).json()["drift"][0]["detail"]


def test_missing_lv_of_a_recorded_volume_is_reported(volctl, service, host, db_path):
    volume = service.create(size=1, name="v1").volume
    on_host(host, "lvremove", "--config", "activation { retry_deactivation = 1} ", "-f", lv(volume))
    assert_left_to_operator(volctl, host, db_path, [("lv_missing", "v1", volume.lv_path)])
    drift = doctor(volctl).json()["drift"][0]
    assert drift["volume_id"] == volume.id


@pytest.mark.parametrize("status", ["error", "error_deleting"])
def test_missing_lv_is_expected_after_a_failed_create_or_delete(volctl, service, host, db_path, status):
    volume = service.create(size=1, name="v1").volume
    on_host(host, "lvremove", "--config", "activation { retry_deactivation = 1} ", "-f", lv(volume))
    set_row(db_path, volume.id, status=status)
    assert_clean(volctl)


def test_an_lv_larger_than_recorded_is_an_extend_that_outran_its_record_and_is_recorded(volctl, service, host):
    """A power cut after lvextend can lose the extend's claim and settle: the LV is larger by whole
    GiB. --repair records the LV's size, as it does for a volume stuck extending."""
    volume = service.create(size=1, name="v1").volume
    on_host(host, "lvextend", "-L", "3g", lv(volume))
    seen = doctor(volctl)
    assert (seen.exit_code, found(seen)) == (5, [("lv_size", "v1", volume.lv_path)])
    assert seen.json()["drift"][0]["repair"] == "record 3 GiB"
    repaired = doctor(volctl, "--repair")
    assert repaired.exit_code == 0 and repaired.json()["drift"][0]["repaired"] is True
    assert service.show("v1").size == 3 and host.lvs[(VG, volume.lv_name)]["size"] == 3 * GIB
    assert "an extend whose record was lost" in service.history("v1")[-1].detail
    assert doctor(volctl).exit_code == 0


def test_an_lv_smaller_than_recorded_is_left_to_the_operator(volctl, service, host, db_path):
    volume = service.create(size=3, name="v1").volume
    host.lvs[(VG, volume.lv_name)]["size"] = 2 * GIB  # volctl never shrinks: not its doing
    assert_left_to_operator(volctl, host, db_path, [("lv_size", "v1", volume.lv_path)])
    assert service.show("v1").size == 3


# -- orphaned targets: deleted only when nobody can log in ------------------------------------

def test_orphaned_target_without_acl_is_deleted(volctl, service, host, db_path):
    v1 = exported(service, "v1", INITIATOR_1)  # a recorded target with an ACL, which must stay
    was_volctls(service, ORPHAN)
    orphan_target(host)
    before_inv = inventory_dump(db_path)
    before = host_state(host)
    repair_all(volctl, [("target_orphaned", None, ORPHAN_IQN)])
    assert ORPHAN_IQN not in host.targets
    assert set(host.saved) == {iqn(v1)}  # and the LIO config was saved without it
    after = host_state(host)
    del before["targets"][ORPHAN_IQN], before["saved"][ORPHAN_IQN]
    assert after == before  # nothing else on the host changed
    assert inventory_dump(db_path) == before_inv
    assert_clean(volctl)


def test_orphaned_target_with_an_acl_is_left_with_its_acl(volctl, service, host, db_path):
    exported(service, "v1", INITIATOR_1)
    was_volctls(service, ORPHAN)
    orphan_target(host, INITIATOR_2)
    assert_left_to_operator(volctl, host, db_path, [("target_orphaned", None, ORPHAN_IQN)])
    assert set(host.targets[ORPHAN_IQN].acls) == {INITIATOR_2}
    assert INITIATOR_2 in doctor(volctl).json()["drift"][0]["detail"]


def test_repair_deletes_only_the_orphan_without_acl(volctl, service, host, db_path):
    """Both kinds side by side: one --repair, one target gone, the one an initiator may use kept."""
    service.create(size=1, name="v1")
    orphan_target(host, INITIATOR_2)
    bare = ORPHAN_IQN.replace(ORPHAN[:8], "1" * 8)
    was_volctls(service, ORPHAN, "1" * 8 + ORPHAN[8:])
    on_host(host, "cinder-rtstool", "create", block_device(host, "scratch-1"), bare, "orphanuser", "orphanpassword16",
            "False", "-p3260", "-a127.0.0.1")
    on_host(host, "cinder-rtstool", "save")
    seen = doctor(volctl)
    assert found(seen) == sorted([("target_orphaned", None, ORPHAN_IQN), ("target_orphaned", None, bare)])
    repaired = doctor(volctl, "--repair")
    assert repaired.exit_code == 5
    assert {d["subject"]: d["repaired"] for d in repaired.json()["drift"]} == {ORPHAN_IQN: False, bare: True}
    assert set(host.targets) == set(host.saved) == {ORPHAN_IQN}
    assert set(host.targets[ORPHAN_IQN].acls) == {INITIATOR_2}
    assert found(doctor(volctl)) == [("target_orphaned", None, ORPHAN_IQN)]


def test_targets_without_volctls_prefix_or_template_are_not_orphans(volctl, service, host):
    service.create(size=1, name="v1")
    for n, other in enumerate(("iqn.2003-01.org.linux-iscsi.host:sn.1234", PREFIX + "volume-not-a-uuid")):
        on_host(host, "cinder-rtstool", "create", block_device(host, f"scratch-{n}"), other, "orphanuser",
                "orphanpassword16", "False", "-p3260", "-a127.0.0.1")
    on_host(host, "cinder-rtstool", "save")
    assert_clean(volctl, "--repair")
    assert len(host.targets) == 2 and (VG, service.show("v1").lv_name) in host.lvs


# -- exports and ACLs of recorded volumes ------------------------------------------------------

def test_missing_target_of_a_recorded_export_is_recreated_with_its_acls(volctl, service, host, db_path):
    v1 = exported(service, "v1", INITIATOR_1, INITIATOR_2)
    chap = iscsi.parse_provider_auth(v1.provider_auth)
    on_host(host, "cinder-rtstool", "delete", iqn(v1))  # e.g. lost with a LIO restart, saved so
    on_host(host, "cinder-rtstool", "save")
    before_inv = inventory_dump(db_path)
    repair_all(volctl, [("target_missing", "v1", iqn(v1))])
    target = host.targets[iqn(v1)]
    assert target.device == v1.lv_path
    assert target.acls == {INITIATOR_1: (chap.username, chap.password), INITIATOR_2: (chap.username, chap.password)}
    assert set(host.saved[iqn(v1)].acls) == {INITIATOR_1, INITIATOR_2}
    after = inventory_dump(db_path)
    for table in ("attachments", "connections"):
        assert after[table] == before_inv[table]
    v1_after = service.show("v1")
    assert (v1_after.provider_location, v1_after.provider_auth) == (v1.provider_location, v1.provider_auth)
    assert_clean(volctl)


def test_missing_target_of_a_volume_that_cannot_be_exported_is_left_to_the_operator(volctl, service, host, db_path):
    v1 = exported(service, "v1")
    on_host(host, "cinder-rtstool", "delete", iqn(v1))
    on_host(host, "cinder-rtstool", "save")
    set_row(db_path, v1.id, status="error_deleting")  # a delete cut after its target went
    assert_left_to_operator(volctl, host, db_path, [("target_missing", "v1", iqn(v1))])
    assert "volctl delete v1" in doctor(volctl).json()["drift"][0]["detail"]


def test_target_a_killed_export_left_is_recorded(volctl, service, host, db_path):
    v1 = exported(service, "v1")
    set_row(db_path, v1.id, provider_location=None)  # killed after create/save, before its inventory write
    before_host = host_state(host)
    repair_all(volctl, [("target_unrecorded", "v1", iqn(v1))])
    assert service.show("v1").provider_location == v1.provider_location
    assert host_state(host) == before_host
    assert_clean(volctl)


def test_acl_a_killed_connect_left_is_recorded_and_kept(volctl, service, host, db_path):
    v1 = exported(service, "v1", INITIATOR_1)
    chap = iscsi.parse_provider_auth(v1.provider_auth)
    on_host(host, "cinder-rtstool", "add-initiator", iqn(v1), chap.username, chap.password, INITIATOR_2)
    on_host(host, "cinder-rtstool", "save")
    before_host = host_state(host)
    repair_all(volctl, [("acl_unrecorded", "v1", INITIATOR_2)])
    assert sorted(c.initiator for c in service.show("v1").connections) == sorted([INITIATOR_1, INITIATOR_2])
    assert host_state(host) == before_host  # the ACL stays: an initiator may be logged in with it
    assert_clean(volctl)


def test_missing_acl_of_a_recorded_connection_is_added_again(volctl, service, host, db_path):
    v1 = exported(service, "v1", INITIATOR_1, INITIATOR_2)
    chap = iscsi.parse_provider_auth(v1.provider_auth)
    on_host(host, "cinder-rtstool", "delete-initiator", iqn(v1), INITIATOR_2)
    on_host(host, "cinder-rtstool", "save")
    before_inv = inventory_dump(db_path)
    repair_all(volctl, [("acl_missing", "v1", INITIATOR_2)])
    assert host.targets[iqn(v1)].acls == {INITIATOR_1: (chap.username, chap.password),
                                          INITIATOR_2: (chap.username, chap.password)}
    assert set(host.saved[iqn(v1)].acls) == {INITIATOR_1, INITIATOR_2}
    assert inventory_dump(db_path) == before_inv
    assert_clean(volctl)


# -- the saved LIO config -----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["stale", "missing", "unreadable"])
def test_saved_lio_config_that_would_not_bring_the_targets_back(volctl, service, host, db_path, save_file, how):
    v1 = exported(service, "v1")
    if how == "stale":  # saved before the ACL was added, as a connect killed before its save leaves it
        stale = save_file.read_text()
        service.connect("v1", {"initiator": INITIATOR_1})
        save_file.write_text(stale)
    elif how == "missing":
        save_file.unlink()
    else:
        save_file.write_text("{not json")
    before_inv, before_targets = inventory_dump(db_path), host_state(host)["targets"]
    repair_all(volctl, [("saved_config", None, str(save_file))])
    saved = json.loads(save_file.read_text())
    assert {t["wwn"]: sorted(a["node_wwn"] for a in t["tpgs"][0]["node_acls"]) for t in saved["targets"]} == \
        {iqn(v1): sorted(c.initiator for c in service.show("v1").connections)}
    assert (inventory_dump(db_path), host_state(host)["targets"]) == (before_inv, before_targets)
    assert_clean(volctl)


# -- volumes stuck in a transitional state ------------------------------------------------------

def _stuck_creating(service, host, db_path):
    volume = service.create(size=1, name="v1").volume
    on_host(host, "lvremove", "--config", "activation { retry_deactivation = 1} ", "-f", lv(volume))  # killed before lvcreate
    set_row(db_path, volume.id, status="creating")
    return "v1"


def _stuck_attaching(service, host, db_path):
    service.create(size=1, name="v1")
    service.reserve("v1")  # and nova never came back
    return "v1"


def _stuck_attaching_with_an_attachment(service, host, db_path):
    service.create(size=1, name="v1", multiattach=True)
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.attach("v1", instance=INSTANCE_1, host="compute1")
    service.reserve("v1")  # a second attach that never came
    return "v1"


def _stuck_detaching(service, host, db_path):
    service.create(size=1, name="v1")
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.attach("v1", instance=INSTANCE_1, host="compute1")
    set_row(db_path, service.show("v1").id, status="detaching")  # killed before removing the export
    return "v1"


def _stuck_deleting(service, host, db_path):
    set_row(db_path, service.create(size=1, name="v1").volume.id, status="deleting")  # killed before dd
    return "v1"


def _stuck_extending_after_lvextend(service, host, db_path):
    volume = service.create(size=1, name="v1").volume
    on_host(host, "lvextend", "-L", "3g", lv(volume))
    set_row(db_path, volume.id, status="extending", previous_status="available")
    return "v1"


def _stuck_extending_before_lvextend(service, host, db_path):
    set_row(db_path, service.create(size=1, name="v1").volume.id, status="extending", previous_status="available")
    return "v1"


# setup, the stuck status, and (status, attach_status, size, live attachments) after the repair
STUCK = {
    "creating": (_stuck_creating, "creating", ("error", "detached", 1, 0)),
    "attaching": (_stuck_attaching, "attaching", ("available", "detached", 1, 0)),
    "attaching-attached": (_stuck_attaching_with_an_attachment, "attaching", ("in-use", "attached", 1, 1)),
    "detaching": (_stuck_detaching, "detaching", ("in-use", "attached", 1, 1)),
    "deleting": (_stuck_deleting, "deleting", ("error_deleting", "detached", 1, 0)),
    "extending-after": (_stuck_extending_after_lvextend, "extending", ("available", "detached", 3, 0)),
    "extending-before": (_stuck_extending_before_lvextend, "extending", ("available", "detached", 1, 0)),
}


@pytest.mark.parametrize("case", list(STUCK))
def test_stuck_volume_moves_on_as_cinders_restart_cleanup(volctl, service, host, db_path, case):
    setup, status, (settled, attach_status, size, live) = STUCK[case]
    name = setup(service, host, db_path)
    volume = service.show(name)
    assert volume.status == status
    assert_clean(volctl)  # just now: an operation may still be under way
    set_row(db_path, volume.id, updated_at=HOUR_AGO)
    assert_clean(volctl, "--stale-after", "7200")
    before_host = host_state(host)
    for args in ((), ("--stale-after", "60")):  # the default (300 s) and a given one
        seen = doctor(volctl, *args)
        assert (seen.exit_code, found(seen)) == (5, [("stuck", name, status)]), seen
        assert seen.json()["drift"][0]["volume_id"] == volume.id
    repair_all(volctl, [("stuck", name, status)])
    after = service.show(name)
    assert (after.status, after.attach_status, after.size, len(after.live_attachments)) == (settled, attach_status, size, live)
    last = [e for e in service.history(name) if e.kind == "transition"][-1]
    assert (last.action, last.from_status, last.to_status) == ("doctor", status, settled)
    assert host_state(host) == before_host  # the LV is never removed, nothing on the host changes
    assert_clean(volctl, "--stale-after", "0")


def test_volume_whose_lock_is_held_is_in_progress_not_stuck(volctl, service, host, db_path):
    name = _stuck_deleting(service, host, db_path)
    volume = service.show(name)
    set_row(db_path, volume.id, updated_at=HOUR_AGO)
    other = Locks(Path(f"{db_path}.locks"))  # another volctl's hold (flock: its own open file)
    with other.volume(volume.id).held():
        for args in ((), ("--repair",)):
            seen = doctor(volctl, "--stale-after", "0", *args)
            assert (seen.exit_code, seen.json()["drift"]) == (0, []), seen
            assert any(name in n and "in progress" in n for n in seen.json()["notes"]), seen
        assert service.show(name).status == "deleting"
    seen = doctor(volctl, "--stale-after", "0")
    assert found(seen) == [("stuck", name, "deleting")]


def test_a_stuck_volume_is_reported_with_other_drift_of_others(volctl, service, host, db_path):
    """Findings do not hide each other: one of each on different volumes, in one report."""
    stuck = service.create(size=1, name="stuck").volume
    service.reserve("stuck")
    set_row(db_path, stuck.id, updated_at=HOUR_AGO)
    sized = service.create(size=1, name="sized").volume
    on_host(host, "lvextend", "-L", "2g", lv(sized))
    v3 = exported(service, "v3", INITIATOR_1)
    on_host(host, "cinder-rtstool", "delete-initiator", iqn(v3), INITIATOR_1)
    on_host(host, "cinder-rtstool", "save")
    host.add_lv(VG, ORPHAN_LV, 1)
    was_volctls(service, ORPHAN)
    seen = doctor(volctl)
    assert found(seen) == sorted([("stuck", "stuck", "attaching"), ("lv_size", "sized", sized.lv_path),
                                  ("acl_missing", "v3", INITIATOR_1), ("lv_orphaned", None, f"/dev/{VG}/{ORPHAN_LV}")])
    repaired = doctor(volctl, "--repair")
    assert {d["kind"] for d in repaired.json()["drift"] if not d["repaired"]} == {"lv_orphaned"}
    assert found(doctor(volctl)) == [("lv_orphaned", None, f"/dev/{VG}/{ORPHAN_LV}")]
    assert service.show("sized").size == 2


def test_doctor_without_any_inventory_calls_what_it_finds_foreign(volctl, host, db_path):
    """No inventory, so no history: nothing on the host is known to be volctl's (it may be
    Cinder's), so a target named like volctl's is a foreign note, never drift or a repair. A
    read-only doctor makes the lock directory it needs for the LIO lock, private, and creates no
    inventory."""
    orphan_target(host)
    assert not db_path.parent.exists()
    seen = doctor(volctl, "--repair")
    assert (seen.exit_code, found(seen)) == (0, [])
    assert any(n.startswith(f"foreign: target {ORPHAN_IQN}") for n in seen.json()["notes"])
    assert ORPHAN_IQN in host.targets
    assert not db_path.exists()
    locks = Path(f"{db_path}.locks")
    assert locks.is_dir() and (locks.stat().st_mode & 0o777) == 0o700
    assert (db_path.parent.stat().st_mode & 0o777) == 0o700


def _booted(host_root, when) -> None:
    """The fake host's kernel boot time (/proc/stat's btime)."""
    (host_root / "proc").mkdir(exist_ok=True)
    (host_root / "proc" / "stat").write_text(f"cpu  1 2 3 4\nbtime {int(when.timestamp())}\nprocesses 9\n")


@pytest.mark.parametrize("case", ["creating", "detaching", "deleting", "extending-after"])
def test_a_busy_status_set_before_the_host_booted_is_stuck_at_once(volctl, service, host, db_path, host_root, case):
    """A power cut: the process that set it died with the host, so no age needs to pass."""
    setup, status, (settled, attach_status, size, live) = STUCK[case]
    name = setup(service, host, db_path)
    volume = service.show(name)
    _booted(host_root, datetime.now(timezone.utc) - timedelta(seconds=30))
    assert_clean(volctl)  # set after this boot, just now: an operation may still be under way
    set_row(db_path, volume.id, updated_at=(datetime.now(timezone.utc) - timedelta(seconds=60)).isoformat())
    seen = doctor(volctl)
    assert (seen.exit_code, found(seen)) == (5, [("stuck", name, status)]), seen
    assert "before the host booted" in seen.json()["drift"][0]["detail"]
    repair_all(volctl, [("stuck", name, status)])
    after = service.show(name)
    assert (after.status, after.attach_status, after.size, len(after.live_attachments)) == (settled, attach_status, size, live)


def test_a_reservation_made_before_the_host_booted_waits_its_age(volctl, service, host, db_path, host_root):
    """attaching is nova's reservation waiting for its attach, across the storage host's reboot too."""
    name = _stuck_attaching(service, host, db_path)
    _booted(host_root, datetime.now(timezone.utc) - timedelta(seconds=30))
    set_row(db_path, service.show(name).id, updated_at=(datetime.now(timezone.utc) - timedelta(seconds=60)).isoformat())
    assert_clean(volctl)
    assert found(doctor(volctl, "--stale-after", "30")) == [("stuck", name, "attaching")]


def test_a_snapshot_busy_since_before_the_boot_is_stuck_at_once(volctl, service, host, db_path, host_root):
    service.create(size=1, name="v1")
    snapshot = service.snapshot_create("v1", name="s1").snapshot
    _booted(host_root, datetime.now(timezone.utc) - timedelta(seconds=30))
    conn = sqlite3.connect(db_path)
    with conn:  # killed before its lvremove, as the host lost power
        conn.execute("UPDATE snapshots SET status = 'deleting', updated_at = ? WHERE id = ?",
                     [(datetime.now(timezone.utc) - timedelta(seconds=60)).isoformat(), snapshot.id])
    conn.close()
    assert found(doctor(volctl)) == [("snapshot_stuck", "s1", "deleting")]
