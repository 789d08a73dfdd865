"""`target_helper = "rtslib"` (volctl/targets/rtslib.py) against a stand-in rtslib_fb module: the
objects it makes are the ones cinder-rtstool makes, in its order (lio-lvm-facts.md §1.9); what a
failure leaves; that no secret reaches an error; that no program is started. The saved config
it writes is tests/test_target_rtslib_persist.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from faketarget import lock_is_held
from fakertslib import FakeRtslib

from volctl.errors import EnvironmentProblem, ExitCode, TargetFailed
from volctl.iscsi import Chap
from volctl.locks import FileLock
from volctl.runner import Runner
from volctl.targets import lio_helper
from volctl.targets.rtslib import RtslibTarget

PREFIX = "iqn.2010-10.org.openstack:"
VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
IQN = f"{PREFIX}volume-{VOL}"
DEV = f"/dev/cinder-volumes/volume-{VOL}"
TPG = f"{IQN}/tpgt_1"
OTHER_1 = f"{PREFIX}volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
CHAP = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
INITIATOR = "iqn.1994-05.com.redhat:client1"


@pytest.fixture
def lock_path(tmp_path):
    return tmp_path / "lio.lock"


@pytest.fixture
def rts(monkeypatch, configfs, lock_path) -> FakeRtslib:
    fake = FakeRtslib(configfs, lock_path)
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake.module)
    return fake


@pytest.fixture
def save_file(tmp_path):
    return tmp_path / "target" / "saveconfig.json"


@pytest.fixture
def target(rts, configfs, save_file, lock_path) -> RtslibTarget:
    return RtslibTarget(FileLock(lock_path, wait=5), configfs=configfs, save_file=save_file)


def create(target, *, ips=("127.0.0.1",), port=3260, iser=False, iqn=IQN, dev=DEV):
    target.create(dev, iqn, CHAP, iser=iser, ips=list(ips), port=port)


def cinder_rtstool_create(ips=("127.0.0.1",), port=3260, iser=False) -> list[tuple]:
    """What cinder/cmd/rtstool.py create makes, in its order (the helper is given no initiators)."""
    made = [
        ("BlockStorageObject", IQN, DEV),
        ("Target", "iscsi", IQN, "create"),
        ("TPG", IQN, "create"),
        ("set_attribute", TPG, "authentication", "1"),
        ("LUN", TPG, f"block/{IQN}"),
        ("enable", TPG, 1),
    ]
    for ip in ips:
        made.append(("NetworkPortal", TPG, ip, port, "any"))
        if iser:
            made.append(("iser", f"{TPG}/np/{ip}:{port}", True))
    return made


# -- create -----------------------------------------------------------------------------------


def test_create_makes_what_cinder_rtstool_makes(target, rts, configfs):
    create(target)
    assert rts.made() == cinder_rtstool_create()
    assert target.targets() == [IQN] and target.is_live(IQN) and target.is_whole(IQN)
    assert target.hosts(IQN) == []
    assert rts.targets[IQN].tpg_list[0].portal_list[0].iser_value is False


def test_create_portals_brackets_ipv6_and_sets_iser_on_each(target, rts):
    create(target, ips=("10.0.0.5", "fd00::5", "[fd00::6]"), port=3261, iser=True)
    assert rts.made() == cinder_rtstool_create(ips=("10.0.0.5", "[fd00::5]", "[fd00::6]"), port=3261, iser=True)


def iqn_of(n: int) -> str:
    return f"{PREFIX}volume-00000000-0000-4000-8000-{n:012d}"


def test_creates_in_one_process_fill_rtslibs_index_once(target, rts):
    """A restore makes N exports in one process, releasing the lock between them: refilling
    rtslib's index before each (every HBA directory listed) would read N x N directories."""
    create(target, iqn=iqn_of(0), dev="/dev/vg/lv0")
    rts.calls.clear()
    for n in range(1, 20):
        create(target, iqn=iqn_of(n), dev=f"/dev/vg/lv{n}")
    assert ("bs_cache.fill",) not in rts.calls and ("bs_cache.clear",) not in rts.calls
    assert rts.hbas() == {f"iblock_{n}": [iqn_of(n)] for n in range(20)}


def test_an_hba_another_process_took_is_not_handed_out_again(target, rts):
    create(target, iqn=iqn_of(0))
    rts.elsewhere_make(iqn_of(1), "/dev/vg/elsewhere")  # cinder-rtstool or another volctl, in iblock_1
    create(target, iqn=iqn_of(2))
    assert rts.hbas() == {"iblock_0": [iqn_of(0)], "iblock_1": [iqn_of(1)], "iblock_2": [iqn_of(2)]}
    assert rts.calls.count(("bs_cache.clear",)) == 1


def test_a_leftover_another_process_made_since_the_index_was_filled_is_found(target, rts):
    create(target, iqn=iqn_of(0))
    rts.elsewhere_make(IQN, DEV)  # an export killed after its storage object, in another process
    with pytest.raises(TargetFailed, match="exists without its target"):
        create(target)
    assert not target.is_live(IQN)


def test_an_hba_freed_and_taken_again_elsewhere_is_not_handed_out(target, rts):
    """The same HBA directories, other names: the index is stale only about others' objects, and
    a stale entry keeps its number taken, so nothing is handed out twice."""
    create(target, iqn=iqn_of(0))
    create(target, iqn=iqn_of(1))
    rts.elsewhere_remove(iqn_of(0))
    rts.elsewhere_make(iqn_of(5), "/dev/vg/elsewhere")  # takes iblock_0 again
    create(target, iqn=iqn_of(2))
    assert rts.hbas() == {"iblock_0": [iqn_of(5)], "iblock_1": [iqn_of(1)], "iblock_2": [iqn_of(2)]}


def test_a_removed_storage_object_is_not_found_through_a_stale_index(target, rts):
    rts.elsewhere_make(IQN, DEV)
    create(target, iqn=iqn_of(0))  # fills the index: it now names IQN's HBA
    rts.elsewhere_remove(IQN)
    rts.elsewhere_make(iqn_of(9), "/dev/vg/elsewhere")  # the same HBA numbers as the index names
    create(target)  # no leftover any more: made, in a free HBA
    assert target.is_whole(IQN) and rts.hbas()["iblock_2"] == [IQN]


def test_create_of_a_live_target_changes_nothing(target, rts):
    rts.seed(IQN, DEV, INITIATOR)
    create(target)
    assert rts.made() == []
    assert target.hosts(IQN) == [INITIATOR]


def test_create_refuses_a_storage_object_left_without_its_target(target, rts):
    rts.module.BlockStorageObject(name=IQN, dev=DEV)  # an interrupted export's leftover
    rts.calls.clear()
    with pytest.raises(TargetFailed) as info:
        create(target)
    assert info.value.exit_code == ExitCode.COMMAND_FAILED == 6
    assert f"targetcli /backstores/block delete {IQN}" in str(info.value)
    assert rts.made() == [] and IQN not in rts.targets and IQN in rts.storage_objects


@pytest.mark.parametrize("call", ["BlockStorageObject", "Target", "TPG", "set_attribute", "LUN", "enable",
                                  "NetworkPortal", "iser"])
def test_a_create_that_fails_midway_removes_what_it_made(target, rts, configfs, call):
    # rtslib's own message could hold anything; here it holds the password, in both shapes
    rts.fail(call, f"{call} failed: {CHAP.password} / CHAP {CHAP.username} {CHAP.password}", making_only=True)
    with pytest.raises(TargetFailed) as info:
        create(target, ips=("127.0.0.1", "fd00::5"), iser=True)
    assert info.value.exit_code == 6
    message = str(info.value)
    assert CHAP.password not in message and f"{call} failed" in message and IQN in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no traceback shows rtslib's text
    assert rts.targets == {} and rts.storage_objects == {}
    assert not (configfs / IQN).exists() and target.targets() == []
    # what was made is removed after the failure, the target (with its TPG, LUN, portals) first
    made_before = {"BlockStorageObject": [], "Target": [f"block/{IQN}"]}.get(call, [IQN, f"block/{IQN}"])
    removals = [("delete", path) for path in made_before]
    made = rts.made()
    assert [c for c in made if c[0] == "delete"] == removals
    assert made[len(made) - len(removals):] == removals


def test_a_create_whose_clean_up_fails_too_raises_the_first_error(target, rts):
    rts.fail("NetworkPortal", "cannot bind 127.0.0.1:3260")
    rts.fail("delete", "configfs is busy", times=2)
    with pytest.raises(TargetFailed, match="cannot bind 127.0.0.1:3260"):
        create(target)


def test_a_failure_before_anything_is_made_is_a_target_failure(target, rts):
    rts.fail("RTSRoot", "Cannot find configfs mount point")
    with pytest.raises(TargetFailed, match="configfs"):
        create(target)
    assert rts.made() == []


# -- initiators -------------------------------------------------------------------------------


def test_add_initiator_makes_what_cinder_rtstool_makes(target, rts, configfs):
    rts.seed(IQN, DEV)
    target.add_initiator(IQN, CHAP, INITIATOR)
    acl = f"{TPG}/acls/{INITIATOR}"
    assert rts.made() == [
        ("NodeACL", TPG, INITIATOR, "create"),
        ("chap_userid", acl, CHAP.username),
        ("chap_password", acl, CHAP.password),
        ("MappedLUN", acl, 0, 0),
    ]
    assert target.hosts(IQN) == [INITIATOR] and (configfs / acl / "lun_0").is_dir()


@pytest.mark.parametrize("call", ["chap_userid", "chap_password", "MappedLUN"])
def test_add_initiator_that_fails_midway_leaves_no_acl(target, rts, configfs, call):
    """A half-made ACL would be taken for a whole one by the next connect (an existing ACL is left
    as it is), which would record a connection whose initiator sees no LUN or cannot log in."""
    rts.seed(IQN, DEV)
    rts.fail(call, f"{call} failed")
    with pytest.raises(TargetFailed, match=f"{call} failed"):
        target.add_initiator(IQN, CHAP, INITIATOR)
    assert rts.made()[-1] == ("delete", f"{TPG}/acls/{INITIATOR}")
    assert target.hosts(IQN) == [] and rts.targets[IQN].tpg_list[0].acl_list == []
    target.add_initiator(IQN, CHAP, INITIATOR)  # the retry makes it whole
    assert rts.targets[IQN].tpg_list[0].acl_list[0].mapped == [{"index": 0, "tpg_lun": 0, "write_protect": False}]


def test_add_initiator_leaves_an_existing_acl_and_its_chap_alone(target, rts):
    rts.seed(IQN, DEV, INITIATOR)
    target.add_initiator(IQN, CHAP, INITIATOR.upper())  # rtstool compares case-insensitively
    assert rts.made() == []
    assert rts.targets[IQN].tpg_list[0].acl_list[0].auth["password"] == "seedpassword"


def test_add_initiator_to_a_target_that_is_not_live_fails(target, rts):
    with pytest.raises(TargetFailed) as info:
        target.add_initiator(IQN, CHAP, INITIATOR)
    assert info.value.exit_code == 6 and "not live" in str(info.value)
    assert rts.made() == []


def test_a_target_without_a_tpg_is_a_target_failure_not_an_internal_error(target, rts, configfs):
    """Made by hand under volctl's IQN: rtslib's tpgs is then empty, and next() would raise StopIteration."""
    rts.module.Target(rts.module.FabricModule("iscsi"), IQN, "create")
    with pytest.raises(TargetFailed, match="has no TPG"):
        target.add_initiator(IQN, CHAP, INITIATOR)
    assert target.delete_initiator(IQN, INITIATOR) is False


def test_add_initiator_failure_never_shows_the_password(target, rts):
    rts.seed(IQN, DEV)
    rts.fail("chap_password", f"cannot write auth/password = {CHAP.password}")
    with pytest.raises(TargetFailed) as info:
        target.add_initiator(IQN, CHAP, INITIATOR)
    assert CHAP.password not in str(info.value) and INITIATOR in str(info.value)


def test_delete_initiator(target, rts):
    rts.seed(IQN, DEV, INITIATOR, "iqn.1993-08.org.debian:01:abcdef123456")
    assert target.delete_initiator(IQN, INITIATOR.upper()) is True
    assert rts.made() == [("delete", f"{TPG}/acls/{INITIATOR}")]
    assert target.hosts(IQN) == ["iqn.1993-08.org.debian:01:abcdef123456"]
    assert target.delete_initiator(IQN, INITIATOR) is False  # the ACL is gone
    assert target.delete_initiator(OTHER_1, INITIATOR) is False  # and so is a whole target
    assert len(rts.made()) == 1


def test_delete_initiator_failure_is_a_target_failure(target, rts):
    rts.seed(IQN, DEV, INITIATOR)
    rts.fail("delete")
    with pytest.raises(TargetFailed, match=f"remove ACL for {INITIATOR}"):
        target.delete_initiator(IQN, INITIATOR)


# -- delete -----------------------------------------------------------------------------------


def test_delete_removes_the_target_then_its_storage_object(target, rts, configfs):
    rts.seed(IQN, DEV, INITIATOR)
    rts.seed(OTHER_1, "/dev/cinder-volumes/other")
    target.delete(IQN)
    assert rts.made() == [("delete", IQN), ("delete", f"block/{IQN}")]
    assert not (configfs / IQN).exists() and target.targets() == [OTHER_1]
    assert set(rts.storage_objects) == {OTHER_1}


def test_delete_removes_a_storage_object_left_without_its_target(target, rts):
    rts.module.BlockStorageObject(name=IQN, dev=DEV)
    rts.calls.clear()
    target.delete(IQN)
    assert rts.made() == [("delete", f"block/{IQN}")] and rts.storage_objects == {}


def test_delete_of_what_is_not_there_is_fine(target, rts):
    target.delete(IQN)
    assert rts.made() == []


def test_delete_failure_is_a_target_failure(target, rts):
    rts.seed(IQN, DEV)
    rts.fail("delete", "Device or resource busy")
    with pytest.raises(TargetFailed, match="busy") as info:
        target.delete(IQN)
    assert info.value.exit_code == 6


# -- what it needs, and what it never does ------------------------------------------------------


@pytest.mark.parametrize("step", ["create", "add_initiator", "save"])
def test_without_rtslib_installed_it_names_the_extra(monkeypatch, target, step):
    monkeypatch.setitem(sys.modules, "rtslib_fb", None)  # what `import rtslib_fb` sees when it is absent
    with pytest.raises(EnvironmentProblem) as info:
        {"create": lambda: create(target), "add_initiator": lambda: target.add_initiator(IQN, CHAP, INITIATOR),
         "save": target.save}[step]()
    assert info.value.exit_code == 7
    assert "volctl[rtslib]" in str(info.value) and "rtslib-fb" in str(info.value)


def test_every_rtslib_call_holds_the_lio_lock(target, rts, lock_path):
    create(target)
    target.add_initiator(IQN, CHAP, INITIATOR)
    target.persist()
    target.delete_initiator(IQN, INITIATOR)
    target.save()
    target.delete(IQN)
    target.persist()
    assert len(rts.calls) > 20 and all(rts.locked)
    assert not lock_is_held(lock_path)


def test_no_program_is_started(monkeypatch, rts, configfs, save_file, lock_path):
    """The CHAP password is on no command line because there is no command line."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"a program was started: {args!r}")

    monkeypatch.setattr(Runner, "_start", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve", "execvp", "execvpe", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
    helper = lio_helper("rtslib", Runner(), FileLock(lock_path, wait=5), configfs=configfs, save_file=save_file)
    assert isinstance(helper, RtslibTarget)
    with helper.changes():
        create(helper)
        helper.add_initiator(IQN, CHAP, INITIATOR)
    helper.save()
    assert helper.targets() == [IQN] and helper.exists(IQN)
    with helper.changes():
        helper.delete_initiator(IQN, INITIATOR)
        helper.delete(IQN)
    assert rts.targets == {} and json.loads(save_file.read_text())["targets"] == []
