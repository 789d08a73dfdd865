"""volctl/targets/saved.py: the saved LIO config both helpers write and the host's restore reads.
merged() against the document a full save would give, reading it, and writing it atomically 0600."""

from __future__ import annotations

import copy
import errno
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volctl import files
from volctl.errors import EnvironmentProblem
from volctl.targets import saved
from volctl.targets.saved import SavedTarget

FAST = settings(max_examples=300)
PREFIX = "iqn.2010-10.org.openstack:"
NAMES = [f"{PREFIX}volume-{n}" for n in ("a", "b", "c", "d")] + ["naa.5001405e8bfa2d4c"]
INITIATOR = "iqn.1994-05.com.redhat:client1"

# What tells two versions of one entry apart (a dump after a change differs somewhere inside it).
revisions = st.integers(min_value=0, max_value=3)


def target_entry(fabric, wwn, revision):
    return {"fabric": fabric, "wwn": wwn, "tpgs": [{"tag": 1, "node_acls": [{"node_wwn": INITIATOR}] * revision}]}


def so_entry(plugin, name, revision):
    return {"plugin": plugin, "name": name, "dev": f"/dev/x{revision}", "attributes": {"block_size": 512 * (revision + 1)}}


targets_st = st.builds(target_entry, st.sampled_from(["iscsi", "loopback", "vhost"]), st.sampled_from(NAMES), revisions)
sos_st = st.builds(so_entry, st.sampled_from(["block", "fileio", "ramdisk"]), st.sampled_from(NAMES), revisions)


@st.composite
def documents(draw):
    """A saved config as rtslib writes it: one entry per (fabric, wwn) and per (plugin, name), in
    whatever order configfs listed them; sometimes without a list, sometimes with keys volctl
    does not know."""
    document = {}
    if draw(st.booleans()):
        document["targets"] = draw(st.lists(targets_st, max_size=8, unique_by=lambda t: (t["fabric"], t["wwn"])))
    if draw(st.booleans()):
        document["storage_objects"] = draw(st.lists(sos_st, max_size=8, unique_by=lambda so: (so["plugin"], so["name"])))
    document["fabric_modules"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["iscsi", "loopback"]),
                                                                      "discovery_enable_auth": st.booleans()}),
                                               max_size=2, unique_by=lambda f: f["name"]))
    if draw(st.booleans()):
        document["version"] = draw(st.integers())
    return document


def touched_target(iqn, entry):
    return entry.get("fabric") == "iscsi" and entry.get("wwn") == iqn


def touched_so(iqn, entry):
    return entry.get("plugin") == "block" and entry.get("name") == iqn


@FAST
@given(documents(), st.sampled_from(NAMES), st.none() | revisions, st.none() | revisions)
def test_merged_is_what_a_full_save_would_write(document, iqn, target_revision, so_revision):
    """The host's running config after the change is the saved one with this target and storage
    object as they are now: everything else in it is as the save file had it."""
    new_target = None if target_revision is None else target_entry("iscsi", iqn, target_revision)
    new_so = None if so_revision is None else so_entry("block", iqn, so_revision)
    before = copy.deepcopy(document)

    result = saved.merged(document, iqn, new_target, new_so)

    full = dict(before)
    full["targets"] = [t for t in before.get("targets", []) if not touched_target(iqn, t)] + [new_target] * (new_target is not None)
    full["storage_objects"] = [so for so in before.get("storage_objects", []) if not touched_so(iqn, so)] + [new_so] * (new_so is not None)
    assert saved.normalized(result) == saved.normalized(full)
    assert document == before  # the caller's document is not changed


@FAST
@given(documents(), st.sampled_from(NAMES), st.none() | revisions, st.none() | revisions)
def test_merged_keeps_the_order_and_updates_in_place(document, iqn, target_revision, so_revision):
    new_target = None if target_revision is None else target_entry("iscsi", iqn, target_revision)
    new_so = None if so_revision is None else so_entry("block", iqn, so_revision)

    result = saved.merged(document, iqn, new_target, new_so)

    for key, touched, new in (("targets", touched_target, new_target), ("storage_objects", touched_so, new_so)):
        old, now = document.get(key, []), result[key]
        assert [e for e in now if not touched(iqn, e)] == [e for e in old if not touched(iqn, e)]
        assert [e for e in now if touched(iqn, e)] == ([new] if new is not None else [])
        was = [i for i, e in enumerate(old) if touched(iqn, e)]
        if new is not None:
            assert now.index(new) == (was[0] if was else len(now) - 1)  # where it was, or appended
    assert {k: v for k, v in result.items() if k not in ("targets", "storage_objects")} == \
           {k: v for k, v in document.items() if k not in ("targets", "storage_objects")}
    assert saved.merged(result, iqn, new_target, new_so) == result  # merging the same again changes nothing


def test_merged_leaves_one_entry_where_a_hand_edited_file_had_two():
    iqn = NAMES[0]
    document = {"targets": [target_entry("iscsi", iqn, 0), target_entry("iscsi", NAMES[1], 0), target_entry("iscsi", iqn, 1)],
                "storage_objects": [so_entry("block", iqn, 0), so_entry("block", iqn, 1)]}
    result = saved.merged(document, iqn, target_entry("iscsi", iqn, 3), None)
    assert result["targets"] == [target_entry("iscsi", iqn, 3), target_entry("iscsi", NAMES[1], 0)]
    assert result["storage_objects"] == []


def test_normalized_orders_every_list():
    document = {"targets": [target_entry("iscsi", NAMES[1], 0), target_entry("iscsi", NAMES[0], 0),
                            target_entry("loopback", NAMES[0], 0)],
                "storage_objects": [so_entry("fileio", NAMES[0], 0), so_entry("block", NAMES[1], 0), so_entry("block", NAMES[0], 0)],
                "fabric_modules": [{"name": "loopback"}, {"name": "iscsi"}], "version": 2}
    result = saved.normalized(document)
    assert [(t["fabric"], t["wwn"]) for t in result["targets"]] == [("iscsi", NAMES[0]), ("iscsi", NAMES[1]), ("loopback", NAMES[0])]
    assert [(s["plugin"], s["name"]) for s in result["storage_objects"]] == [("block", NAMES[0]), ("block", NAMES[1]), ("fileio", NAMES[0])]
    assert [f["name"] for f in result["fabric_modules"]] == ["iscsi", "loopback"] and result["version"] == 2


# -- reading ----------------------------------------------------------------------------------


def test_read_of_a_missing_file_is_none(tmp_path):
    assert saved.read(tmp_path / "absent" / "saveconfig.json") is None


def test_read_returns_the_document(tmp_path):
    path = tmp_path / "saveconfig.json"
    path.write_text(json.dumps({"targets": [], "storage_objects": [], "fabric_modules": []}))
    assert saved.read(path) == {"targets": [], "storage_objects": [], "fabric_modules": []}


@pytest.mark.parametrize("content, why", [(b"{not json", "Expecting"), (b"", "Expecting"), (b"[]", "not a JSON object"),
                                          (b"null", "not a JSON object"), (b'"text"', "not a JSON object"),
                                          (b'{"a": "\xff"}', "utf-8")])
def test_read_of_an_unreadable_file_is_an_environment_problem(tmp_path, content, why):
    path = tmp_path / "saveconfig.json"
    path.write_bytes(content)
    with pytest.raises(EnvironmentProblem) as info:
        saved.read(path)
    assert info.value.exit_code == 7
    assert str(info.value).startswith(f"saved LIO config {path} is unreadable: ") and why in str(info.value)


def test_read_of_a_directory_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem, match="unreadable"):
        saved.read(tmp_path)


def test_targets_lists_the_initiators_of_each_targets_first_tpg():
    document = {"targets": [
        {"wwn": NAMES[0], "tpgs": [{"node_acls": [{"node_wwn": INITIATOR}, {"node_wwn": "iqn.2000-01.x:y"}]},
                                   {"node_acls": [{"node_wwn": "iqn.2000-01.x:second-tpg"}]}]},
        {"wwn": NAMES[1], "tpgs": []},
        {"wwn": NAMES[2]},
    ]}
    assert saved.targets(document) == [SavedTarget(NAMES[0], (INITIATOR, "iqn.2000-01.x:y")), SavedTarget(NAMES[1], ()),
                                       SavedTarget(NAMES[2], ())]
    assert saved.targets({}) == []


def test_restorable_by_older_rtslib_drops_only_exclusive_true():
    document = {"storage_objects": [{"name": "a", "exclusive": True}, {"name": "b", "exclusive": False}, {"name": "c"}]}
    assert saved.restorable_by_older_rtslib(document) is True
    assert document["storage_objects"] == [{"name": "a"}, {"name": "b", "exclusive": False}, {"name": "c"}]
    assert saved.restorable_by_older_rtslib(document) is False


# -- writing ----------------------------------------------------------------------------------

DOCUMENT = {"targets": [target_entry("iscsi", NAMES[0], 1)], "storage_objects": [so_entry("block", NAMES[0], 0)],
            "fabric_modules": []}


@pytest.fixture
def open_umask():
    """A umask that would leave a new file world-readable: the mode must not depend on it."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_write_is_json_one_entry_a_line_mode_0600_and_leaves_no_temp_file(tmp_path, open_umask):
    path = tmp_path / "etc" / "target" / "saveconfig.json"
    saved.write(path, DOCUMENT)
    text = path.read_text()
    assert json.loads(text) == DOCUMENT
    lines = text.splitlines()
    assert (lines[0], lines[-1]) == ("{", "}")
    for key in ("storage_objects", "targets"):  # each entry whole on a line of its own, keys sorted
        for entry in DOCUMENT[key]:
            assert f"    {json.dumps(entry, sort_keys=True)}" in [line.rstrip(",") for line in lines]
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(path.parent) == ["saveconfig.json"]


@given(st.dictionaries(st.sampled_from(["fabric_modules", "storage_objects", "targets", "other"]),
                       st.one_of(st.lists(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5),
                                                                                           st.booleans(), st.none()),
                                                          max_size=3), max_size=3),
                                 st.integers(), st.text(max_size=5), st.none())))
def test_the_text_reads_back_as_the_document_whatever_it_holds(document):
    assert json.loads(files.json_lines(document)) == document


def test_write_over_a_world_readable_file_makes_it_0600(tmp_path, open_umask):
    path = tmp_path / "saveconfig.json"
    path.write_text("{}")
    path.chmod(0o644)
    saved.write(path, DOCUMENT)
    assert path.stat().st_mode & 0o777 == 0o600 and saved.read(path) == DOCUMENT


def test_write_is_a_rename_of_a_complete_synced_file(tmp_path, monkeypatch):
    """A reader (the host's restore, a crash) sees the old file or the new one, never a part; and
    the rename is on the disk before write returns (the directory is synced, as rtslib's save does)."""
    path = tmp_path / "saveconfig.json"
    path.write_text('{"old": true}')
    seen = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        seen.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync")
        real_fsync(fd)

    def replace(src, dst):
        seen.append(("replace", json.loads(open(src).read()), os.stat(src).st_mode & 0o777, path.read_text()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    saved.write(path, DOCUMENT)
    assert seen == ["fsync", ("replace", DOCUMENT, 0o600, '{"old": true}'), "fsync dir"]


def test_write_over_a_temp_file_a_crash_left(tmp_path):
    path = tmp_path / "saveconfig.json"
    (tmp_path / ".saveconfig.json.volctl").write_text('{"half')
    saved.write(path, DOCUMENT)
    assert saved.read(path) == DOCUMENT and os.listdir(tmp_path) == ["saveconfig.json"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_write_that_fails_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, step):
    path = tmp_path / "saveconfig.json"
    path.write_text('{"old": true}')

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, step, full)
    with pytest.raises(EnvironmentProblem) as info:
        saved.write(path, DOCUMENT)
    assert info.value.exit_code == 7
    assert str(info.value) == f"cannot write the saved LIO config {path}: No space left on device"
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["saveconfig.json"]  # the temp file holds CHAP passwords too


def test_write_where_the_directory_cannot_be_made(tmp_path):
    (tmp_path / "etc").write_text("a file where the directory should be")
    with pytest.raises(EnvironmentProblem, match="cannot write the saved LIO config"):
        saved.write(tmp_path / "etc" / "target" / "saveconfig.json", DOCUMENT)


def test_differences_name_each_entry_that_disagrees():
    ours = {"targets": [{"wwn": "a", "x": 1}, {"wwn": "b"}], "storage_objects": [{"name": "a"}], "fabric_modules": []}
    full = {"targets": [{"wwn": "a", "x": 2}, {"wwn": "c"}], "storage_objects": [{"name": "a"}], "fabric_modules": [1]}
    assert saved.differences(ours, full) == [
        "targets: b: only in volctl's file", "targets: c: missing from volctl's file", "targets: a: differs",
        "fabric_modules: differs",
    ]
    assert saved.differences(ours, ours) == []
