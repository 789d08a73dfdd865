"""`volctl restore` against the fake host: what it re-creates, what it leaves alone, partial
failures, exit codes and JSON; and the same code behind `doctor --repair`."""

from __future__ import annotations

import pytest
from conftest import INITIATOR_1, INITIATOR_2

from volctl.doctor import Doctor
from volctl.restore import Restorer

PREFIX = "iqn.2010-10.org.openstack:"
RTS = "cinder-rtstool"


def iqn_of(volume) -> str:
    return f"{PREFIX}volume-{volume.id}"


def exported(service, name: str, *initiators: str):
    volume = service.create(size=1, name=name).volume
    if not initiators:
        service.export(name)
    for initiator in initiators:
        service.connect(name, {"initiator": initiator})
    return service.show(name)


def reboot(host) -> None:
    """What a reboot (or `targetctl clear`) leaves: LVs there but inactive, no target."""
    host.targets.clear()
    for lv in host.lvs.values():
        lv["attr"] = lv["attr"][:4] + "-" + lv["attr"][5:]
    host._mirror_configfs()


def rtstool_calls(host) -> list[list[str]]:
    return [c[1:] for c in host.commands(RTS)]


def test_after_a_reboot_every_export_comes_back_with_its_acls_and_chap(service, host, save_file):
    v1 = exported(service, "v1", INITIATOR_1, INITIATOR_2)
    v2 = exported(service, "v2")
    before = {iqn: dict(t.acls) for iqn, t in host.targets.items()}
    reboot(host)
    host.calls.clear()

    report = Restorer(service).run()

    assert (report.restored, report.present, report.failed, report.exit_code) == (("v1", "v2"), (), (), 0)
    assert {iqn: dict(t.acls) for iqn, t in host.targets.items()} == before  # same initiators, same CHAP
    assert all(lv["attr"][4] == "a" for lv in host.lvs.values())
    # one lvs for the VG, the LVs activated as Cinder's ensure_export does, one save at the very end
    assert host.calls[0][:1] == ["lvs"] and len(host.commands("lvs")) == 1
    assert [c for c in host.calls if c[0] == "lvchange"] == [
        ["lvchange", "-a", "y", "--yes", "-K", f"cinder-volumes/volume-{v.id}"] for v in (v1, v2)]
    saves = [c for c in rtstool_calls(host) if c[0] == "save"]
    assert saves == [["save", str(save_file)]] and rtstool_calls(host)[-1] == ["save", str(save_file)]
    assert host.saved.keys() == before.keys()
    assert "re-created" in service.history("v1")[-1].detail


def test_restore_twice_changes_nothing_the_second_time(service, host):
    exported(service, "v1", INITIATOR_1)
    reboot(host)
    Restorer(service).run()
    host.calls.clear()

    report = Restorer(service).run()

    assert (report.restored, report.present, report.saved, report.exit_code) == ((), ("v1",), False, 0)
    assert [c[0] for c in host.calls] == ["lvs"]  # nothing but looking


def test_only_missing_acls_are_added_to_a_live_target(service, host):
    v1 = exported(service, "v1", INITIATOR_1, INITIATOR_2)
    iqn = iqn_of(v1)
    del host.targets[iqn].acls[INITIATOR_2]
    host._mirror_configfs()
    host.calls.clear()

    report = Restorer(service).run()

    assert report.restored == ("v1",)
    assert [c[0] for c in rtstool_calls(host)] == ["add-initiator", "save"]
    assert rtstool_calls(host)[0][-1] == INITIATOR_2
    assert set(host.targets[iqn].acls) == {INITIATOR_1, INITIATOR_2}


def test_a_missing_lv_fails_that_volume_only_and_exits_6_naming_it(service, host):
    exported(service, "v1", INITIATOR_1)
    gone = exported(service, "v2", INITIATOR_1)
    exported(service, "v3")
    reboot(host)
    del host.lvs[("cinder-volumes", f"volume-{gone.id}")]

    report = Restorer(service).run()

    assert report.restored == ("v1", "v3")
    [failure] = report.failed
    assert failure.volume == "v2" and f"volume-{gone.id}" in failure.error and "missing" in failure.error
    assert report.exit_code == 6
    assert iqn_of(gone) not in host.targets and len(host.targets) == 2
    assert report.saved  # the others survive the next reboot even though one failed


def test_a_failing_create_does_not_stop_the_others(service, host):
    v1 = exported(service, "v1", INITIATOR_1)
    exported(service, "v2", INITIATOR_1)
    reboot(host)
    host.fail(lambda argv: argv[:2] == [RTS, "create"] and iqn_of(v1) in argv, exit_code=1, stderr="RTSLibError: boom")

    report = Restorer(service).run()

    assert report.restored == ("v2",)
    assert [f.volume for f in report.failed] == ["v1"] and "boom" in report.failed[0].error
    assert report.exit_code == 6


def test_a_volume_whose_state_needs_doctor_exits_5_and_the_rest_are_restored(service, host):
    exported(service, "v1", INITIATOR_1)
    exported(service, "v2")
    service.reset_state("v2", status="error_deleting")
    reboot(host)

    report = Restorer(service).run()

    assert report.restored == ("v1",)
    assert [f.volume for f in report.failed] == ["v2"] and "doctor" in report.failed[0].error
    assert report.exit_code == 5


def test_a_host_failure_wins_over_a_state_problem(service, host):
    exported(service, "v1")
    gone = exported(service, "v2")
    service.reset_state("v1", status="maintenance")
    reboot(host)
    del host.lvs[("cinder-volumes", f"volume-{gone.id}")]
    assert Restorer(service).run().exit_code == 6


def test_a_failed_save_exits_6_but_keeps_what_was_restored_live(service, host):
    v1 = exported(service, "v1", INITIATOR_1)
    reboot(host)
    host.fail([RTS, "save"], exit_code=1, stderr="OSError: [Errno 28] No space left on device")

    report = Restorer(service).run()

    assert report.restored == ("v1",) and not report.saved and "No space left" in report.save_error
    assert report.exit_code == 6
    assert iqn_of(v1) in host.targets


def test_named_volumes_only_and_unknown_names_change_nothing(service, host):
    from volctl.errors import NotFound

    exported(service, "v1")
    exported(service, "v2")
    reboot(host)
    with pytest.raises(NotFound):
        Restorer(service).run(["v1", "nosuch"])
    assert host.targets == {}

    report = Restorer(service).run(["v2"])
    assert report.restored == ("v2",) and len(host.targets) == 1


def test_a_named_volume_without_a_recorded_export_exits_5(service, host):
    service.create(size=1, name="plain")
    report = Restorer(service).run(["plain"])
    assert report.exit_code == 5 and "no recorded export" in report.failed[0].error
    assert host.commands(RTS) == []


def test_unrecorded_and_foreign_targets_are_never_touched(service, host):
    exported(service, "v1", INITIATOR_1)
    host.targets["iqn.2003-01.org.linux-iscsi.other:sn.1"] = type(next(iter(host.targets.values())))("/dev/sdz")
    orphan = f"{PREFIX}volume-00000000-0000-4000-8000-000000000000"
    host.add_lv("cinder-volumes", "scratch-0", 1)  # rtslib needs a real block device behind a target
    host.run([RTS, "create", "/dev/cinder-volumes/scratch-0", orphan, "u", "p", "False"])
    host.calls.clear()

    Restorer(service).run()

    assert not [c for c in rtstool_calls(host) if c[0] in ("delete", "delete-initiator")]
    assert orphan in host.targets and "iqn.2003-01.org.linux-iscsi.other:sn.1" in host.targets


def test_a_live_target_without_its_lun_is_replaced_with_its_acls(service, host, configfs):
    """What targetctl restore leaves when the LV was not active yet, or when Debian's rtslib could
    not read the storage object: a target that carries no data."""
    v1 = exported(service, "v1", INITIATOR_1)
    exported(service, "v2", INITIATOR_1)
    host.targets[iqn_of(v1)].lun = False
    host._mirror_configfs()
    host.calls.clear()

    report = Restorer(service).run()

    assert (report.restored, report.present, report.exit_code) == (("v1",), ("v2",), 0)
    assert [c[:2] for c in rtstool_calls(host)] == [["delete", iqn_of(v1)], ["create", f"/dev/cinder-volumes/volume-{v1.id}"],
                                                    ["get-targets"], ["add-initiator", iqn_of(v1)], ["save", str(host.save_file)]]
    assert (configfs / iqn_of(v1) / "tpgt_1" / "lun" / "lun_0").is_dir()
    assert "without LUN 0" in service.history("v1")[-1].detail


def test_thin_and_activation_skip_lvs_are_activated_with_K_before_export(make_service, host, settings):
    from dataclasses import replace

    thin = replace(settings, lvm_type="thin")
    svc = make_service(settings=thin)
    volume = svc.create(size=1, name="t1").volume
    svc.connect("t1", {"initiator": INITIATOR_1})
    reboot(host)
    key = ("cinder-volumes", f"volume-{volume.id}")
    host.lvs[key]["attr"] = "Vwi---tz-k"  # thin, inactive, activation skip: vgchange -aay leaves it so
    host.calls.clear()

    report = Restorer(svc).run()

    assert report.restored == ("t1",)
    assert host.lvs[key]["attr"][4] == "a"
    calls = [c[0] for c in host.calls]
    assert calls.index("lvchange") < next(i for i, c in enumerate(host.calls) if c[:2] == [RTS, "create"])
    assert ["lvchange", "-a", "y", "--yes", "-K", f"cinder-volumes/volume-{volume.id}"] in host.calls


def test_doctor_repair_rebuilds_exports_through_restore(service, host, monkeypatch):
    exported(service, "v1", INITIATOR_1)
    reboot(host)
    used = []
    original = type(service).restore_export
    monkeypatch.setattr(type(service), "restore_export",
                        lambda self, volume_id, lvs=None: used.append(self.show(volume_id).name) or original(self, volume_id, lvs))

    doctor = Doctor(service)
    report = doctor.repair(doctor.examine())

    assert report.clean and used == ["v1"]
    assert host.lvs and all(lv["attr"][4] == "a" for lv in host.lvs.values())
    assert list(host.targets.values())[0].acls.keys() == {INITIATOR_1}


# -- the CLI ---------------------------------------------------------------------------------


def test_cli_restore_json_and_exit_codes(volctl, host):
    assert volctl("create", "--size", "1", "--name", "v1").exit_code == 0
    assert volctl("create", "--size", "1", "--name", "v2").exit_code == 0
    assert volctl("connect", "v1", "--initiator", INITIATOR_1).exit_code == 0
    assert volctl("export", "v2").exit_code == 0
    reboot(host)
    del host.lvs[next(k for k in host.lvs if k[1].endswith(volctl("--json", "show", "v2").json()["id"]))]

    result = volctl("restore", "--json")

    assert result.exit_code == 6
    document = result.json()
    assert document["restored"] == ["v1"] and document["present"] == []
    assert [f["volume"] for f in document["failed"]] == ["v2"] and "missing" in document["failed"][0]["error"]
    assert document["saved"] is True
    password = volctl("--json", "show", "v1", "--show-secrets").json()["provider_auth"].split()[-1]
    assert password not in result.stdout + result.stderr

    again = volctl("restore", "v1")
    assert again.exit_code == 0 and "present" in again.stdout and "v1" in again.stdout
    assert volctl("restore", "nosuch").exit_code == 3


def test_doctor_reports_a_target_without_its_lun_and_repair_replaces_it(service, host, configfs):
    v1 = exported(service, "v1", INITIATOR_1)
    host.targets[iqn_of(v1)].lun = False
    host._mirror_configfs()
    doctor = Doctor(service)
    report = doctor.examine()
    assert [d.kind for d in report.drift] == ["lun_missing"] and not report.clean
    assert doctor.repair(report).clean
    assert (configfs / iqn_of(v1) / "tpgt_1" / "lun" / "lun_0").is_dir() and host.targets[iqn_of(v1)].acls.keys() == {INITIATOR_1}


def test_restore_of_everything_touches_only_recorded_exports_beside_unexported_volumes(service, host, save_file):
    """An inventory that also holds volumes never exported and one unexported since: restore
    brings back the recorded exports only, asks nothing of the others and exits 0."""
    v1 = exported(service, "v1", INITIATOR_1)
    service.create(size=1, name="never")
    exported(service, "gone", INITIATOR_2)
    service.disconnect("gone", {"initiator": INITIATOR_2})
    service.unexport("gone")
    service.create(size=2, name="never2")
    reboot(host)
    host.calls.clear()
    history = {name: len(service.history(name)) for name in ("never", "gone", "never2")}

    report = Restorer(service).run()

    assert (report.restored, report.present, report.failed, report.exit_code) == (("v1",), (), (), 0)
    assert set(host.targets) == {iqn_of(v1)} and set(host.targets[iqn_of(v1)].acls) == {INITIATOR_1}
    assert [c for c in host.calls if c[0] == "lvchange"] == [
        ["lvchange", "-a", "y", "--yes", "-K", f"cinder-volumes/volume-{v1.id}"]]
    assert {name: len(service.history(name)) for name in history} == history
    assert all(service.show(name).provider_location is None for name in history)


def test_cli_restore_of_everything_beside_unexported_volumes_exits_0(volctl, service, host):
    exported(service, "v1", INITIATOR_1)
    service.create(size=1, name="never")
    reboot(host)
    result = volctl("restore", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert (result.json()["restored"], result.json()["failed"]) == (["v1"], [])


# -- a saved config that exists but cannot be read --------------------------------------------------

UNREADABLE = {
    "not_json": b"{not json",
    "truncated": b'{"targets": [{"wwn": "iqn.2010-10.org.openstack:volume-',
    "not_utf8": b"\xff\xfe\x00{}",
    "not_an_object": b"[]",
    "empty": b"",
}


@pytest.mark.parametrize("how", sorted(UNREADABLE))
def test_an_unreadable_saved_config_is_reported_and_rewritten_never_passed_as_fine(world, how):
    """restore (after a reboot, and with everything still live) rewrites it whole, and says it
    saved; doctor reports it; doctor --repair writes a good one; none reports success while it
    stays unreadable."""
    from pathlib import Path

    service = world.make_service()
    saved_file = Path(world.persisted_to)

    def corrupt():
        saved_file.write_bytes(UNREADABLE[how])

    def readable() -> bool:
        return world.persisted() is not None

    v1 = exported(service, "v1", INITIATOR_1)
    target = world.target_of(v1)
    expected = {target: {INITIATOR_1}}

    # doctor reports it, and its repair writes a good one
    corrupt()
    report = Doctor(service).examine()
    assert not report.clean and [d.kind for d in report.drift] == ["saved_config"], report.drift
    assert str(saved_file) in report.drift[0].subject
    repaired = Doctor(service).repair(report)
    assert all(d.repaired and d.error is None for d in repaired.drift), repaired.drift
    assert readable() and world.persisted() == expected and Doctor(service).examine().clean

    # restore with everything live: it does not call the save file fine, it rewrites it
    corrupt()
    report = Restorer(service).run()
    assert (report.present, report.saved, report.save_error, report.exit_code) == (("v1",), True, None, 0)
    assert world.persisted() == expected and Doctor(service).examine().clean

    # restore after a reboot: the export comes back and the save file with it
    corrupt()
    world.lose(target)
    report = Restorer(service).run()
    assert (report.restored, report.saved, report.exit_code) == (("v1",), True, 0)
    assert world.live() == expected == world.persisted() and Doctor(service).examine().clean
