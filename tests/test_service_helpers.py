"""The service's use cases, restore and doctor at the target-helper seam: every service gets a
FakeTarget (tests/faketarget.py) on one shared in-memory LIO, as every volctl process gets its own
helper on the host's one LIO. The assertions are about behaviour (the inventory, what LIO holds,
what the saved config holds, one persist per command), not about any helper's command lines;
LVM is still the FakeHost's, and no cinder-rtstool may run."""

from __future__ import annotations

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, lio_of, was_volctls
from faketarget import FakeLio, FakeLioTarget

from volctl import iscsi
from volctl.config import Settings
from volctl.doctor import Doctor
from volctl.errors import TargetFailed
from volctl.restore import Restorer
from volctl.targets import FAMILIES, Targets

PREFIX = "iqn.2010-10.org.openstack:"
VG = "cinder-volumes"
ORPHAN_IQN = f"{PREFIX}volume-0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f"


@pytest.fixture
def lio(configfs) -> FakeLio:
    return FakeLio(configfs)


@pytest.fixture
def make_service(make_service, lio):
    """conftest's services, each with its own FakeLioTarget in place of the helper its settings
    chose, on the same paths, lock and iSCSI settings (the `targets` registry is replaced)."""
    def make(**overrides):
        service = make_service(**overrides)
        chosen = lio_of(service)
        fake = FakeLioTarget(chosen.lock, chosen.configfs, chosen.save_file, lio, iscsi=chosen.iscsi, host_root=chosen.host_root)
        service.__dict__["targets"] = Targets({"lio": lambda: fake}, {**FAMILIES, fake.name: "lio"}, "lio")
        return service

    return make


@pytest.fixture(autouse=True)
def _no_rtstool(host):
    yield
    assert host.commands("cinder-rtstool") == []  # the helper is the only way to LIO


def iqn_of(volume) -> str:
    return PREFIX + volume.lv_name


def chap_of(service, name="v1") -> iscsi.Chap:
    return iscsi.parse_provider_auth(service.show(name).provider_auth)


def notes(service, ref="v1") -> list[str]:
    return [e.detail for e in service.history(ref) if e.kind == "note"]


def attached(service, name="v1", initiator=INITIATOR_1):
    service.create(size=1, name=name)
    service.reserve(name)
    service.connect(name, {"initiator": initiator})
    service.attach(name, instance=INSTANCE_1, host="compute1", initiator=initiator)
    return service.show(name)


def once(lio, run):
    """What `run` did, given that it wrote the saved config exactly once, for these targets."""
    lio.saves.clear()
    result = run()
    [(kind, iqns)] = lio.saves
    return result, kind, iqns


def agrees(service) -> bool:
    return lio_of(service).unsaved() == []


# -- export / connect -------------------------------------------------------------------------


def test_create_touches_no_target(service, lio):
    service.create(size=1, name="v1")
    assert lio.live == {} and lio.calls == [] and lio.saves == []


def test_export_makes_the_target_and_persists_it_once(service, lio):
    volume = service.create(size=1, name="v1").volume
    iqn = iqn_of(volume)
    done, kind, iqns = once(lio, lambda: service.export("v1"))
    assert done.changed and (kind, iqns) == ("persist", {iqn})
    target = lio.live[iqn]
    assert (target.device, target.portals, target.iser, target.acls, target.lun) == (volume.lv_path, ("127.0.0.1:3260",), False, {}, True)
    after = service.show("v1")
    assert after.provider_location == iscsi.provider_location(("127.0.0.1",), 3260, iqn)
    assert chap_of(service) is not None
    assert agrees(service) and all(c.locked for c in lio.calls)


def test_export_with_iser_and_a_second_portal(make_service, lio):
    service = make_service(settings=Settings(lvm_udev="on", target_protocol="iser", target_secondary_ip_addresses=("fd00::5",)))
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    target = lio.live[iqn_of(volume)]
    assert target.iser and target.portals == ("127.0.0.1:3260", "[fd00::5]:3260")


def test_export_of_a_live_exported_volume_changes_nothing(service, lio):
    service.create(size=1, name="v1")
    service.export("v1")
    lio.calls.clear()
    lio.saves.clear()
    done = service.export("v1")
    assert not done.changed and "already exported" in done.notes[0]
    assert [c.primitive for c in lio.calls] == [] and lio.saves == []


def test_export_records_a_live_target_a_killed_export_left_and_persists_it(service, lio):
    volume = service.create(size=1, name="v1").volume
    iqn = iqn_of(volume)
    lio.make(iqn, volume.lv_path)  # live, but neither recorded nor (maybe) saved
    done, kind, iqns = once(lio, lambda: service.export("v1"))
    assert not done.changed and (kind, iqns) == ("persist", {iqn})
    assert "create" not in lio.primitives()
    assert service.show("v1").provider_location and agrees(service)


def test_connect_of_a_new_volume_persists_target_and_acl_once(service, lio):
    volume = service.create(size=1, name="v1").volume
    iqn = iqn_of(volume)
    done, kind, iqns = once(lio, lambda: service.connect("v1", {"initiator": INITIATOR_1}))
    assert (kind, iqns) == ("persist", {iqn})
    chap = chap_of(service)
    assert lio.live[iqn].acls == {INITIATOR_1: chap}
    assert lio.saved[iqn].acls == {INITIATOR_1: chap}
    assert (done.data["data"]["auth_username"], done.data["data"]["auth_password"]) == (chap.username, chap.password)
    assert [c.initiator for c in service.show("v1").connections] == [INITIATOR_1]


def test_a_second_connect_adds_an_acl_with_the_same_chap(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    _, kind, iqns = once(lio, lambda: service.connect("v1", {"initiator": INITIATOR_2}))
    assert (kind, iqns) == ("persist", {iqn_of(volume)})
    chap = chap_of(service)
    assert lio.live[iqn_of(volume)].acls == {INITIATOR_1: chap, INITIATOR_2.lower(): chap}
    assert agrees(service)


def test_an_export_whose_create_fails_midway_leaves_no_target(service, lio):
    volume = service.create(size=1, name="v1").volume
    iqn = iqn_of(volume)
    lio.fail("create", effect=True)  # the target is made, then the helper fails
    with pytest.raises(TargetFailed) as info:
        once(lio, lambda: service.export("v1"))
    assert info.value.exit_code == 6
    assert iqn not in lio.live and lio.saves == [("persist", {iqn})]  # the undo's change set
    assert service.show("v1").provider_location is None
    assert f"undid target {iqn}" in notes(service)


def test_a_connect_whose_acl_fails_records_nothing(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    lio.fail("add_initiator")
    lio.saves.clear()
    with pytest.raises(TargetFailed):
        service.connect("v1", {"initiator": INITIATOR_1})
    assert service.show("v1").connections == () and lio.live[iqn_of(volume)].acls == {}
    assert service.show("v1").provider_location  # the export was there before; it stays
    assert lio.saves == []


def test_a_connect_whose_persist_fails_drops_the_export_it_made(service, lio):
    volume = service.create(size=1, name="v1").volume
    iqn = iqn_of(volume)
    lio.fail("persist", times=1)
    with pytest.raises(TargetFailed) as info:
        service.connect("v1", {"initiator": INITIATOR_1})
    assert info.value.exit_code == 6
    assert iqn not in lio.live and lio.saves == [("persist", {iqn})]  # the undo's, which worked
    after = service.show("v1")
    assert (after.provider_location, after.connections) == (None, ())
    assert agrees(service)


# -- taking away ------------------------------------------------------------------------------


def test_detach_of_the_last_attachment_removes_the_target_with_one_persist(service, lio):
    volume = attached(service)
    done, kind, iqns = once(lio, lambda: service.detach("v1"))
    assert (kind, iqns) == ("persist", {iqn_of(volume)}) and done.data["export_removed"]
    assert iqn_of(volume) not in lio.live and iqn_of(volume) not in lio.saved
    after = service.show("v1")
    assert (after.status, after.attach_status, after.provider_location, after.connections) == ("available", "detached", None, ())


def test_disconnect_removes_the_acl_with_one_persist(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    service.connect("v1", {"initiator": INITIATOR_2})
    done, kind, iqns = once(lio, lambda: service.disconnect("v1", {"initiator": INITIATOR_1}))
    assert done.changed and (kind, iqns) == ("persist", {iqn_of(volume)})
    assert list(lio.live[iqn_of(volume)].acls) == [INITIATOR_2.lower()] == list(lio.saved[iqn_of(volume)].acls)
    assert [c.initiator for c in service.show("v1").connections] == [INITIATOR_2]


def test_disconnect_of_an_acl_that_is_not_there(service, lio):
    service.create(size=1, name="v1")
    service.export("v1")
    done, kind, _ = once(lio, lambda: service.disconnect("v1", {"initiator": INITIATOR_1}))
    assert not done.changed and kind == "persist"
    assert f"ACL for {INITIATOR_1} was not there" in notes(service)


def test_unexport_removes_the_target_and_keeps_the_credentials(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    auth = service.show("v1").provider_auth
    done, kind, iqns = once(lio, lambda: service.unexport("v1"))
    assert (kind, iqns) == ("persist", {iqn_of(volume)})
    assert lio.live == {} and lio.saved == {}
    assert (done.volume.provider_location, done.volume.connections, done.volume.provider_auth) == (None, (), auth)


def test_delete_of_an_exported_volume_removes_its_target_with_one_persist(service, lio, host):
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    _, kind, iqns = once(lio, lambda: service.delete("v1"))
    assert (kind, iqns) == ("persist", {iqn_of(volume)})
    assert lio.live == {} and lio.saved == {} and host.lvs == {}


def test_delete_of_a_volume_never_exported_persists_nothing(service, lio, host):
    service.create(size=1, name="v1")
    service.delete("v1")
    assert lio.saves == [] and host.lvs == {}


@pytest.mark.parametrize("command", ["unexport", "disconnect", "detach"])
def test_a_removal_whose_persist_fails_is_recorded_and_exits_6(volctl, service, lio, command):
    volume = attached(service) if command == "detach" else service.create(size=1, name="v1").volume
    if command != "detach":
        service.connect("v1", {"initiator": INITIATOR_1})
    iqn = iqn_of(volume)
    lio.fail("persist")
    args = {"unexport": ["unexport", "v1"], "disconnect": ["disconnect", "v1", "--initiator", INITIATOR_1],
            "detach": ["detach", "v1"]}[command]
    result = volctl(*args)
    assert result.exit_code == 6 and "fake LIO: persist failed" in result.stderr
    after = service.show("v1")
    assert after.connections == ()  # the inventory never claims what the host no longer has
    if command == "disconnect":
        assert lio.live[iqn].acls == {} and after.provider_location
    else:
        assert iqn not in lio.live and after.provider_location is None
    if command == "detach":
        assert (after.status, after.attach_status) == ("available", "detached")
    assert "could not be saved" in notes(service)[-1]
    assert lio_of(service).unsaved() == [iqn]  # stale until a save works: doctor says so
    lio.failures.clear()
    report = Doctor(service).examine()
    assert [(d.kind, d.repair) for d in report.drift] == [("saved_config", "save it")]
    repaired = Doctor(service).repair(report)
    assert repaired.clean and lio.saves[-1][0] == "save" and agrees(service)


# -- restore ----------------------------------------------------------------------------------


def reboot(lio, host) -> None:
    """No live target, every LV inactive; the inventory and the saved config stay."""
    lio.reboot()
    for lv in host.lvs.values():
        lv["attr"] = lv["attr"][:4] + "-" + lv["attr"][5:]


def test_restore_brings_every_export_back_with_its_acls_in_one_persist(service, lio, host):
    v1 = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    service.connect("v1", {"initiator": INITIATOR_2})
    v2 = service.create(size=1, name="v2").volume
    service.export("v2")
    before = {iqn: t.copy() for iqn, t in lio.live.items()}
    reboot(lio, host)
    lio.calls.clear()
    report, kind, iqns = once(lio, lambda: Restorer(service).run())
    assert (report.restored, report.failed, report.exit_code) == (("v1", "v2"), (), 0)
    assert (kind, iqns) == ("persist", {iqn_of(v1), iqn_of(v2)})
    assert lio.live == before  # same device, portals, initiators and CHAP
    assert all(c.locked for c in lio.calls) and agrees(service)
    again = Restorer(service).run()
    assert (again.restored, again.present) == ((), ("v1", "v2")) and len(lio.saves) == 1


def test_restore_replaces_a_target_left_without_its_lun(service, lio, host):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    iqn = iqn_of(volume)
    lio.live[iqn].lun = False  # a boot restore that ran before the LV was active
    lio.mirror()
    lio.calls.clear()
    report, kind, iqns = once(lio, lambda: Restorer(service).run())
    assert report.restored == ("v1",) and (kind, iqns) == ("persist", {iqn})
    assert lio.primitives() == ["delete", "create", "add_initiator", "persist"]
    assert lio.live[iqn].lun and lio.live[iqn].acls == {INITIATOR_1: chap_of(service)}


def test_restore_with_nothing_lost_but_a_stale_saved_config_saves_it_whole(service, lio, save_file):
    service.create(size=1, name="v1")
    service.export("v1")
    save_file.unlink()  # e.g. lio_save_file was pointed at the file the host's unit restores
    report, kind, _ = once(lio, lambda: Restorer(service).run())
    assert (report.restored, report.present, report.saved) == ((), ("v1",), True)
    assert kind == "save" and agrees(service)


def test_restore_whose_persist_fails_exits_6_with_the_targets_back(service, lio, host):
    volume = service.create(size=1, name="v1").volume
    service.export("v1")
    reboot(lio, host)
    lio.fail("persist")
    report = Restorer(service).run()
    assert report.restored == ("v1",) and report.exit_code == 6 and "persist failed" in report.save_error
    assert iqn_of(volume) in lio.live


# -- doctor -----------------------------------------------------------------------------------


def test_doctor_finds_a_host_that_agrees_clean(service, lio):
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    attached(service, "v2", INITIATOR_2)
    service.create(size=1, name="v3")
    lio.saves.clear()
    report = Doctor(service).examine()
    assert report.drift == () and lio.saves == []
    assert Doctor(service).repair(report).drift == () and lio.saves == []


def test_doctor_repair_recreates_lost_targets_with_their_acls_in_one_save(service, lio, save_file):
    v1 = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    v2 = service.create(size=1, name="v2").volume
    service.export("v2")
    before = {iqn: t.copy() for iqn, t in lio.live.items()}
    lio.reboot()
    report = Doctor(service).examine()
    assert sorted((d.kind, d.subject) for d in report.drift) == sorted([
        ("saved_config", str(save_file)), ("target_missing", iqn_of(v1)), ("target_missing", iqn_of(v2))])
    repaired, kind, iqns = once(lio, lambda: Doctor(service).repair(report))
    assert repaired.clean and (kind, iqns) == ("save", {iqn_of(v1), iqn_of(v2)})
    assert lio.live == before and agrees(service)
    assert Doctor(service).examine().drift == ()


def test_doctor_repair_replaces_a_target_without_its_lun_in_one_persist(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    iqn = iqn_of(volume)
    lio.live[iqn].lun = False
    lio.mirror()
    report = Doctor(service).examine()
    assert [(d.kind, d.subject) for d in report.drift] == [("lun_missing", iqn)]  # the saved config still agrees
    repaired, kind, iqns = once(lio, lambda: Doctor(service).repair(report))
    assert repaired.clean and (kind, iqns) == ("persist", {iqn})
    assert lio.live[iqn].lun and lio.live[iqn].acls == {INITIATOR_1: chap_of(service)}


def test_doctor_repair_deletes_an_orphan_without_acls_and_saves_whole(service, lio):
    service.create(size=1, name="v1")
    service.export("v1")
    was_volctls(service, "0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f")
    lio.make(ORPHAN_IQN, f"/dev/{VG}/scratch")  # a volume's the inventory had, never saved
    report = Doctor(service).examine()
    assert sorted(d.kind for d in report.drift) == ["saved_config", "target_orphaned"]
    repaired, kind, iqns = once(lio, lambda: Doctor(service).repair(report))
    assert repaired.clean and ORPHAN_IQN not in lio.live
    assert kind == "save" and ORPHAN_IQN not in iqns  # a whole save: the saved config differed
    assert Doctor(service).examine().drift == ()


def test_doctor_leaves_an_orphan_with_an_acl_alone(service, lio):
    was_volctls(service, "0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f")
    lio.make(ORPHAN_IQN, f"/dev/{VG}/scratch", INITIATOR_1)
    lio.calls.clear()
    report = Doctor(service).examine()
    orphan = [d for d in report.drift if d.kind == "target_orphaned"]
    assert orphan[0].repair is None and INITIATOR_1 in orphan[0].detail
    Doctor(service).repair(report)
    assert ORPHAN_IQN in lio.live and "delete" not in lio.primitives()


def test_doctor_repair_saves_a_saved_config_that_lost_an_acl(service, lio, save_file):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    stale = {iqn: t.copy() for iqn, t in lio.saved.items()}
    stale[iqn_of(volume)].acls.clear()
    lio.write(save_file, stale)
    report = Doctor(service).examine()
    assert [(d.kind, d.detail) for d in report.drift] == [
        ("saved_config", f"the saved LIO config differs from the running one for: {iqn_of(volume)}")]
    repaired, kind, _ = once(lio, lambda: Doctor(service).repair(report))
    assert repaired.clean and kind == "save" and lio.saved[iqn_of(volume)].acls == lio.live[iqn_of(volume)].acls


def test_doctor_repair_adds_a_lost_acl_again(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    chap = chap_of(service)
    del lio.live[iqn_of(volume)].acls[INITIATOR_1]
    lio.mirror()
    report = Doctor(service).examine()
    assert sorted(d.kind for d in report.drift) == ["acl_missing", "saved_config"]
    assert Doctor(service).repair(report).clean
    assert lio.live[iqn_of(volume)].acls == {INITIATOR_1: chap} and agrees(service)


def test_reset_state_warns_of_a_live_target_through_the_helper(service, lio):
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", {"initiator": INITIATOR_1})
    service.reset_state("v1", status="error")
    done = service.reset_state("v1", status="available")
    assert any(iqn_of(volume) in n and "still exported" in n for n in done.notes)
    assert any(INITIATOR_1 in n and "ACLs" in n for n in done.notes)
