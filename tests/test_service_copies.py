"""Volumes made from snapshots, clones and revert on VolumeService against the FakeHost: Cinder's
exact command lines (thick and thin), that the bytes really move (the fake's per-LV content
token), and what each failed step leaves behind. Snapshot create/delete: test_service_snapshots.py."""

from __future__ import annotations

import pytest
from conftest import ADMIT_THICK, ADMIT_THIN, INITIATOR_1, INSTANCE_1, was_volctls

from volctl.config import Settings
from volctl.errors import CommandFailed, EnvironmentProblem, InvalidState, NotFound, UsageError
from volctl.lvm import GIB

VG = "cinder-volumes"
SNAP_ID = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
NEW_ID = "3c9e7a51-5b2d-4f6e-8a1b-2d4c6e8f0a12"
SNAP_LV, NEW_LV, TEMP_LV = f"_snapshot-{SNAP_ID}", f"volume-{NEW_ID}", f"clone-snap-{NEW_ID}"
REMOVE_CONFIG = "activation { retry_deactivation = 1} "
LVS = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv"]
ACTIVATE = ["lvchange", "-a", "y", "--yes"]


def dm(name: str) -> str:
    return f"/dev/mapper/{VG.replace('-', '--')}-{name.replace('-', '--')}"


def copy(source: str, dest: str, gib: int) -> list[str]:
    return ["dd", f"if={dm(source)}", f"of={dm(dest)}", f"count={gib * GIB}", "bs=1M", "iflag=count_bytes,direct",
            "oflag=direct", "status=progress"]


def transitions(service, ref) -> list[tuple]:
    return [(e.action, e.from_status, e.to_status) for e in service.history(ref) if e.kind == "transition"]


def content(host, lv_name: str) -> str:
    return host.lvs[(VG, lv_name)].get("content", "")


@pytest.fixture
def thin(make_service):
    return make_service(settings=Settings(lvm_udev="on", lvm_type="thin"))


def snapshotted(service, host, size=1):
    """v1 holding 'before' when s1 was taken, and 'after' since."""
    volume = service.create(size=size, name="v1").volume
    host.lvs[(VG, volume.lv_name)]["content"] = "before"
    service.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)
    host.lvs[(VG, volume.lv_name)]["content"] = "after"
    host.calls.clear()
    return volume


# -- create --snapshot -----------------------------------------------------------------------


def test_volume_from_a_thick_snapshot_is_a_new_lv_and_a_copy_of_the_snapshots_size(service, host):
    snapshotted(service, host)
    new = service.create(snapshot="s1", name="n1", size=2, volume_id=NEW_ID).volume
    assert host.calls == [ADMIT_THICK, [*LVS, f"{VG}/{SNAP_LV}"], ["lvcreate", "-n", NEW_LV, VG, "-L", "2g"],
                          [*ACTIVATE, "-K", f"{VG}/{SNAP_LV}"], copy(SNAP_LV, NEW_LV, 1)]
    assert (new.status, new.size) == ("available", 2)
    assert content(host, NEW_LV) == "before"  # the snapshot's bytes, not the volume's since
    assert transitions(service, "n1") == [("create", None, "creating"), ("create", "creating", "available")]
    assert "from snapshot s1" in service.history("n1")[0].detail
    assert service.snapshot_show("s1").status == "available"


def test_volume_from_a_thin_snapshot_is_a_thin_snapshot_of_it_that_comes_up_at_boot(thin, host):
    snapshotted(thin, host, size=2)
    new = thin.create(snapshot="s1", name="n1", size=3, volume_id=NEW_ID).volume
    assert host.calls == [ADMIT_THIN, [*LVS, f"{VG}/{SNAP_LV}"], ["lvcreate", "--name", NEW_LV, "--snapshot", f"{VG}/{SNAP_LV}"],
                          ["lvextend", "-L", "3g", f"{VG}/{NEW_LV}"], [*ACTIVATE, "-K", f"{VG}/{SNAP_LV}"],
                          [*ACTIVATE, "-k", "n", f"{VG}/{NEW_LV}"]]
    assert new.size == 3 and host.lvs[(VG, NEW_LV)]["size"] == 3 * GIB
    assert host.lvs[(VG, NEW_LV)]["attr"] == "Vwi-a-tz--" and content(host, NEW_LV) == "before"


def test_volume_from_a_snapshot_is_the_snapshots_size_unless_asked_and_never_smaller(thin, host):
    snapshotted(thin, host, size=2)
    assert thin.create(snapshot="s1", name="n1").volume.size == 2
    assert not any(c[0] == "lvextend" for c in host.calls)  # same size: no extend
    host.calls.clear()
    with pytest.raises(UsageError) as e:
        thin.create(snapshot="s1", name="n2", size=1)
    assert e.value.exit_code == 2 and "smaller than snapshot s1 (2 GiB)" in str(e.value)
    assert host.calls == [] and [v.name for v in thin.list()] == ["v1", "n1"]


THICK_STEPS = [["lvs"], ["lvcreate", "-n"], ACTIVATE, ["dd"]]
THIN_STEPS = [["lvcreate", "--name"], ["lvextend"], [*ACTIVATE, "-K"], [*ACTIVATE, "-k"]]


@pytest.mark.parametrize("kind, step", [("thick", s) for s in THICK_STEPS] + [("thin", s) for s in THIN_STEPS])
def test_volume_from_a_snapshot_whose_step_fails_is_error_and_says_why(service, thin, host, kind, step):
    svc = thin if kind == "thin" else service
    snapshotted(svc, host)
    host.fail(step, stderr="  simulated failure of this step\n")
    with pytest.raises(CommandFailed) as e:
        svc.create(snapshot="s1", name="n1", size=2, volume_id=NEW_ID)
    assert e.value.exit_code == 6 and e.value.argv[:len(step)] == step
    assert svc.show("n1").status == "error" and svc.snapshot_show("s1").status == "available"
    last = svc.history("n1")[-1]
    assert (last.action, last.from_status, last.to_status) == ("create", "creating", "error")
    assert "simulated failure of this step" in last.detail and " ".join(step) in last.detail


def test_volume_from_a_snapshot_not_available_or_without_its_lv(service, host):
    snapshotted(service, host)
    inv = service.inventory()
    with inv.write():
        inv.update_snapshot(SNAP_ID, status="error")
    with pytest.raises(InvalidState) as e:
        service.create(snapshot="s1", name="n1")
    assert e.value.exit_code == 5 and str(e.value).startswith("snapshot s1 is 'error'; create --snapshot needs 'available'")
    assert [v.name for v in service.list()] == ["v1"] and host.calls == []
    with inv.write():
        inv.update_snapshot(SNAP_ID, status="available")
    del host.lvs[(VG, SNAP_LV)]
    with pytest.raises(EnvironmentProblem):
        service.create(snapshot="s1", name="n1")
    assert service.show("n1").status == "error"
    with pytest.raises(NotFound):
        service.create(snapshot="nosuch", name="n2")


# -- create --source-volume ------------------------------------------------------------------


def test_thin_clone_is_a_thin_snapshot_of_the_source(thin, host):
    source = thin.create(size=1, name="v1").volume
    host.lvs[(VG, source.lv_name)]["content"] = "source"
    host.calls.clear()
    new = thin.create(source_volume="v1", name="c1", size=2, volume_id=NEW_ID).volume
    assert host.calls == [ADMIT_THIN, [*LVS, f"{VG}/{source.lv_name}"],
                          ["lvcreate", "--name", NEW_LV, "--snapshot", f"{VG}/{source.lv_name}"],
                          ["lvextend", "-L", "2g", f"{VG}/{NEW_LV}"], [*ACTIVATE, "-k", "n", f"{VG}/{NEW_LV}"]]
    assert new.status == "available" and content(host, NEW_LV) == "source"
    assert host.lvs[(VG, NEW_LV)]["attr"] == "Vwi-a-tz--"


@pytest.mark.parametrize("kind, step", [("thin", LVS), ("thin", ["lvcreate", "--name"]), ("thin", ["lvextend"]),
                                        ("thin", ACTIVATE), ("thick", LVS), ("thick", ["dd", "if=/dev/zero"])])
def test_clone_whose_step_fails_is_error_and_says_why(service, thin, host, kind, step):
    svc = thin if kind == "thin" else service
    svc.create(size=1, name="v1")
    host.fail(step, stderr="  simulated failure of this step\n")
    with pytest.raises(CommandFailed) as e:
        svc.create(source_volume="v1", name="c1", size=2, volume_id=NEW_ID)
    assert e.value.argv[:len(step)] == step
    assert (svc.show("c1").status, svc.show("v1").status) == ("error", "available")
    last = svc.history("c1")[-1]
    assert (last.from_status, last.to_status) == ("creating", "error") and "simulated failure" in last.detail


def test_thick_clone_copies_through_a_temporary_snapshot_that_is_always_removed(service, host):
    source = service.create(size=1, name="v1").volume
    host.lvs[(VG, source.lv_name)]["content"] = "source"
    host.calls.clear()
    new = service.create(source_volume="v1", name="c1", size=2, volume_id=NEW_ID).volume
    assert host.calls == [
        ADMIT_THICK,
        [*LVS, f"{VG}/{source.lv_name}"],
        ["lvcreate", "--name", TEMP_LV, "--snapshot", f"{VG}/{source.lv_name}", "-L", "1g"],
        ["lvcreate", "-n", NEW_LV, VG, "-L", "2g"],
        [*ACTIVATE, "-K", f"{VG}/{TEMP_LV}"],
        copy(TEMP_LV, NEW_LV, 1),
        [*LVS, f"{VG}/{TEMP_LV}"],
        ["dd", "if=/dev/zero", f"of={dm(TEMP_LV)}-cow", f"count={GIB}", "bs=1M", "iflag=count_bytes", "oflag=direct",
         "status=progress"],
        ["lvremove", "--config", REMOVE_CONFIG, "-f", f"{VG}/{TEMP_LV}"],
    ]
    assert (new.status, new.size) == ("available", 2) and content(host, NEW_LV) == "source"
    assert (VG, TEMP_LV) not in host.lvs and host.lvs[(VG, source.lv_name)]["attr"] == "-wi-a-----"
    assert "a clone of volume v1" in service.history("c1")[0].detail


@pytest.mark.parametrize("step", [["lvcreate", "-n"], ACTIVATE, ["dd", f"if={dm(TEMP_LV)}"]])
def test_thick_clone_whose_copy_fails_is_error_and_still_drops_the_temporary_snapshot(service, host, step):
    source = service.create(size=1, name="v1").volume
    host.fail(step, stderr="  simulated failure of this step\n")
    with pytest.raises(CommandFailed) as e:
        service.create(source_volume="v1", name="c1", volume_id=NEW_ID)
    assert e.value.argv[:len(step)] == step  # the copy's error, not the cleanup's
    assert service.show("c1").status == "error" and service.show("v1").status == "available"
    assert host.calls[-1] == ["lvremove", "--config", REMOVE_CONFIG, "-f", f"{VG}/{TEMP_LV}"]
    assert (VG, TEMP_LV) not in host.lvs and host.lvs[(VG, source.lv_name)]["attr"] == "-wi-a-----"
    assert "simulated failure of this step" in service.history("c1")[-1].detail


def test_thick_clone_whose_copy_and_cleanup_both_fail_reports_the_copy(service, host):
    service.create(size=1, name="v1")
    host.fail(["dd", f"if={dm(TEMP_LV)}"], stderr="  read error on the snapshot\n")
    host.fail(["lvremove"], stderr="  Logical volume in use.\n")
    with pytest.raises(CommandFailed) as e:
        service.create(source_volume="v1", name="c1", volume_id=NEW_ID)
    assert e.value.argv[0] == "dd" and "read error" in str(e.value)
    assert service.show("c1").status == "error" and (VG, TEMP_LV) in host.lvs
    undo = [e.detail for e in service.history("c1") if e.kind == "note" and e.action == "undo"]
    assert len(undo) == 1 and undo[0].startswith(f"could not undo temporary snapshot {TEMP_LV}: command failed: lvremove")
    assert "read error" in service.history("c1")[-1].detail


def test_thick_clone_whose_temporary_snapshot_fails_or_stays_is_error(service, host):
    service.create(size=1, name="v1")
    host.fail(["lvcreate", "--name"], times=1)
    with pytest.raises(CommandFailed):
        service.create(source_volume="v1", name="c1")
    assert service.show("c1").status == "error" and not host.commands("lvremove")
    host.fail(["lvremove"], stderr="  Logical volume in use.\n")  # both attempts
    with pytest.raises(CommandFailed) as e:
        service.create(source_volume="v1", name="c2", volume_id=NEW_ID)
    assert e.value.argv[0] == "lvremove" and service.show("c2").status == "error"
    assert (VG, TEMP_LV) in host.lvs and "lvremove" in service.history("c2")[-1].detail


def test_clone_sources_and_sizes(service, host):
    source = service.create(size=2, name="v1").volume
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.attach("v1", instance=INSTANCE_1, initiator=INITIATOR_1)
    assert service.create(source_volume="v1", name="c1").volume.size == 2  # in-use is a source too
    with pytest.raises(UsageError) as e:
        service.create(source_volume="v1", name="c2", size=1)
    assert e.value.exit_code == 2 and "smaller than volume v1 (2 GiB)" in str(e.value)
    service.reset_state("c1", status="error")
    host.calls.clear()
    with pytest.raises(InvalidState) as e:
        service.create(source_volume="c1", name="c3")
    assert e.value.exit_code == 5 and "'error'; clone needs 'available' or 'in-use'" in str(e.value)
    assert host.calls == [] and [v.name for v in service.list()] == ["v1", "c1"]
    with pytest.raises(UsageError):
        service.create(source_volume="v1", snapshot="s1", name="c4")
    assert source.id in {v.id for v in service.list()}


# -- revert ----------------------------------------------------------------------------------


def test_revert_merges_the_snapshot_and_makes_it_again(service, host):
    volume = snapshotted(service, host)
    done = service.revert("v1", "s1")
    lv = f"{VG}/{volume.lv_name}"
    assert host.calls == [[*LVS, lv], ["lvconvert", "--merge", f"{VG}/{SNAP_LV}"], ["lvchange", "-a", "n", lv],
                          [*ACTIVATE, "-K", lv], ["lvcreate", "--name", SNAP_LV, "--snapshot", lv, "-L", "1g"]]
    assert (done.volume.status, done.snapshot.status) == ("available", "available")
    assert content(host, volume.lv_name) == "before" and content(host, SNAP_LV) == "before"
    assert host.lvs[(VG, volume.lv_name)]["attr"] == "owi-a-s---"
    assert transitions(service, "v1")[-2:] == [("revert", "available", "reverting"), ("revert", "reverting", "available")]
    assert transitions(service, "s1")[-2:] == [("revert", "available", "restoring"), ("revert", "restoring", "available")]
    assert "reverted to snapshot s1" in service.history("v1")[-1].detail
    # the merge and the activations act on the volume's LV: `history v1` lists them (the contract's
    # "every transition and external command"), the snapshot's history its transitions
    commands = [e.argv[0] for e in service.history("v1") if e.kind == "command"]
    assert commands[-5:] == ["lvs", "lvconvert", "lvchange", "lvchange", "lvcreate"]
    assert "lvconvert" not in [e.argv[0] for e in service.history("s1") if e.kind == "command"]


def _refused(service, host, volume_ref="v1", snapshot_ref="s1", exit_code=5, reads=()):
    """Refused before anything changed: no merge, no status, and no history line but the reads
    the refusal needed (`reads`: the programs it had to ask)."""
    def state():
        return ({s.id: s.status for s in service.snapshots()}, {v.id: v.status for v in service.list()},
                {ref: len(service.history(ref)) for ref in ("v1", "s1")})

    before = state()
    with pytest.raises((InvalidState, UsageError)) as e:
        service.revert(volume_ref, snapshot_ref)
    assert e.value.exit_code == exit_code
    after = state()
    assert not host.commands("lvconvert") and after[:2] == before[:2]
    added = [e for ref in ("v1", "s1") for e in service.history(ref)[before[2][ref]:]]
    assert [(e.kind, e.argv[0]) for e in added] == [("command", program) for program in reads], added
    return str(e.value)


def test_revert_refused_for_a_thin_volume(thin, host):
    snapshotted(thin, host)
    message = _refused(thin, host, reads=["lvs"])  # whether it is thin, only the host can say
    assert "it is a thin volume" in message and "volctl create --snapshot s1" in message
    assert thin.show("v1").status == "available" and content(host, "volume-" + thin.show("v1").id) == "after"


def test_revert_refused_to_a_snapshot_but_the_latest(service, host):
    snapshotted(service, host)
    service.snapshot_create("v1", name="s2")
    assert "only the volume's latest snapshot" in _refused(service, host)
    assert service.show("v1").status == "available"
    assert service.revert("v1", "s2").volume.status == "available"


def test_revert_refused_to_a_snapshot_not_available(service, host):
    snapshotted(service, host)
    inv = service.inventory()
    with inv.write():
        inv.update_snapshot(SNAP_ID, status="error")
    assert _refused(service, host).startswith("snapshot s1 is 'error'; revert needs 'available'")


def test_revert_refused_unless_the_sizes_are_equal(service, host):
    snapshotted(service, host)
    service.extend("v1", 2)
    assert "the volume is 2 GiB and snapshot s1 1 GiB" in _refused(service, host)


def test_revert_refused_while_exported(service, host):
    snapshotted(service, host)
    service.export("v1")
    assert "it is exported" in _refused(service, host) and "unexport it first" in _refused(service, host)
    assert service.show("v1").status == "available"
    service.unexport("v1")
    assert service.revert("v1", "s1").volume.status == "available"


@pytest.mark.parametrize("status", ["in-use", "error", "extending", "maintenance"])
def test_revert_refused_unless_available(service, host, status):
    snapshotted(service, host)
    service.reset_state("v1", status=status)
    assert f"is '{status}'; revert needs 'available'" in _refused(service, host)
    assert service.show("v1").status == status


def test_revert_refused_to_another_volumes_snapshot_or_none(service, host):
    snapshotted(service, host)
    service.create(size=1, name="v2")
    assert "snapshot s1 is not of volume v2 (it is of v1)" in _refused(service, host, volume_ref="v2", exit_code=2)
    with pytest.raises(NotFound):
        service.revert("v1", "nosuch")


def test_revert_whose_lv_cannot_be_looked_up_changes_no_status(service, host):
    snapshotted(service, host)
    host.fail(["lvs"], stderr="  /dev/sdb: read failed\n")
    with pytest.raises(CommandFailed) as e:
        service.revert("v1", "s1")
    assert e.value.exit_code == 6 and not host.commands("lvconvert")
    assert (service.show("v1").status, service.snapshot_show("s1").status) == ("available", "available")
    assert transitions(service, "v1")[-1][0] != "revert" and transitions(service, "s1")[-1][0] != "revert"


def test_revert_whose_merge_fails_rolls_back_to_available(service, host):
    volume = snapshotted(service, host)
    host.fail(["lvconvert"], stderr="  Unable to merge invalidated snapshot LV.\n")
    with pytest.raises(CommandFailed) as e:
        service.revert("v1", "s1")
    assert e.value.exit_code == 6
    assert (service.show("v1").status, service.snapshot_show("s1").status) == ("available", "available")
    assert content(host, volume.lv_name) == "after"
    for ref, busy in (("v1", "reverting"), ("s1", "restoring")):
        assert transitions(service, ref)[-2:] == [("revert", "available", busy), ("revert", busy, "available")]
        assert "rolled back" in service.history(ref)[-1].detail and "invalidated" in service.history(ref)[-1].detail


@pytest.mark.parametrize("step", [["lvchange", "-a", "n"], ACTIVATE, ["lvcreate", "--name"]])
def test_revert_that_cannot_make_the_snapshot_again_leaves_it_error_and_the_volume_reverted(service, host, step):
    volume = snapshotted(service, host)
    host.fail(step, stderr="  simulated failure of this step\n")
    with pytest.raises(CommandFailed):
        service.revert("v1", "s1")
    assert (service.show("v1").status, service.snapshot_show("s1").status) == ("available", "error")
    assert content(host, volume.lv_name) == "before" and (VG, SNAP_LV) not in host.lvs
    assert "could not be made again" in service.history("v1")[-1].detail
    last = service.history("s1")[-1]
    assert (last.from_status, last.to_status) == ("restoring", "error") and "simulated failure" in last.detail
    host.failures.clear()
    service.snapshot_delete("s1")  # an error snapshot whose LV is gone goes away cleanly
    assert service.snapshots() == []


@pytest.mark.parametrize("how", ["killed", "cleanup_failed"])
def test_doctor_repair_zeroes_a_killed_clones_temporary_snapshot_before_removing_it(service, host, how):
    """Like `snapshot delete` with volume_clear = "zero": the temporary snapshot's COW store holds
    the source's old blocks, so doctor --repair zeroes it, all of it, before its lvremove."""
    from volctl.doctor import Doctor

    source = service.create(size=2, name="v1").volume
    if how == "killed":  # the clone's process died with its temporary snapshot made, and its row is gone since
        was_volctls(service, NEW_ID)
        host.answer(["lvcreate", "--name", TEMP_LV, "--snapshot", f"{VG}/{source.lv_name}", "-L", "2g"])
    else:  # the copy and then the cleanup failed
        host.fail(["dd", f"if={dm(TEMP_LV)}"], times=1)
        host.fail(["lvremove"], times=2)
        with pytest.raises(CommandFailed):
            service.create(source_volume="v1", name="c1", volume_id=NEW_ID)
    assert (VG, TEMP_LV) in host.lvs
    host.calls.clear()

    doctor = Doctor(service, stale_after=0)
    found = doctor.examine()
    assert "clone_snapshot_left" in [d.kind for d in found.drift]
    repaired = doctor.repair(found)
    assert all(d.error is None for d in repaired.drift), repaired.drift

    zero = ["dd", "if=/dev/zero", f"of={dm(TEMP_LV)}-cow", f"count={2 * GIB}", "bs=1M", "iflag=count_bytes",
            "oflag=direct", "status=progress"]
    remove = ["lvremove", "--config", REMOVE_CONFIG, "-f", f"{VG}/{TEMP_LV}"]
    assert zero in host.calls and remove in host.calls
    assert host.calls.index(zero) < host.calls.index(remove)
    assert [c for c in host.calls if c[0] in ("dd", "lvremove")] == [zero, remove]
    assert (VG, TEMP_LV) not in host.lvs and (VG, source.lv_name) in host.lvs


def test_doctor_repair_with_volume_clear_none_removes_a_leftover_temporary_snapshot_without_zeroing(make_service, host):
    from volctl.doctor import Doctor

    service = make_service(settings=Settings(lvm_udev="on", volume_clear="none"))
    source = service.create(size=1, name="v1").volume
    was_volctls(service, NEW_ID)
    host.answer(["lvcreate", "--name", TEMP_LV, "--snapshot", f"{VG}/{source.lv_name}", "-L", "1g"])
    host.calls.clear()
    doctor = Doctor(service, stale_after=0)
    doctor.repair(doctor.examine())
    assert host.commands("dd") == [] and (VG, TEMP_LV) not in host.lvs
