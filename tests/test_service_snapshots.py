"""Snapshots on VolumeService against the FakeHost: which states allow what, Cinder's exact command
lines (thick and thin), and what every failed step leaves behind. Volumes made from snapshots,
clones and revert are in test_service_copies.py."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import ADMIT_THICK, ADMIT_THIN, INITIATOR_1, INSTANCE_1

from volctl.config import Settings
from volctl.errors import AlreadyExists, CommandFailed, EnvironmentProblem, InvalidState, NotFound, UsageError
from volctl.lvm import GIB

VG = "cinder-volumes"
SNAP_ID = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
REMOVE_CONFIG = "activation { retry_deactivation = 1} "
LVS = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv"]


def lv(volume) -> str:
    return f"{VG}/{volume.lv_name}"


def dm(name: str) -> str:
    return f"/dev/mapper/{VG.replace('-', '--')}-{name.replace('-', '--')}"


def transitions(service, ref) -> list[tuple]:
    return [(e.action, e.from_status, e.to_status) for e in service.history(ref) if e.kind == "transition"]


@pytest.fixture
def thin(make_service):
    return make_service(settings=Settings(lvm_udev="on", lvm_type="thin"))


@pytest.fixture
def attached(service):
    volume = service.create(size=1, name="v1").volume
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.attach("v1", instance=INSTANCE_1, initiator=INITIATOR_1)
    return volume


# -- snapshot create -------------------------------------------------------------------------


def test_snapshot_of_a_thick_volume_is_a_cow_lv_as_large_as_the_volume(service, host, db_path):
    volume = service.create(size=3, name="v1").volume
    host.calls.clear()
    snapshot = service.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID).snapshot
    assert host.calls == [ADMIT_THICK, [*LVS, lv(volume)],
                          ["lvcreate", "--name", f"_snapshot-{SNAP_ID}", "--snapshot", lv(volume), "-L", "3g"]]
    assert (snapshot.id, snapshot.name, snapshot.status, snapshot.volume_id, snapshot.volume_size) == \
        (SNAP_ID, "s1", "available", volume.id, 3)
    assert snapshot.lv_path == f"/dev/{VG}/_snapshot-{SNAP_ID}"
    assert host.lvs[(VG, f"_snapshot-{SNAP_ID}")]["attr"] == "swi-a-s---"
    assert host.lvs[(VG, volume.lv_name)]["attr"] == "owi-a-s---"
    assert transitions(service, "s1") == [("create", None, "creating"), ("create", "creating", "available")]
    assert [e.argv[0] for e in service.history("s1") if e.kind == "command"] == ["lvs", "lvcreate"]
    assert service.history("v1")[-1].detail == f"snapshot s1 ({SNAP_ID}) created"
    # a snapshot's history rows say so; the volume's say theirs
    conn = sqlite3.connect(db_path)
    entities = dict(conn.execute("SELECT volume_id, group_concat(DISTINCT entity) FROM events GROUP BY volume_id"))
    conn.close()
    assert entities == {SNAP_ID: "snapshot", volume.id: "volume"}


def test_snapshot_of_a_thin_volume_is_a_thin_lv_without_a_size(thin, host):
    volume = thin.create(size=2, name="v1").volume
    host.calls.clear()
    snapshot = thin.snapshot_create("v1", snapshot_id=SNAP_ID).snapshot
    assert host.calls[-1] == ["lvcreate", "--name", f"_snapshot-{SNAP_ID}", "--snapshot", lv(volume)]
    assert snapshot.name == SNAP_ID  # the id when no name is given
    assert host.lvs[(VG, f"_snapshot-{SNAP_ID}")]["attr"] == "Vwi---tz-k"


def test_snapshot_of_an_in_use_volume_needs_force(service, host, attached):
    with pytest.raises(InvalidState) as e:
        service.snapshot_create("v1", name="s1")
    assert e.value.exit_code == 5 and "'in-use'" in str(e.value) and "--force" in str(e.value)
    assert service.snapshots() == [] and not any(c[:2] == ["lvcreate", "--name"] for c in host.calls)
    assert service.snapshot_create("v1", name="s1", force=True).snapshot.status == "available"
    assert service.show("v1").status == "in-use"


@pytest.mark.parametrize("status", ["attaching", "creating", "deleting", "extending", "reverting", "maintenance",
                                    "error", "error_deleting", "error_extending"])
def test_snapshot_refused_from_other_states(service, host, status):
    service.create(size=1, name="v1")
    service.reset_state("v1", status=status)
    host.calls.clear()
    with pytest.raises(InvalidState) as e:
        service.snapshot_create("v1", name="s1", force=True)
    assert e.value.exit_code == 5 and f"is '{status}'" in str(e.value) and "'available' or 'in-use'" in str(e.value)
    assert service.snapshots() == [] and host.calls == []
    with pytest.raises(NotFound):
        service.history("s1")


def test_snapshot_names_are_unique_and_valid(service, host):
    service.create(size=1, name="v1")
    service.snapshot_create("v1", name="s1")
    with pytest.raises(AlreadyExists):
        service.snapshot_create("v1", name="s1")
    for bad in ("-x", "x" * 64, SNAP_ID):
        with pytest.raises(UsageError):
            service.snapshot_create("v1", name=bad)
    assert [s.name for s in service.snapshots("v1")] == ["s1"] and len(host.commands("lvcreate")) == 2


@pytest.mark.parametrize("step", [["lvs"], ["lvcreate", "--name"]])
def test_snapshot_whose_step_fails_is_error_and_says_why(service, host, step):
    service.create(size=1, name="v1")
    host.fail(step, stderr='  Volume group "cinder-volumes" has insufficient free space (10 extents): 256 required.\n')
    with pytest.raises(CommandFailed) as e:
        service.snapshot_create("v1", name="s1")
    assert e.value.exit_code == 6
    snapshot = service.snapshot_show("s1")
    assert snapshot.status == "error" and service.show("v1").status == "available"
    last = service.history("s1")[-1]
    assert (last.action, last.from_status, last.to_status) == ("create", "creating", "error")
    assert "insufficient free space" in last.detail and " ".join(step) in last.detail


def test_snapshot_of_a_volume_whose_lv_is_gone_is_error(service, host):
    volume = service.create(size=1, name="v1").volume
    del host.lvs[(VG, volume.lv_name)]
    with pytest.raises(EnvironmentProblem) as e:
        service.snapshot_create("v1", name="s1")
    assert e.value.exit_code == 7 and "is not there" in str(e.value)
    assert service.snapshot_show("s1").status == "error" and host.commands("lvcreate")[-1][:2] == ["lvcreate", "-n"]


# -- a volume with snapshots -----------------------------------------------------------------


def test_delete_of_a_volume_with_snapshots_is_refused_naming_why(service, host):
    volume = service.create(size=1, name="v1").volume
    service.snapshot_create("v1", name="s1")
    host.calls.clear()
    with pytest.raises(InvalidState) as e:
        service.delete("v1")
    assert e.value.exit_code == 5 and "it has snapshots" in str(e.value)
    assert service.show("v1").status == "available" and host.commands("lvremove") == host.commands("dd") == []
    service.snapshot_delete("s1")
    service.delete("v1")
    assert (VG, volume.lv_name) not in host.lvs


def test_extend_of_an_exported_thick_origin_is_refused_before_anything_changes(service, host):
    service.create(size=1, name="v1")
    service.snapshot_create("v1", name="s1")
    service.export("v1")
    host.calls.clear()
    with pytest.raises(InvalidState) as e:
        service.extend("v1", 2)
    assert e.value.exit_code == 5 and "unexport it first" in str(e.value)
    assert host.calls[0] == ADMIT_THICK and [c[0] for c in host.calls] == ["vgs", "lvs"]
    assert service.show("v1").status == "available" and service.show("v1").size == 1


def test_extend_of_a_thick_origin_deactivates_it_around_lvextend(service, host):
    volume = service.create(size=1, name="v1").volume
    service.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)
    host.calls.clear()
    assert service.extend("v1", 2).volume.size == 2
    assert host.calls == [ADMIT_THICK, [*LVS, lv(volume)], ["lvchange", "-a", "n", lv(volume)], ["lvextend", "-L", "2g", lv(volume)],
                          ["lvchange", "-a", "y", "--yes", "-K", lv(volume)]]
    assert host.lvs[(VG, volume.lv_name)]["attr"] == "owi-a-s---"
    assert host.lvs[(VG, f"_snapshot-{SNAP_ID}")]["attr"] == "swi-a-s---"  # active again with it


def test_extend_of_a_thick_origin_that_fails_leaves_it_active_and_error_extending(service, host):
    volume = service.create(size=1, name="v1").volume
    service.snapshot_create("v1", name="s1")
    host.fail(["lvextend"], stderr="  Insufficient free space: 2560 extents needed, but only 10 available\n")
    with pytest.raises(CommandFailed):
        service.extend("v1", 20)
    assert service.show("v1").status == "error_extending"
    assert host.lvs[(VG, volume.lv_name)]["attr"][4] == "a"
    assert "Insufficient free space" in service.history("v1")[-1].detail


@pytest.mark.parametrize("how", ["no snapshots", "thin"])
def test_extend_without_a_thick_origin_is_one_lvextend(service, thin, host, how):
    svc = thin if how == "thin" else service
    volume = svc.create(size=1, name="v1").volume
    if how == "thin":
        svc.snapshot_create("v1", name="s1")
    host.calls.clear()
    svc.extend("v1", 2)
    assert [c for c in host.calls if c[0] != "lvs"] == [*([] if how == "thin" else [ADMIT_THICK]),
                                                         ["lvextend", "-L", "2g", lv(volume)]]
    assert ADMIT_THIN in host.calls if how == "thin" else ADMIT_THIN not in host.calls


# -- snapshot delete -------------------------------------------------------------------------


def test_snapshot_delete_thick_zeroes_the_cow_store_then_removes(service, host):
    volume = service.create(size=2, name="v1").volume
    service.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)
    host.calls.clear()
    done = service.snapshot_delete("s1")
    name = f"_snapshot-{SNAP_ID}"
    assert host.calls == [
        [*LVS, f"{VG}/{name}"],
        ["dd", "if=/dev/zero", f"of={dm(name)}-cow", f"count={2 * GIB}", "bs=1M", "iflag=count_bytes", "oflag=direct",
         "status=progress"],
        ["lvremove", "--config", REMOVE_CONFIG, "-f", f"{VG}/{name}"],
    ]
    assert done.data == {"id": SNAP_ID, "name": "s1", "deleted": True}
    assert service.snapshots() == [] and (VG, name) not in host.lvs
    assert host.lvs[(VG, volume.lv_name)]["attr"] == "-wi-a-----"
    assert transitions(service, SNAP_ID)[-2:] == [("delete", "available", "deleting"), ("delete", "deleting", "deleted")]
    assert service.history("v1")[-1].detail == f"snapshot s1 ({SNAP_ID}) deleted"


@pytest.mark.parametrize("how", ["volume_clear none", "thin"])
def test_snapshot_delete_without_zeroing(make_service, thin, host, how):
    svc = thin if how == "thin" else make_service(settings=Settings(lvm_udev="on", volume_clear="none"))
    svc.create(size=1, name="v1")
    svc.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)
    host.calls.clear()
    svc.snapshot_delete("s1")
    assert [c[0] for c in host.calls] == ["lvs", "lvremove"] and svc.snapshots() == []


@pytest.mark.parametrize("step", [["lvs"], ["dd"], ["lvremove"]])
def test_snapshot_delete_failure_is_error_deleting_and_a_retry_finishes(service, host, step):
    service.create(size=1, name="v1")
    service.snapshot_create("v1", name="s1")
    host.fail(step, stderr="  device busy\n")
    with pytest.raises(CommandFailed) as e:
        service.snapshot_delete("s1")
    assert e.value.exit_code == 6 and e.value.argv[0] == step[0]
    assert service.snapshot_show("s1").status == "error_deleting" and service.show("v1").status == "available"
    last = service.history("s1")[-1]
    assert (last.from_status, last.to_status) == ("deleting", "error_deleting") and "device busy" in last.detail
    host.failures.clear()
    service.snapshot_delete("s1")
    assert transitions(service, "s1")[-2:] == [("delete", "error_deleting", "deleting"), ("delete", "deleting", "deleted")]


def test_snapshot_delete_from_error_when_its_lv_never_came(service, host):
    service.create(size=1, name="v1")
    host.fail(["lvcreate", "--name"], times=1)
    with pytest.raises(CommandFailed):
        service.snapshot_create("v1", name="s1")
    host.calls.clear()
    service.snapshot_delete("s1")
    assert [c[0] for c in host.calls] == ["lvs"] and service.snapshots() == []
    assert any("was already gone" in (e.detail or "") for e in service.history("s1"))


@pytest.mark.parametrize("status", ["creating", "deleting", "restoring"])
def test_snapshot_delete_refused_while_busy(service, host, status):
    service.create(size=1, name="v1")
    snapshot = service.snapshot_create("v1", name="s1").snapshot
    inv = service.inventory()
    with inv.write():
        inv.update_snapshot(snapshot.id, status=status)
    host.calls.clear()
    with pytest.raises(InvalidState) as e:
        service.snapshot_delete("s1")
    assert e.value.exit_code == 5 and str(e.value).startswith(f"snapshot s1 is '{status}'")
    assert "'available' or 'error' or 'error_deleting'" in str(e.value)
    assert host.calls == [] and service.snapshot_show("s1").status == status


def test_snapshot_list_and_show(service):
    service.create(size=1, name="v1")
    service.create(size=2, name="v2")
    first = service.snapshot_create("v1", name="a").snapshot
    second = service.snapshot_create("v2", name="b").snapshot
    assert [s.name for s in service.snapshots()] == ["a", "b"]
    assert [s.name for s in service.snapshots("v2")] == ["b"] and service.snapshots("v1") == [first]
    assert service.snapshot_show(second.id) == service.snapshot_show("b") and second.volume_name == "v2"
    with pytest.raises(NotFound):
        service.snapshot_show("nosuch")
    with pytest.raises(NotFound):
        service.snapshots("nosuch")
