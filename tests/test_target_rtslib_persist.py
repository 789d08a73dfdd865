"""`target_helper = "rtslib"` (volctl/targets/rtslib.py) and the saved config: a change set rewrites
only the targets it touched, from their own dumps, and leaves every other entry as it was; without
a readable file it writes the whole running config, as a full save would."""

from __future__ import annotations

import copy
import json
import sys

import pytest
from fakertslib import FakeRtslib

from volctl.errors import TargetFailed
from volctl.iscsi import Chap
from volctl.locks import FileLock
from volctl.targets.rtslib import RtslibTarget

PREFIX = "iqn.2010-10.org.openstack:"
VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
IQN = f"{PREFIX}volume-{VOL}"
DEV = f"/dev/cinder-volumes/volume-{VOL}"
OTHER_1 = f"{PREFIX}volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
OTHER_2 = f"{PREFIX}volume-2a5e9c0b-5f8d-4b64-9f0e-3c2d1a0b9e8f"
CHAP = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
INITIATOR = "iqn.1994-05.com.redhat:client1"


@pytest.fixture
def rts(monkeypatch, configfs, tmp_path) -> FakeRtslib:
    fake = FakeRtslib(configfs, tmp_path / "lio.lock")
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake.module)
    return fake


@pytest.fixture
def save_file(tmp_path):
    return tmp_path / "target" / "saveconfig.json"


@pytest.fixture
def target(rts, configfs, save_file) -> RtslibTarget:
    return RtslibTarget(FileLock(rts.lock_path, wait=5), configfs=configfs, save_file=save_file)


def create(target):
    target.create(DEV, IQN, CHAP, iser=False, ips=["127.0.0.1"], port=3260)


def so_entry(name, **extra):
    return {"name": name, "plugin": "block", "dev": f"/dev/cinder-volumes/{name.split(':')[1]}", "wwn": f"old-{name}",
            "attributes": {"block_size": 512}, **extra}


def target_entry(wwn, *initiators):
    return {"fabric": "iscsi", "wwn": wwn, "parameters": {"MaxConnections": "1"},
            "tpgs": [{"tag": 1, "enable": True, "luns": [{"index": 0, "storage_object": f"/backstores/block/{wwn}"}],
                      "node_acls": [{"node_wwn": i, "auth": {"userid": "u", "password": "old-password"}} for i in initiators],
                      "portals": [{"ip_address": "127.0.0.1", "port": 3260}]}]}


FILEIO_SAME_NAME = {"name": IQN, "plugin": "fileio", "dev": "/var/lib/images/x", "size": 1048576}
DISCOVERY = {"name": "iscsi", "discovery_enable_auth": True, "discovery_userid": "disc", "discovery_password": "discpw"}


def saved_document(*middle_targets, middle_sos=()):
    """A saved config of other targets (and a fileio object that shares the IQN's name)."""
    return {
        "fabric_modules": [DISCOVERY],
        "storage_objects": [so_entry(OTHER_1), FILEIO_SAME_NAME, *middle_sos, so_entry(OTHER_2, exclusive=False)],
        "targets": [target_entry(OTHER_1, INITIATOR), *middle_targets, target_entry(OTHER_2)],
    }


def write_saved(save_file, document):
    save_file.parent.mkdir(parents=True, exist_ok=True)
    save_file.write_text(json.dumps(document, indent=2))


def read_saved(save_file):
    return json.loads(save_file.read_text())


def without_exclusive(entry):
    return {k: v for k, v in entry.items() if k != "exclusive"}


def dumps(rts):
    return [c for c in rts.calls if c[0] in ("dump", "RTSRoot.dump")]


def test_a_persist_rewrites_only_the_touched_target_and_storage_object(target, rts, save_file):
    before = saved_document()
    write_saved(save_file, before)
    rts.seed(OTHER_1, "/dev/elsewhere")  # live, and different from its saved entry: not this persist's business
    create(target)
    rts.calls.clear()
    target.persist()
    assert dumps(rts) == [("dump", IQN), ("dump", f"block/{IQN}")]  # no full dump of the host
    after = read_saved(save_file)
    assert after["fabric_modules"] == before["fabric_modules"]
    assert after["targets"] == [*before["targets"], rts.targets[IQN].data()]
    assert after["storage_objects"] == [*before["storage_objects"], without_exclusive(rts.storage_objects[IQN].data())]
    assert save_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in save_file.parent.iterdir()) == ["saveconfig.json"]


def test_a_persist_replaces_a_stale_entry_in_place(target, rts, save_file):
    before = saved_document(target_entry(IQN, "iqn.2000-01.com.example:gone"), middle_sos=[so_entry(IQN, exclusive=True)])
    write_saved(save_file, before)
    create(target)
    target.add_initiator(IQN, CHAP, INITIATOR)
    target.persist()
    after = read_saved(save_file)
    assert after["targets"] == [before["targets"][0], rts.targets[IQN].data(), before["targets"][2]]
    assert after["targets"][1]["tpgs"][0]["node_acls"][0]["auth"]["password"] == CHAP.password
    assert after["storage_objects"] == [*before["storage_objects"][:2], without_exclusive(rts.storage_objects[IQN].data()),
                                        before["storage_objects"][3]]
    assert after["storage_objects"][3]["exclusive"] is False  # only "exclusive": true is dropped


def test_a_persist_after_delete_removes_the_entries_and_keeps_the_rest(target, rts, save_file):
    write_saved(save_file, saved_document())
    create(target)
    target.persist()
    target.delete(IQN)
    target.persist()
    assert read_saved(save_file) == saved_document()  # FILEIO_SAME_NAME is another plugin's object: kept


def test_a_persist_of_several_targets_rewrites_each(target, rts, save_file):
    write_saved(save_file, saved_document())
    rts.seed(OTHER_2, "/dev/cinder-volumes/new-other-2", INITIATOR)
    create(target)
    target.touch(OTHER_2)
    target.persist()
    after = read_saved(save_file)
    assert after["targets"] == [saved_document()["targets"][0], rts.targets[OTHER_2].data(), rts.targets[IQN].data()]


@pytest.mark.parametrize("content", [None, b"{truncated", b"[]"])
def test_a_persist_without_a_readable_saved_config_writes_the_whole_running_config(target, rts, save_file, content):
    if content is not None:
        save_file.parent.mkdir(parents=True)
        save_file.write_bytes(content)
    rts.seed(OTHER_1, "/dev/cinder-volumes/other")
    create(target)
    rts.calls.clear()
    target.persist()
    assert dumps(rts) == [("RTSRoot.dump",)]
    after = read_saved(save_file)
    assert after == {"fabric_modules": rts.fabric_modules, "targets": [rts.targets[OTHER_1].data(), rts.targets[IQN].data()],
                     "storage_objects": [without_exclusive(so.data()) for so in rts.storage_objects.values()]}
    assert save_file.stat().st_mode & 0o777 == 0o600


def test_a_persist_that_cannot_read_a_target_leaves_the_file_and_keeps_it_pending(target, rts, save_file):
    write_saved(save_file, saved_document())
    create(target)
    before = save_file.read_bytes()
    rts.fail("dump", f"cannot read auth/password {CHAP.password}")
    with pytest.raises(TargetFailed, match="read the targets to save") as info:
        target.persist()
    assert info.value.exit_code == 6
    assert save_file.read_bytes() == before
    target.persist()
    assert read_saved(save_file)["targets"][-1] == rts.targets[IQN].data()


def test_a_persist_with_nothing_pending_writes_nothing(target, rts, save_file):
    create(target)
    target.save()
    stat = save_file.stat()
    rts.calls.clear()
    target.persist()
    assert rts.calls == [] and save_file.stat().st_ino == stat.st_ino


def test_save_writes_the_whole_running_config_without_exclusive(target, rts, save_file):
    write_saved(save_file, saved_document())  # what was saved before does not matter to a full save
    rts.seed(OTHER_1, "/dev/cinder-volumes/other", INITIATOR)
    create(target)
    rts.calls.clear()
    target.save()
    assert dumps(rts) == [("RTSRoot.dump",)]
    full = copy.deepcopy(rts.dump_all())
    for so in full["storage_objects"]:
        del so["exclusive"]
    assert read_saved(save_file) == full
    assert save_file.stat().st_mode & 0o777 == 0o600
    assert target.unsaved() == []


def test_save_failure_is_a_target_failure(target, rts, save_file):
    rts.fail("RTSRoot.dump", "configfs went away")
    with pytest.raises(TargetFailed, match="dump the running LIO config"):
        target.save()
    assert not save_file.exists()
