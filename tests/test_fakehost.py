"""The fake host refuses what the real programs refuse, so a flow test cannot pass on a command line
that LVM, dd or cinder-rtstool would reject; and it answers every command line volctl builds."""

from __future__ import annotations

import logging

import pytest
from fakehost import FakeHost, FakeTarget

from volctl.errors import CommandFailed, ToolMissing
from volctl.iscsi import Chap
from volctl.targets.lioadm import LioAdm as LioTarget
from volctl.locks import FileLock
from volctl.lvm import GIB, Lvm

VG = "cinder-volumes"
LV = "volume-8a3e3f4c-6f1b-4b7e-9d61-0c1f2a3b4c5d"
IQN = f"iqn.2010-10.org.openstack:{LV}"
INITIATOR = "iqn.1994-05.com.redhat:client1"
SECRET = "Jo57JJGdFmiLqNtK"
CHAP = Chap("u" * 20, SECRET)


@pytest.fixture
def host(tmp_path) -> FakeHost:
    configfs = tmp_path / "configfs"
    configfs.mkdir()
    return FakeHost(vg=VG, configfs=configfs, save_file=tmp_path / "saveconfig.json")


def answer(host: FakeHost, *argv: str) -> tuple[int, str, str]:
    return host.answer(list(argv))


def refused(host: FakeHost, *argv: str, code: int) -> str:
    """The command exits `code`, changes nothing, and explains itself the way the tool does."""
    before = host.to_state()
    exit_code, out, err = answer(host, *argv)
    assert exit_code == code, (argv, exit_code, out, err)
    assert host.to_state() == before
    return out + err


# -- every command line volctl builds is accepted ---------------------------------------------------


def test_volctls_own_command_lines_all_work(host, tmp_path):
    lvm = Lvm(host, VG)
    lvm.create(LV, 2)
    assert lvm.get(LV).size_bytes == 2 * GIB
    lvm.extend(LV, 3)
    assert lvm.get(LV).size_bytes == 3 * GIB
    assert lvm.volume_group().free_bytes == 97 * GIB
    seen: list[int] = []
    lvm.clear(LV, 3 * GIB, seen.append)
    assert seen[-1] == 3 * GIB
    lvm.create_thin_pool(f"{VG}-pool")
    lvm.create("thin-1", 5, thin_pool=f"{VG}-pool")
    assert {lv.name for lv in lvm.list()} == {LV, f"{VG}-pool", "thin-1"}
    lvm.remove(LV)
    assert lvm.get(LV) is None
    host.fail(["lvremove"], times=1)  # the retry with the second --config and udevadm settle
    lvm.remove("thin-1")
    assert [c[0] for c in host.calls[-3:]] == ["lvremove", "udevadm", "lvremove"]

    lio = LioTarget(host, FileLock(tmp_path / "lio.lock"), configfs=host.configfs, save_file=host.save_file)
    lvm.create(LV, 1)
    lio.create(lvm.path(LV), IQN, CHAP, iser=False, ips=["192.0.2.1", "2001:db8::1"], port=3260)
    assert lio.targets() == [IQN]
    assert host.targets[IQN].portals == ("192.0.2.1:3260", "[2001:db8::1]:3260")
    lio.add_initiator(IQN, CHAP, INITIATOR)
    assert lio.hosts(IQN) == [INITIATOR]
    assert lio.delete_initiator(IQN, INITIATOR) is True
    assert lio.delete_initiator(IQN, INITIATOR) is False
    lio.save()
    assert [t.iqn for t in lio.saved_targets()] == [IQN]
    lio.delete(IQN)
    assert lio.targets() == []


def test_a_failure_is_reported_by_the_real_runner_code(host, caplog):
    """FakeHost replaces only the start of the program: the masking, the -v log and the history
    record come from volctl.runner itself."""
    records = []
    host.on_command = records.append
    host.fail(["cinder-rtstool", "add-initiator"], exit_code=1, stderr=f"RTSLibError: bad password {SECRET}\n")
    with caplog.at_level(logging.DEBUG, logger="volctl"), pytest.raises(CommandFailed) as info:
        host.run(["cinder-rtstool", "add-initiator", IQN, "user", SECRET, INITIATOR], secrets=[SECRET])
    assert "run: cinder-rtstool add-initiator" in caplog.text and SECRET not in caplog.text
    assert SECRET not in str(info.value) and "***" in info.value.stderr
    assert records[0].argv[4] == "***" and records[0].exit_code == 1
    host.missing.add("lvs")
    with pytest.raises(ToolMissing):
        host.run(["lvs"])


# -- LVM -------------------------------------------------------------------------------------------


def test_lvcreate_extents_are_not_a_size(host):
    text = refused(host, "lvcreate", "-n", LV, VG, "-l", "1g", code=3)
    assert "Invalid argument for --extents: 1g" in text


def test_lvcreate_extents_count_4_mib_each(host):
    assert answer(host, "lvcreate", "-n", LV, VG, "-l", "256")[0] == 0
    assert host.lvs[(VG, LV)]["size"] == GIB


@pytest.mark.parametrize("argv, message", [
    (("-n", LV, VG, "-L", "1x"), "Invalid argument for --size: 1x"),
    (("-n", LV, VG, "-L", "-1g"), "Negative argument"),
    (("-n", LV, VG), "Please specify either size or extents"),
    (("-n", LV, VG, "-L", "1g", "-l", "256"), "not both"),
    (("-n", LV, "-L", "1g"), "volume group"),
    (("-n", LV, VG, "-L"), "requires argument"),
    (("--name", LV, VG, "--sise", "1g"), "not recognized"),
    (("-n", "-bad", VG, "-L", "1g"), "is invalid"),
    (("-n", LV, VG, "-L", "1g", "-Z", "maybe"), "Invalid argument for -Z"),
    (("-T", "-V", "1x", "-n", LV, f"{VG}/pool"), "Invalid argument for --virtualsize"),
])
def test_lvcreate_refuses_a_bad_command_line(host, argv, message):
    assert message in refused(host, "lvcreate", *argv, code=3)


def test_lvcreate_size_needs_space_and_a_known_vg(host):
    assert "insufficient free space" in refused(host, "lvcreate", "-n", LV, VG, "-L", "101g", code=5)
    assert "not found" in refused(host, "lvcreate", "-n", LV, "other-vg", "-L", "1g", code=5)
    assert "Failed to find" in refused(host, "lvcreate", "-T", "-V", "1g", "-n", LV, f"{VG}/no-pool", code=5)


def test_lvcreate_default_unit_is_mib_rounded_to_extents(host):
    assert answer(host, "lvcreate", "--name", LV, VG, "--size", "5")[0] == 0
    assert host.lvs[(VG, LV)]["size"] == 8 * 1024**2


@pytest.mark.parametrize("argv, code, message", [
    (("-L", "1g", f"{VG}/{LV}"), 5, "not larger than existing size"),
    (("-L", "2g", f"{VG}/{LV}"), 5, "matches existing size"),
    (("-L", "200g", f"{VG}/{LV}"), 5, "Insufficient free space"),
    (("-L", "3g", LV), 3, "Invalid logical volume path"),
    (("-L", "3g", f"{VG}/other"), 5, "Failed to find"),
    (("-l", "3g", f"{VG}/{LV}"), 3, "Invalid argument for --extents"),
    (("-L", "3g"), 3, "logical volume name"),
])
def test_lvextend_refuses_a_bad_command_line(host, argv, code, message):
    host.add_lv(VG, LV, 2)
    assert message in refused(host, "lvextend", *argv, code=code)


def test_lvextend_relative_size(host):
    host.add_lv(VG, LV, 2)
    assert answer(host, "lvextend", "-L", "+1g", f"{VG}/{LV}")[0] == 0
    assert host.lvs[(VG, LV)]["size"] == 3 * GIB


@pytest.mark.parametrize("argv, message", [
    (("-f",), "one or more logical volume paths"),
    (("--config", "activation { retry_deactivation = 1", "-f", f"{VG}/{LV}"), "Parse error"),
    (("--bogus", "-f", f"{VG}/{LV}"), "not recognized"),
])
def test_lvremove_refuses_a_bad_command_line(host, argv, message):
    host.add_lv(VG, LV, 1)
    assert message in refused(host, "lvremove", *argv, code=3)


def test_lvremove_without_force_would_ask_and_removes_nothing(host):
    host.add_lv(VG, LV, 1)
    assert "not removed" in refused(host, "lvremove", f"{VG}/{LV}", code=5)


def test_lvremove_of_a_whole_vg_is_never_what_volctl_means(host):
    with pytest.raises(AssertionError):
        answer(host, "lvremove", "-f", VG)


@pytest.mark.parametrize("tool, fields", [("lvs", "vg_name,lv_nmae"), ("vgs", "vg_name,vg_fre")])
def test_reports_refuse_unknown_fields(host, tool, fields):
    text = refused(host, tool, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, VG, code=5)
    assert "Unrecognised field" in text


def test_reports_answer_only_the_fields_asked_for(host):
    host.add_lv(VG, LV, 1)
    code, out, _ = answer(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,size", VG)
    assert code == 0 and '"lv": [{"lv_name": "%s", "lv_size": "%d"}]' % (LV, GIB) in out


def test_reports_in_a_format_the_fake_does_not_model_are_loud(host):
    with pytest.raises(AssertionError):
        answer(host, "lvs", "-o", "lv_name", VG)


# -- dd --------------------------------------------------------------------------------------------


def zero(of: str, count: int = GIB, *extra: str) -> list[str]:
    return ["dd", "if=/dev/zero", f"of={of}", f"count={count}", "bs=1M", "iflag=count_bytes", "oflag=direct",
            "status=progress", *extra]


def test_dd_onto_an_unknown_lv_fails_to_open(host):
    assert "failed to open" in refused(host, *zero(f"/dev/{VG}/{LV}"), code=1)


@pytest.mark.parametrize("device", [
    "/dev/vda", f"/dev/other-vg/{LV}", "/tmp/x",
    "/dev/mapper/cinder-volumes-x",  # '-' not doubled: VG "cinder"
    "/dev/mapper/other--vg-x",
    "/dev/mapper/cinder--volumes-" + LV.replace("-", "--") + "-tmeta",  # a layer volctl never writes
])
def test_dd_onto_anything_but_an_lv_is_never_what_volctl_means(host, device):
    host.add_lv(VG, LV, 1)
    with pytest.raises(AssertionError):
        answer(host, *zero(device))


def test_dd_past_the_end_of_the_lv_fails(host):
    host.add_lv(VG, LV, 1)
    assert "No space left on device" in refused(host, *zero(f"/dev/{VG}/{LV}", 2 * GIB), code=1)


@pytest.mark.parametrize("extra, message", [
    ("oflag=count_bytes", "invalid output flag: 'count_bytes'"),
    ("iflag=fast", "invalid input flag"),
    ("status=loud", "invalid status level"),
    ("bs=1Q", "invalid number"),
    ("size=1G", "unrecognized operand"),
    ("direct", "unrecognized operand"),
])
def test_dd_refuses_bad_operands(host, extra, message):
    host.add_lv(VG, LV, 1)
    assert message in refused(host, *zero(f"/dev/{VG}/{LV}"), extra, code=1)


# -- snapshots, activation, merge, copy ------------------------------------------------------------

SNAP = "_snapshot-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"


def mapper(name: str, layer: str = "") -> str:
    return f"/dev/mapper/{VG.replace('-', '--')}-{name.replace('-', '--')}{layer}"


def copy_argv(source: str, dest: str, count: int = GIB) -> list[str]:
    return ["dd", f"if={mapper(source)}", f"of={mapper(dest)}", f"count={count}", "bs=1M", "iflag=count_bytes,direct",
            "oflag=direct", "status=progress"]


def thick_origin(host: FakeHost, content: str = "origin-data") -> None:
    host.add_lv(VG, LV, 1)
    host.lvs[(VG, LV)]["content"] = content
    assert answer(host, "lvcreate", "--name", SNAP, "--snapshot", f"{VG}/{LV}", "-L", "1g")[0] == 0


def thin_origin(host: FakeHost) -> None:
    assert answer(host, "lvcreate", "-T", "-L", "10g", f"{VG}/pool")[0] == 0
    assert answer(host, "lvcreate", "-T", "-V", "2g", "-n", LV, f"{VG}/pool")[0] == 0
    host.lvs[(VG, LV)]["content"] = "thin-data"


def test_volctls_snapshot_command_lines_all_work(host):
    """Every Lvm method of snapshots, clones and revert, in the order the service runs them."""
    lvm = Lvm(host, VG)
    lvm.create(LV, 1)
    host.lvs[(VG, LV)]["content"] = "v1"
    lvm.snapshot(SNAP, LV, 1)
    assert lvm.get(LV).is_thick_origin and lvm.get(SNAP).is_thick_snapshot
    lvm.extend(LV, 2, thick_origin=True)
    assert lvm.get(LV).size_bytes == 2 * GIB and lvm.get(LV).is_active and lvm.get(SNAP).is_active
    lvm.create("copy", 1)
    lvm.activate(SNAP)
    lvm.copy(SNAP, "copy", GIB)
    assert host.lvs[(VG, "copy")]["content"] == "v1"
    host.lvs[(VG, LV)]["content"] = "v2"
    lvm.merge(SNAP)
    assert lvm.get(SNAP) is None and host.lvs[(VG, LV)]["content"] == "v1" and lvm.get(LV).attr == "-wi-a-----"
    lvm.deactivate(LV)
    lvm.activate(LV)
    lvm.snapshot(SNAP, LV, 2)
    lvm.zero(lvm.mapper_path(SNAP, "-cow"), 2 * GIB)
    lvm.remove(SNAP)
    assert lvm.get(LV).attr == "-wi-a-----"
    lvm.create_thin_pool("pool")
    lvm.create("thin", 1, thin_pool="pool")
    lvm.snapshot("thin-snap", "thin")
    lvm.activate("thin-snap", permanent=True)
    assert lvm.get("thin-snap").attr == "Vwi-a-tz--"


def test_a_thick_snapshot_is_a_cow_lv_and_makes_its_origin_one(host):
    thick_origin(host)
    assert host.lvs[(VG, SNAP)] == {"size": GIB, "attr": "swi-a-s---", "pool": "", "origin": LV, "content": "origin-data"}
    assert host.lvs[(VG, LV)]["attr"] == "owi-a-s---"
    assert Lvm(host, VG).volume_group().free_bytes == 98 * GIB  # the COW store takes extents
    code, out, _ = answer(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "lv_name,origin", f"{VG}/{SNAP}")
    assert code == 0 and f'"origin": "{LV}"' in out


def test_a_thin_snapshot_is_a_thin_lv_with_the_activation_skip_flag(host):
    thin_origin(host)
    free = Lvm(host, VG).volume_group().free_bytes
    assert answer(host, "lvcreate", "--name", SNAP, "--snapshot", f"{VG}/{LV}")[0] == 0
    assert host.lvs[(VG, SNAP)] == {"size": 2 * GIB, "attr": "Vwi---tz-k", "pool": "pool", "origin": LV, "content": "thin-data"}
    assert host.lvs[(VG, LV)]["attr"] == "Vwi-a-tz--" and Lvm(host, VG).volume_group().free_bytes == free
    assert answer(host, "lvchange", "-a", "y", "--yes", f"{VG}/{SNAP}")[0] == 0
    assert host.lvs[(VG, SNAP)]["attr"] == "Vwi---tz-k"  # skipped, as at boot
    assert answer(host, "lvchange", "-a", "y", "--yes", "-K", f"{VG}/{SNAP}")[0] == 0
    assert host.lvs[(VG, SNAP)]["attr"] == "Vwi-a-tz-k"  # active now, the flag kept
    assert answer(host, "lvchange", "-a", "y", "--yes", "-k", "n", f"{VG}/{SNAP}")[0] == 0
    assert host.lvs[(VG, SNAP)]["attr"] == "Vwi-a-tz--"  # the flag cleared: it comes up at boot


@pytest.mark.parametrize("argv, code, message", [
    (("--name", SNAP, "--snapshot", f"{VG}/{LV}"), 5, "Please specify either size or extents with snapshots"),
    (("--name", "snapshot-1", "--snapshot", f"{VG}/{LV}", "-L", "1g"), 3, 'Names starting "snapshot" are reserved'),
    (("--name", SNAP, "--snapshot", f"{VG}/other", "-L", "1g"), 5, f"Snapshot origin LV other not found in Volume group {VG}"),
    (("--name", "again", "--snapshot", f"{VG}/{SNAP}", "-L", "1g"), 5, "Snapshots of snapshots are not supported"),
    (("--name", SNAP, "--snapshot", f"{VG}/{LV}", "-L", "1g"), 5, "already exists"),
    (("--name", "big", "--snapshot", f"{VG}/{LV}", "-L", "99g"), 5, "insufficient free space"),
    (("--name", "x", "--snapshot"), 3, "to act as the snapshot origin"),
])
def test_lvcreate_snapshot_refuses_what_lvm2_refuses(host, argv, code, message):
    thick_origin(host)
    assert message in refused(host, "lvcreate", *argv, code=code)


def test_lvchange_n_deactivates_an_origin_with_its_snapshots_unless_it_is_open(host):
    thick_origin(host)
    assert answer(host, "lvchange", "-a", "n", f"{VG}/{LV}")[0] == 0
    assert host.lvs[(VG, LV)]["attr"][4] == host.lvs[(VG, SNAP)]["attr"][4] == "-"
    assert answer(host, "lvchange", "-a", "y", "--yes", "-K", f"{VG}/{LV}")[0] == 0
    assert host.lvs[(VG, LV)]["attr"][4] == host.lvs[(VG, SNAP)]["attr"][4] == "a"
    host.targets[IQN] = FakeTarget(f"/dev/{VG}/{LV}")  # an export holds it open
    assert f"Logical volume {VG}/{LV} in use" in refused(host, "lvchange", "-a", "n", f"{VG}/{LV}", code=5)
    assert "Invalid argument for --setactivationskip" in refused(host, "lvchange", "-a", "y", "-k", "maybe", f"{VG}/{LV}", code=3)


def test_lvextend_resizes_a_thick_origin_only_while_inactive(host):
    thick_origin(host)
    assert "can be resized only while inactive" in refused(host, "lvextend", "-L", "2g", f"{VG}/{LV}", code=5)
    answer(host, "lvchange", "-a", "n", f"{VG}/{LV}")
    assert answer(host, "lvextend", "-L", "2g", f"{VG}/{LV}")[0] == 0
    assert host.lvs[(VG, LV)]["size"] == 2 * GIB and host.lvs[(VG, SNAP)]["size"] == GIB


def test_merge_gives_the_origin_the_snapshots_bytes_and_consumes_the_snapshot(host):
    thick_origin(host, "before")
    assert answer(host, "lvcreate", "--name", "second", "--snapshot", f"{VG}/{LV}", "-L", "1g")[0] == 0
    host.lvs[(VG, LV)]["content"] = "after"
    code, out, _ = answer(host, "lvconvert", "--merge", f"{VG}/{SNAP}")
    assert code == 0 and f"Merging of volume {VG}/{SNAP} started" in out
    assert (VG, SNAP) not in host.lvs and host.lvs[(VG, LV)]["content"] == "before"
    assert host.lvs[(VG, LV)]["attr"] == "owi-a-s---"  # "second" is still a snapshot of it
    assert answer(host, "lvremove", "-f", f"{VG}/second")[0] == 0
    assert host.lvs[(VG, LV)]["attr"] == "-wi-a-----"


def test_merge_into_an_open_origin_waits_for_its_next_activation(host):
    thick_origin(host, "before")
    host.lvs[(VG, LV)]["content"] = "after"
    host.targets[IQN] = FakeTarget(f"/dev/{VG}/{LV}")
    code, out, _ = answer(host, "lvconvert", "--merge", f"{VG}/{SNAP}")
    assert code == 0 and "Delaying merge since origin is open" in out
    assert (host.lvs[(VG, LV)]["attr"], host.lvs[(VG, SNAP)]["attr"]) == ("Owi-a-s---", "Swi-a-s---")
    assert host.lvs[(VG, LV)]["content"] == "after"
    assert "Can't remove merging snapshot" in refused(host, "lvremove", "-f", f"{VG}/{SNAP}", code=5)
    assert "with merging snapshot" in refused(host, "lvconvert", "--merge", f"{VG}/{SNAP}", code=5)
    assert "an origin that has a merging snapshot" in refused(host, "lvcreate", "-n", "x", "-s", f"{VG}/{LV}", "-L", "1g",
                                                              code=5)
    del host.targets[IQN]
    answer(host, "lvchange", "-a", "n", f"{VG}/{LV}")
    answer(host, "lvchange", "-a", "y", "--yes", "-K", f"{VG}/{LV}")
    assert (VG, SNAP) not in host.lvs and host.lvs[(VG, LV)] == {"size": GIB, "attr": "-wi-a-----", "pool": "",
                                                                 "content": "before"}


@pytest.mark.parametrize("argv, code, message", [
    (("--merge", f"{VG}/{LV}"), 5, "cannot be merged because --trackchanges was not used"),
    (("--merge", f"{VG}/nothing"), 5, "Failed to find logical volume"),
    (("--merge", LV), 3, "Invalid logical volume path"),
    (("--merge",), 3, "Please specify a logical volume path"),
])
def test_lvconvert_merge_refuses_what_lvm2_refuses(host, argv, code, message):
    host.add_lv(VG, LV, 1)
    assert message in refused(host, "lvconvert", *argv, code=code)


def test_removing_an_origin_takes_its_snapshots_along(host):
    thick_origin(host)
    code, out, _ = answer(host, "lvremove", "--config", "activation { retry_deactivation = 1} ", "-f", f"{VG}/{LV}")
    assert code == 0 and host.lvs == {} and f'"{SNAP}" successfully removed' in out


def test_dd_copies_an_lvs_bytes_through_device_mapper_names(host):
    thick_origin(host, "snapshot-data")
    host.add_lv(VG, "volume-new", 2)
    code, _, err = answer(host, *copy_argv(SNAP, "volume-new"))
    assert code == 0 and f"{GIB} bytes" in err and host.lvs[(VG, "volume-new")]["content"] == "snapshot-data"
    # count past the source's end: dd stops at its end, no error
    assert answer(host, *copy_argv(SNAP, "volume-new", 2 * GIB))[0] == 0
    half = answer(host, *copy_argv(LV, "volume-new", GIB // 2))
    assert half[0] == 0 and host.lvs[(VG, "volume-new")]["content"].startswith("snapshot-data[:")
    assert "No space left on device" in refused(host, *copy_argv("volume-new", LV, 2 * GIB), code=1)


def test_dd_needs_an_active_lv_and_a_cow_store_only_a_thick_snapshot_has(host):
    thin_origin(host)
    answer(host, "lvcreate", "--name", SNAP, "--snapshot", f"{VG}/{LV}")
    host.add_lv(VG, "volume-new", 2)
    assert "failed to open" in refused(host, *copy_argv(SNAP, "volume-new"), code=1)  # thin snapshots start inactive
    assert "failed to open" in refused(host, *zero(mapper(SNAP, "-cow")), code=1)
    direct_zero = ["dd", "if=/dev/zero", f"of={mapper('volume-new')}", f"count={GIB}", "bs=1M", "iflag=count_bytes,direct",
                   "oflag=direct"]
    assert "failed to open '/dev/zero': Invalid argument" in refused(host, *direct_zero, code=1)  # no O_DIRECT on /dev/zero


def test_zeroing_a_cow_store_destroys_the_snapshots_view(host):
    thick_origin(host)
    code, _, err = answer(host, *zero(mapper(SNAP, "-cow")))
    assert code == 0 and host.lvs[(VG, SNAP)]["content"] == "zero" and host.lvs[(VG, LV)]["content"] == "origin-data"


def test_device_mapper_names_double_each_dash():
    from fakeargs import dm_name_parts

    assert dm_name_parts("cinder--volumes-_snapshot--ab--c-cow") == ["cinder-volumes", "_snapshot-ab-c", "cow"]
    assert dm_name_parts("vg-lv") == ["vg", "lv"]


# -- cinder-rtstool ----------------------------------------------------------------------------------


def create_argv(*rest: str) -> list[str]:
    return ["cinder-rtstool", "create", f"/dev/{VG}/{LV}", IQN, "user", SECRET, *rest]


@pytest.mark.parametrize("argv", [
    create_argv(),  # iser_enabled missing
    ["cinder-rtstool", "create", f"/dev/{VG}/{LV}", IQN, "user"],
    create_argv("False", "-p3260", "-a127.0.0.1", "iqn.x", "extra"),  # more than rtstool's 10 words
    create_argv("False", "-pthree"),
    create_argv("False", "-a"),
    create_argv("False", "-a,"),
    ["cinder-rtstool", "add-initiator", IQN, "user", SECRET],
    ["cinder-rtstool", "delete-initiator", IQN],
    ["cinder-rtstool", "delete"],
    ["cinder-rtstool", "save", "/a", "/b"],
    ["cinder-rtstool", "create-target"],
    ["cinder-rtstool"],
])
def test_rtstool_usage_error_is_exit_1_with_usage_on_stdout(host, argv):
    host.add_lv(VG, LV, 1)
    before = host.to_state()
    code, out, err = host.answer(argv)
    assert (code, err) == (1, "") and out.startswith("Usage:\ncinder-rtstool create [device] [name]")
    assert host.to_state() == before


@pytest.mark.parametrize("argv", [
    ["cinder-rtstool", "get-targets", "extra"],
    ["cinder-rtstool", "delete", IQN, "extra"],
    ["cinder-rtstool", "add-initiator", IQN, "user", SECRET, INITIATOR, "extra"],
    ["cinder-rtstool", "delete-initiator", IQN, INITIATOR, "extra"],
])
def test_rtstool_arguments_it_would_silently_ignore_are_loud(host, argv):
    with pytest.raises(AssertionError):
        host.answer(argv)


def test_rtstool_create_needs_an_existing_lv_and_valid_names(host):
    assert "does not exist" in refused(host, *create_argv("False", "-p3260", "-a127.0.0.1"), code=1)
    host.add_lv(VG, LV, 1)
    bad_iqn = ["cinder-rtstool", "create", f"/dev/{VG}/{LV}", "volume-1", "user", SECRET, "False"]
    assert "WWN not valid" in refused(host, *bad_iqn, code=1)
    assert "WWN not valid" in refused(host, *create_argv("False", "not_an_iqn"), code=1)
    assert "Could not find target" in refused(host, "cinder-rtstool", "add-initiator", IQN, "u", SECRET, INITIATOR, code=1)


def test_rtstool_create_options_as_rtstool_parses_them(host):
    host.add_lv(VG, LV, 1)
    assert answer(host, *create_argv("True", INITIATOR, "-a192.0.2.1,,192.0.2.2", "-p3261"))[0] == 0
    target = host.targets[IQN]
    assert target.portals == ("192.0.2.1:3261", "192.0.2.2:3261") and target.iser
    assert target.acls == {INITIATOR: ("user", SECRET)}


def test_rtstool_create_without_ips_binds_ipv4_and_ipv6_any(host):
    host.add_lv(VG, LV, 1)
    host.busy_portals.add("[::0]:3260")  # rtstool lets the IPv6 bind fail with a warning
    code, out, _ = answer(host, *create_argv("False"))
    assert code == 0 and out.startswith("Warning: creating NetworkPortal")
    assert host.targets[IQN].portals == ("0.0.0.0:3260",)


def test_a_portal_that_cannot_bind_leaves_a_half_made_target(host):
    host.add_lv(VG, LV, 1)
    host.busy_portals.add("192.0.2.2:3260")
    code, out, err = answer(host, *create_argv("False", "-p3260", "-a192.0.2.1,192.0.2.2"))
    assert code == 1 and out.startswith("Error: creating NetworkPortal") and "RTSLibError" in err
    assert host.targets[IQN].portals == ("192.0.2.1:3260",)
    assert (host.configfs / IQN).is_dir()
    host.busy_portals.clear()  # as in rtstool, a second create finds the storage object and returns
    assert answer(host, *create_argv("False", "-p3260", "-a192.0.2.1,192.0.2.2"))[0] == 0
    assert host.targets[IQN].portals == ("192.0.2.1:3260",)


def test_unknown_program_is_loud(host):
    with pytest.raises(AssertionError):
        host.answer(["targetcli", "ls"])


def test_state_round_trip_keeps_busy_portals(host):
    host.busy_portals.add("192.0.2.1:3260")
    host.add_lv(VG, LV, 1)
    again = FakeHost.from_state(host.to_state())
    assert again.to_state() == host.to_state() and again.busy_portals == {"192.0.2.1:3260"}


# -- the state tests/fakebin.py's programs share (moved from tests/test_races.py) ---------------------

def test_fake_host_state_survives_the_round_trip(tmp_path):
    """What the fake programs store is what they load: LVs, targets with ACLs and CHAP, the saved config."""
    host = FakeHost(configfs=tmp_path / "configfs", save_file=tmp_path / "saveconfig.json")
    (tmp_path / "configfs").mkdir()
    host.add_lv(VG, "volume-1", 2)
    host.add_lv(VG, "volume-2", 1)
    host.run(["cinder-rtstool", "create", f"/dev/{VG}/volume-1", "iqn.2010-10.org.openstack:volume-1", "user", "secretpassword16",
              "False", "-p3260", "-a10.0.0.1,10.0.0.2"])
    host.run(["cinder-rtstool", "add-initiator", "iqn.2010-10.org.openstack:volume-1", "user", "secretpassword16",
              "iqn.1994-05.com.redhat:client1"])
    host.run(["cinder-rtstool", "save"])
    host.run(["cinder-rtstool", "create", f"/dev/{VG}/volume-2", "iqn.2010-10.org.openstack:volume-2", "u", "p", "True"])
    again = FakeHost.from_state(host.to_state())
    assert again.to_state() == host.to_state()
    assert (again.vgs, again.lvs, again.targets, again.saved) == (host.vgs, host.lvs, host.targets, host.saved)
    assert (again.configfs, again.save_file) == (host.configfs, host.save_file)
    assert FakeHost.from_state({**host.to_state(), "_seq": 7}).targets == host.targets
