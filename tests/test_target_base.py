"""The target-helper base class (volctl/targets/base.py) on an in-memory helper: change sets that
persist once, pending targets that survive a failed change set, the host-wide LIO lock around
every primitive, and the configfs and saved-config views doctor and restore compare."""

from __future__ import annotations

import json

import pytest
from faketarget import FakeLioTarget, lock_is_held

from volctl.errors import EnvironmentProblem, TargetFailed
from volctl.iscsi import Chap
from volctl.locks import FileLock

PREFIX = "iqn.2010-10.org.openstack:"
A, B, C = (f"{PREFIX}volume-{n}" for n in ("a", "b", "c"))
FOREIGN = "iqn.2003-01.org.example:not-volctls"
CHAP = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
INI_1 = "iqn.1994-05.com.redhat:client1"
INI_2 = "iqn.1993-08.org.debian:01:abcdef123456"


@pytest.fixture
def lock_path(tmp_path):
    return tmp_path / "lio.lock"


@pytest.fixture
def target(tmp_path, lock_path, configfs) -> FakeLioTarget:
    return FakeLioTarget(FileLock(lock_path, wait=5), configfs, tmp_path / "target" / "saveconfig.json")


def create(target, iqn):
    target.create(f"/dev/cinder-volumes/{iqn.split(':')[1]}", iqn, CHAP, iser=False, ips=["127.0.0.1"], port=3260)


# -- change sets ------------------------------------------------------------------------------


def test_nested_change_sets_persist_once_at_the_outermost_exit(target):
    with target.changes():
        create(target, A)
        with target.changes():
            target.add_initiator(A, CHAP, INI_1)
            create(target, B)
        assert target.saves == []  # the inner exit is not the end of the change set
        with target.changes():
            target.delete_initiator(A, INI_1)
        assert target.saves == []
    assert target.saves == [("persist", {A, B})]
    assert target.lio.saved.keys() == {A, B}


def test_the_persist_of_a_change_set_runs_under_the_same_lock_hold(target, lock_path):
    with target.changes():
        create(target, A)
    assert [(c.primitive, c.locked) for c in target.calls] == [("create", True), ("persist", True)]
    assert not lock_is_held(lock_path)


def test_consecutive_change_sets_persist_each_their_own_targets(target):
    with target.changes():
        create(target, A)
    with target.changes():
        create(target, B)
    assert target.saves == [("persist", {A}), ("persist", {B})]


def test_a_change_set_that_raises_does_not_persist_and_leaves_its_targets_pending(target, lock_path):
    with pytest.raises(RuntimeError):
        with target.changes():
            create(target, A)
            raise RuntimeError("the caller gave up")
    assert target.saves == []
    assert not lock_is_held(lock_path)
    with target.changes():  # the depth is back at 0: this one's exit persists, with A too
        create(target, B)
    assert target.saves == [("persist", {A, B})]


def test_an_inner_change_set_that_raises_is_persisted_by_the_outer_one(target):
    with target.changes():
        with pytest.raises(RuntimeError):
            with target.changes():
                create(target, A)
                raise RuntimeError
        assert target.saves == []
    assert target.saves == [("persist", {A})]


def test_a_primitive_that_fails_leaves_its_target_pending(target):
    create(target, A)
    target.persist()
    target.lio.fail("add_initiator", times=1)
    with pytest.raises(TargetFailed):
        with target.changes():
            target.add_initiator(A, CHAP, INI_1)
    assert target.saves == [("persist", {A})]
    target.persist()
    assert target.saves[-1] == ("persist", {A})


def test_a_persist_that_fails_keeps_what_was_pending(target):
    create(target, A)
    target.lio.fail("persist", times=1)
    with pytest.raises(TargetFailed):
        target.persist()
    assert target.saves == []
    target.persist()
    assert target.saves == [("persist", {A})]
    target.persist()
    assert target.saves[-1] == ("persist", frozenset())  # written once it worked, then no longer pending


@pytest.mark.parametrize("primitive", ["create", "add_initiator", "delete_initiator", "delete"])
def test_every_primitive_marks_its_target_pending(target, primitive):
    create(target, A)
    target.lio.make(B, "/dev/cinder-volumes/volume-b", INI_1)  # live, not pending
    target.persist()
    {"create": lambda: create(target, B), "add_initiator": lambda: target.add_initiator(B, CHAP, INI_2),
     "delete_initiator": lambda: target.delete_initiator(B, INI_1), "delete": lambda: target.delete(B)}[primitive]()
    target.persist()
    assert target.saves == [("persist", {A}), ("persist", {B})]


def test_touch_has_a_target_written_that_nothing_changed(target):
    target.lio.make(A, "/dev/cinder-volumes/volume-a", INI_1)  # live, never saved
    target.touch(A)
    assert target.calls == []  # touching changes nothing on the host
    target.persist()
    assert target.saves == [("persist", {A})]
    assert target.saved_targets()[0].iqn == A and target.unsaved() == []


def test_touch_inside_a_change_set_joins_it(target):
    target.lio.make(B, "/dev/cinder-volumes/volume-b")
    with target.changes():
        create(target, A)
        target.touch(B)
    assert target.saves == [("persist", {A, B})]


def test_save_writes_everything_and_clears_what_was_pending(target):
    target.lio.make(C, "/dev/cinder-volumes/volume-c")  # live, never persisted
    create(target, A)
    create(target, B)
    target.save()
    assert target.saves == [("save", {A, B, C})]
    target.persist()
    assert target.saves[-1] == ("persist", frozenset())


def test_a_save_that_fails_keeps_what_was_pending(target):
    create(target, A)
    target.lio.fail("save_all", times=1)
    with pytest.raises(TargetFailed):
        target.save()
    target.persist()
    assert target.saves == [("persist", {A})]


# -- the LIO lock -----------------------------------------------------------------------------


def test_every_primitive_holds_the_lio_lock(target, lock_path):
    create(target, A)
    target.add_initiator(A, CHAP, INI_1)
    target.delete_initiator(A, INI_1)
    target.targets()
    target.exists(A)
    target.persist()
    target.save()
    with target.changes():
        target.delete(A)
    assert target.lio.primitives() == ["create", "add_initiator", "delete_initiator", "targets", "targets",
                                       "persist", "save_all", "delete", "persist"]
    assert all(c.locked for c in target.calls)
    assert not lock_is_held(lock_path)  # and let go after each


def test_a_primitive_that_fails_lets_the_lock_go(target, lock_path):
    target.lio.fail("create")
    with pytest.raises(TargetFailed):
        create(target, A)
    assert target.calls[0].locked and not lock_is_held(lock_path)


def test_no_primitive_runs_while_another_volctl_holds_the_lock(target, lock_path):
    target.lock = FileLock(lock_path, wait=0.05)
    with FileLock(lock_path, wait=0).held():
        for step in (lambda: create(target, A), target.persist, target.save, target.targets,
                     lambda: target.add_initiator(A, CHAP, INI_1), lambda: target.delete(A)):
            with pytest.raises(EnvironmentProblem, match="still held"):
                step()
    assert target.calls == []


# -- the configfs views -----------------------------------------------------------------------


def test_configfs_views_start_no_primitive(target, configfs):
    target.lio.make(A, "/dev/x", INI_2, INI_1)
    target.lio.make(B, "/dev/y", lun=False)
    assert (configfs / "discovery_auth").is_dir()  # a real iscsi directory's own entry, not a target
    calls = len(target.calls)
    assert target.live_targets() == [A, B]
    assert (target.is_live(A), target.is_live(C)) == (True, False)
    assert (target.is_whole(A), target.is_whole(B), target.is_whole(C)) == (True, False, False)
    assert target.hosts(A) == sorted([INI_1, INI_2]) and target.hosts(B) == [] and target.hosts(C) == []
    assert len(target.calls) == calls


def test_without_the_iscsi_fabric_in_configfs_the_helper_is_asked(tmp_path, lock_path):
    target = FakeLioTarget(FileLock(lock_path, wait=5), tmp_path / "no-iscsi", tmp_path / "saveconfig.json")
    create(target, A)
    assert (target.is_live(A), target.is_live(B)) == (True, False)
    assert target.live_targets() == [A]
    assert target.is_whole(A) is True  # nothing to read: what the helper listed is all there is
    assert target.lio.primitives() == ["create", "targets", "targets", "targets"]


# -- unsaved ----------------------------------------------------------------------------------


def test_unsaved_without_a_saved_config_is_every_live_target_under_the_prefix(target):
    target.lio.make(B, "/dev/y")
    target.lio.make(A, "/dev/x", INI_1)
    target.lio.make(FOREIGN, "/dev/z")
    assert target.saved_targets() is None
    assert target.unsaved() == [A, B]


def test_unsaved_is_empty_when_the_saved_config_agrees(target):
    create(target, A)
    target.add_initiator(A, CHAP, INI_1)
    create(target, B)
    target.persist()
    target.lio.make(FOREIGN, "/dev/z")  # not under the prefix: not volctl's to compare
    assert target.unsaved() == []


def test_unsaved_names_targets_whose_acls_differ(target):
    for iqn in (A, B, C):
        create(target, iqn)
    target.add_initiator(A, CHAP, INI_1)
    target.add_initiator(B, CHAP, INI_1)
    target.persist()
    target.lio.live[A].acls[INI_2] = CHAP  # one more live than saved
    target.lio.live[B].acls.clear()  # one fewer
    target.lio.mirror()
    assert target.unsaved() == [A, B]


def test_unsaved_names_targets_saved_but_gone_and_live_but_unsaved(target):
    create(target, A)
    create(target, B)
    target.persist()
    target.lio.live.pop(A)
    target.lio.make(C, "/dev/z")
    assert target.unsaved() == [A, C]


def test_unsaved_compares_the_saved_config_not_the_fakes_memory(target):
    """What a restore would load is the file: an edit of it alone is a difference."""
    create(target, A)
    target.persist()
    document = json.loads(target.save_file.read_text())
    document["targets"][0]["tpgs"][0]["node_acls"].append({"node_wwn": INI_1})
    target.save_file.write_text(json.dumps(document))
    assert target.unsaved() == [A]


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'"a string"', b"\xff\xfe{}", b""])
def test_unsaved_of_an_unreadable_saved_config_raises(target, content):
    create(target, A)
    target.save_file.parent.mkdir(parents=True, exist_ok=True)
    target.save_file.write_bytes(content)
    with pytest.raises(EnvironmentProblem) as info:
        target.unsaved()
    assert info.value.exit_code == 7
    assert str(target.save_file) in str(info.value) and "unreadable" in str(info.value)


def test_unsaved_of_a_saved_config_that_is_a_directory_raises(target):
    target.save_file.mkdir(parents=True)
    with pytest.raises(EnvironmentProblem, match="unreadable"):
        target.unsaved()
