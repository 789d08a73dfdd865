"""Lifecycle use cases on VolumeService: unreserve, detach, disconnect, unexport, delete, extend,
reset-state; once per target helper (tests/worlds.py), asserted at the helper seam: the
inventory, history, the helper steps run, what is live and what is persisted. The lioadm helper's
command lines for these flows are tests/test_target_lioadm.py's and tests/test_cli_flow.py's."""

from __future__ import annotations

import pytest
from conftest import ADMIT_THICK, INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from volctl.config import Settings
from volctl.errors import InvalidState, NotFound, UsageError

VG = "cinder-volumes"
REMOVE_CONFIG = "activation { retry_deactivation = 1} "
RETRY_CONFIG = "activation { retry_deactivation = 1} devices { ignore_suspended_devices = 1}"


@pytest.fixture
def make_service(world):
    return world.make_service


def attached(service, name="v1", *, multiattach=False, instance=INSTANCE_1, initiator=INITIATOR_1, size=1):
    volume = service.create(size=size, name=name, multiattach=multiattach).volume
    service.reserve(name)
    service.connect(name, {"initiator": initiator})
    service.attach(name, instance=instance, host="compute1", mountpoint="/dev/vdb", initiator=initiator)
    return service.show(volume.id)


def events(service, ref="v1"):
    return service.history(ref)


def notes(service, ref="v1", action=None):
    return [e.detail for e in events(service, ref) if e.kind == "note" and (action is None or e.action == action)]


# -- unreserve -------------------------------------------------------------------------------


def test_unreserve_returns_a_fresh_reservation_to_available(service):
    service.create(size=1, name="v1")
    assert service.reserve("v1").volume.status == "attaching"
    volume = service.unreserve("v1").volume
    assert (volume.status, volume.attach_status) == ("available", "detached")
    last = events(service)[-1]
    assert (last.action, last.from_status, last.to_status) == ("unreserve", "attaching", "available")


def test_unreserve_keeps_a_multiattach_volume_in_use_while_attachments_remain(service):
    attached(service, multiattach=True)
    assert service.reserve("v1").volume.status == "attaching"
    volume = service.unreserve("v1").volume
    assert (volume.status, volume.attach_status) == ("in-use", "attached")
    assert len(volume.live_attachments) == 1


@pytest.mark.parametrize("setup", ["available", "in-use"])
def test_unreserve_refused_unless_attaching(service, setup):
    if setup == "available":
        service.create(size=1, name="v1")
    else:
        attached(service)
    with pytest.raises(InvalidState) as e:
        service.unreserve("v1")
    assert e.value.exit_code == 5
    assert "'attaching'" in str(e.value) and f"'{setup}'" in str(e.value)
    assert service.show("v1").status == setup


# -- detach ----------------------------------------------------------------------------------


def test_detach_last_attachment_removes_the_export(service, world):
    volume = attached(service)
    [attachment] = volume.attachments
    world.forget()
    done = service.detach("v1")
    assert world.seen() == ["remove_export", "persist"] and world.lvm_calls() == []
    assert done.data == {"attachment_id": attachment.id, "export_removed": True}
    volume = service.show("v1")
    assert (volume.status, volume.attach_status) == ("available", "detached")
    assert volume.provider_location is None
    assert volume.provider_auth is not None  # credentials live as long as the volume
    assert volume.connections == ()
    [kept] = volume.attachments
    assert kept.id == attachment.id and kept.attach_status == "detached" and kept.detach_time
    assert world.live() == {} and world.persisted() == {}
    transitions = [(e.action, e.from_status, e.to_status) for e in events(service) if e.kind == "transition"]
    assert transitions[-2:] == [("detach", "in-use", "detaching"), ("detach", "detaching", "available")]


def test_detach_whose_save_fails_after_the_target_is_gone_records_the_detach(service, world):
    """The target is gone from the host: rolling back to in-use would claim a disk the instance no
    longer has. The detach is recorded, the persist's failure is exit 6, and history says why."""
    volume = attached(service)
    fault = world.fail("persist", always=True, message="save went wrong")
    with pytest.raises(Exception) as e:
        service.detach("v1")
    assert e.value.exit_code == 6 and "save went wrong" in str(e.value)
    assert world.failure_filed(service.history("v1"), fault)
    after = service.show("v1")
    assert (after.status, after.attach_status, after.provider_location) == ("available", "detached", None)
    assert [a.attach_status for a in after.attachments] == ["detached"] and after.connections == ()
    assert world.live() == {}
    assert world.persisted() == {world.target_of(volume): {INITIATOR_1}}  # stale until a persist works
    assert "could not be saved" in events(service)[-1].detail


def test_detach_rolls_back_to_in_use_when_removing_the_export_fails(service, world):
    volume = attached(service)
    fault = world.fail("remove_export", always=True, message="remove went wrong")
    with pytest.raises(Exception) as e:
        service.detach("v1")
    assert e.value.exit_code == 6
    assert "remove went wrong" in str(e.value)
    after = service.show("v1")
    assert (after.status, after.attach_status) == ("in-use", "attached")
    assert [a.attach_status for a in after.attachments] == ["attached"]
    assert after.provider_location == volume.provider_location
    assert [c.initiator for c in after.connections] == [INITIATOR_1]
    assert world.live() == {world.target_of(volume): {INITIATOR_1}}
    history = events(service)
    assert world.failure_filed(history, fault)
    last = history[-1]
    assert (last.action, last.from_status, last.to_status) == ("detach", "detaching", "in-use")
    assert "removing the export failed" in last.detail
    # once the host works again, the same detach goes through
    world.clear_faults()
    assert service.detach("v1").volume.status == "available"


def test_detach_by_attachment_or_instance(service):
    attached(service, multiattach=True)
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_2})
    second = service.attach("v1", instance=INSTANCE_2, initiator=INITIATOR_2).data["attachment_id"]
    with pytest.raises(UsageError):
        service.detach("v1")
    done = service.detach("v1", attachment_id=second)
    assert done.data == {"attachment_id": second, "export_removed": False}
    volume = done.volume
    assert volume.status == "in-use"
    assert [a.instance_uuid for a in volume.live_attachments] == [INSTANCE_1]
    with pytest.raises(NotFound):
        service.detach("v1", attachment_id=second)  # already detached: no live attachment by that id
    done = service.detach("v1", instance=INSTANCE_1)
    assert done.data["export_removed"] is True
    assert done.volume.status == "available"


def test_detach_refused_unless_in_use(service):
    service.create(size=1, name="v1")
    service.reserve("v1")
    with pytest.raises(InvalidState) as e:
        service.detach("v1")
    assert "'in-use'" in str(e.value) and "'attaching'" in str(e.value)


# -- disconnect ------------------------------------------------------------------------------


def test_disconnect_deletes_the_acl_and_saves(service, world):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    service.connect("v1", {"initiator": INITIATOR_2})
    target = world.target_of(volume)
    world.forget()
    done = service.disconnect("v1", {"initiator": INITIATOR_1})
    assert world.seen() == ["disallow", "persist"] and world.lvm_calls() == []
    assert done.changed
    assert world.live() == {target: {INITIATOR_2}} == world.persisted()
    assert [c.initiator for c in done.volume.connections] == [INITIATOR_2]
    assert done.volume.provider_location  # the export stays
    assert f"ACL for {INITIATOR_1} removed" in notes(service, action="disconnect")


def test_disconnect_of_a_missing_acl_is_fine_and_noted(service, world):
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    done = service.disconnect("v1", {"initiator": INITIATOR_2})
    assert not done.changed
    assert any(INITIATOR_2 in n for n in done.notes)
    assert f"ACL for {INITIATOR_2} was not there" in notes(service, action="disconnect")
    assert world.live() == {world.target_of(volume): set()}


def test_disconnect_when_the_target_vanished_is_fine(service, world):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    world.lose(world.target_of(volume))
    done = service.disconnect("v1", {"initiator": INITIATOR_1})
    assert not done.changed
    assert done.volume.connections == ()


def test_disconnect_of_a_volume_not_exported_runs_nothing(service, world):
    service.create(size=1, name="v1")
    world.forget()
    done = service.disconnect("v1", {"initiator": INITIATOR_1})
    assert world.seen() == [] and world.host.calls == []
    assert not done.changed and "not exported" in done.notes[0]


def test_disconnect_keeps_an_acl_shared_by_live_attachments(service, world):
    volume = service.create(size=1, name="v1", multiattach=True).volume
    service.connect("v1", {"initiator": INITIATOR_1})
    for instance in (INSTANCE_1, INSTANCE_2):
        service.reserve("v1")
        service.attach("v1", instance=instance, initiator=INITIATOR_1)
    world.forget()
    done = service.disconnect("v1", {"initiator": INITIATOR_1})
    assert world.seen() == [] and world.host.calls == []
    assert not done.changed
    assert world.live() == {world.target_of(volume): {INITIATOR_1}}
    assert any("kept" in n for n in notes(service, action="disconnect"))


# -- unexport --------------------------------------------------------------------------------


def test_unexport_removes_the_target_keeps_the_credentials(service, world):
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    auth = service.show("v1").provider_auth
    world.forget()
    done = service.unexport("v1")
    assert world.seen() == [*world.listing, "remove_export", "persist"] and world.lvm_calls() == []
    assert done.volume.provider_location is None
    assert done.volume.provider_auth == auth
    assert done.volume.connections == ()
    assert world.live() == {} and world.persisted() == {}


def test_unexport_of_a_volume_not_exported_changes_nothing(service):
    service.create(size=1, name="v1")
    done = service.unexport("v1")
    assert not done.changed and "not exported" in done.notes[0]


@pytest.mark.parametrize("multiattach", [False, True])
def test_unexport_refused_while_attached(service, world, multiattach):
    volume = attached(service, multiattach=multiattach)
    if multiattach:
        service.reserve("v1")  # attaching, with a live attachment
    world.forget()
    with pytest.raises(InvalidState) as e:
        service.unexport("v1")
    assert e.value.exit_code == 5
    assert world.seen() == [] and world.host.calls == []
    assert world.live() == {world.target_of(volume): {INITIATOR_1}}
    assert service.show("v1").provider_location == volume.provider_location


# -- delete ----------------------------------------------------------------------------------


def lv_path(volume) -> str:
    return f"/dev/{VG}/volume-{volume.id}"


def test_delete_thick_zeroes_then_removes_with_cinders_flags(service, host, world):
    volume = service.create(size=1, name="v1").volume
    world.forget()
    done = service.delete("v1")
    lv = f"volume-{volume.id}"
    assert world.seen() == world.listing  # is there a target to remove? none
    calls = world.lvm_calls()
    assert [c[0] for c in calls] == ["lvs", "dd", "lvremove"]
    dd = calls[1]
    assert dd[:6] == ["dd", "if=/dev/zero", f"of={lv_path(volume)}", f"count={1024**3}", "bs=1M", "iflag=count_bytes"]
    assert "oflag=direct" in dd
    assert calls[2] == ["lvremove", "--config", REMOVE_CONFIG, "-f", f"{VG}/{lv}"]
    assert done.volume is None and done.data == {"id": volume.id, "name": "v1", "deleted": True}
    assert host.lvs == {}
    with pytest.raises(NotFound):
        service.show("v1")


def test_delete_with_volume_clear_none_does_not_zero(make_service, host, world):
    service = make_service(settings=Settings(volume_clear="none"))
    service.create(size=1, name="v1")
    world.forget()
    service.delete("v1")
    assert world.seen() == world.listing and [c[0] for c in world.lvm_calls()] == ["lvs", "lvremove"]
    assert host.lvs == {}


def test_thin_volume_is_created_in_the_pool_and_not_zeroed(make_service, host, world):
    service = make_service(settings=Settings(lvm_type="thin"))
    volume = service.create(size=2, name="v1").volume
    lv = f"volume-{volume.id}"
    assert ["lvcreate", "-T", "-V", "2g", "-n", lv, f"{VG}/{VG}-pool"] in host.calls
    assert (VG, f"{VG}-pool") in host.lvs
    world.forget()
    service.delete("v1")
    assert world.seen() == world.listing and [c[0] for c in world.lvm_calls()] == ["lvs", "lvremove"]
    assert (VG, lv) not in host.lvs


def test_delete_removes_an_export_left_on_an_available_volume(service, host, world):
    service.create(size=1, name="v1")
    service.export("v1")
    world.forget()
    service.delete("v1")
    assert world.seen() == [*world.listing, "remove_export", "persist"]
    assert world.live() == {} and world.persisted() == {} and host.lvs == {}


def test_delete_when_the_lv_is_already_gone(service, host):
    volume = service.create(size=1, name="v1").volume
    host.lvs.clear()
    done = service.delete("v1")
    assert done.data["deleted"]
    assert not [c for c in host.calls if c[0] in ("dd", "lvremove")]
    assert any("already gone" in (e.detail or "") for e in service.history(volume.id))


@pytest.mark.parametrize("status", ["error", "error_deleting", "error_extending"])
def test_delete_allowed_from_error_states(service, host, status):
    service.create(size=1, name="v1")
    service.reset_state("v1", status=status)
    service.delete("v1")
    assert host.lvs == {}


@pytest.mark.parametrize("status", ["creating", "attaching", "in-use", "detaching", "deleting", "extending", "maintenance"])
def test_delete_refused_from_other_states(service, host, world, status):
    service.create(size=1, name="v1")
    service.reset_state("v1", status=status)
    world.forget()
    with pytest.raises(InvalidState) as e:
        service.delete("v1")
    assert f"'{status}'" in str(e.value) and "'available'" in str(e.value)
    assert world.seen() == [] and host.calls == [] and len(host.lvs) == 1
    assert service.show("v1").status == status


def test_delete_refused_with_live_attachments(service, host):
    attached(service)
    service.reset_state("v1", status="available")  # even if an operator forced the status
    with pytest.raises(InvalidState):
        service.delete("v1")
    assert len(host.lvs) == 1


def test_delete_failure_is_error_deleting_with_the_reason(service, host):
    volume = service.create(size=1, name="v1").volume
    host.fail(["lvremove"], exit_code=5, stderr="  Logical volume cinder-volumes/x in use.\n")
    with pytest.raises(Exception) as e:
        service.delete("v1")
    assert e.value.exit_code == 6
    after = service.show("v1")
    assert after.status == "error_deleting"
    assert after.previous_status == "available"
    # Cinder's retry: udevadm settle, then lvremove ignoring suspended devices
    lvremoves = [c for c in host.calls if c[0] == "lvremove"]
    assert [c[2] for c in lvremoves] == [REMOVE_CONFIG, RETRY_CONFIG]
    assert ["udevadm", "settle"] in host.calls
    last = service.history("v1")[-1]
    assert (last.from_status, last.to_status) == ("deleting", "error_deleting")
    assert "lvremove" in last.detail and "in use" in last.detail
    # from error_deleting, a retry finishes the job
    host.failures.clear()
    service.delete(volume.id)
    assert host.lvs == {}


def test_lvremove_retry_succeeds(service, host):
    service.create(size=1, name="v1")
    host.fail(["lvremove"], exit_code=5, stderr="busy", times=1)
    service.delete("v1")
    assert host.lvs == {}


def test_history_readable_after_delete_by_id_and_name(service):
    volume = service.create(size=1, name="v1").volume
    service.delete("v1")
    by_id = service.history(volume.id)
    by_name = service.history("v1")
    assert by_id == by_name
    assert [e.action for e in by_id if e.kind == "transition"] == ["create", "create", "delete", "delete"]
    assert by_id[-1].to_status == "deleted"


def test_history_by_name_follows_the_newest_volume_of_that_name(service):
    old = service.create(size=1, name="v1").volume
    service.delete("v1")
    new = service.create(size=1, name="v1").volume
    assert {e.volume_id for e in service.history("v1")} == {new.id}
    assert {e.volume_id for e in service.history(old.id)} == {old.id}


# -- extend ----------------------------------------------------------------------------------


def test_extend_grows_the_lv(service, host, world):
    volume = service.create(size=1, name="v1").volume
    world.forget()
    done = service.extend("v1", 3)
    assert world.seen() == [] and host.calls == [ADMIT_THICK, ["lvextend", "-L", "3g", f"{VG}/volume-{volume.id}"]]
    assert (done.volume.size, done.volume.status) == (3, "available")
    assert host.lvs[(VG, f"volume-{volume.id}")]["size"] == 3 * 1024**3
    transitions = [(e.from_status, e.to_status) for e in service.history("v1") if e.action == "extend"]
    assert transitions == [("available", "extending"), ("extending", "available")]


def test_extend_failure_is_error_extending(service, host):
    service.create(size=1, name="v1")
    host.fail(["lvextend"], exit_code=5, stderr='  Insufficient free space: 2560 extents needed\n')
    with pytest.raises(Exception) as e:
        service.extend("v1", 10)
    assert e.value.exit_code == 6
    volume = service.show("v1")
    assert (volume.status, volume.size) == ("error_extending", 1)
    last = service.history("v1")[-1]
    assert last.to_status == "error_extending" and "Insufficient free space" in last.detail


@pytest.mark.parametrize("status", ["attaching", "detaching", "error", "error_extending", "maintenance"])
def test_extend_only_from_available_or_in_use(service, host, world, status):
    service.create(size=1, name="v1")
    service.reset_state("v1", status=status)
    world.forget()
    with pytest.raises(InvalidState):
        service.extend("v1", 2)
    assert world.seen() == [] and host.calls == []


# -- reset-state -----------------------------------------------------------------------------


def test_reset_state_records_old_and_new(service):
    service.create(size=1, name="v1")
    done = service.reset_state("v1", status="error", attach_status="attached")
    assert (done.volume.status, done.volume.attach_status, done.volume.previous_status) == ("error", "attached", "available")
    last = service.history("v1")[-1]
    assert (last.action, last.from_status, last.to_status) == ("reset-state", "available", "error")
    assert "available -> error" in last.detail and "detached -> attached" in last.detail


@pytest.mark.parametrize("status", ["creating", "deleting", "maintenance", "error_deleting", "in-use", "available"])
def test_reset_state_from_any_state(service, status):
    service.create(size=1, name="v1")
    service.reset_state("v1", status="extending")
    assert service.reset_state("v1", status=status).volume.status == status


def test_reset_state_to_available_warns_about_a_target_left_on_the_host(service, world):
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    service.reset_state("v1", status="error")
    done = service.reset_state("v1", status="available")
    assert any(world.target_of(volume) in n and "still exported" in n for n in done.notes)
    service.unexport("v1")
    service.reset_state("v1", status="error")
    assert service.reset_state("v1", status="available").notes == ()


def test_reset_state_to_available_warns_about_live_attachments(service):
    attached(service)
    done = service.reset_state("v1", status="available")
    assert any("live attachment" in n for n in done.notes)


def test_reset_state_rejects_unknown_statuses(service):
    service.create(size=1, name="v1")
    with pytest.raises(UsageError):
        service.reset_state("v1", status="broken")
    with pytest.raises(UsageError):
        service.reset_state("v1", status="available", attach_status="glued")
    assert service.show("v1").status == "available"

