"""snapshot create/list/show/delete, create --snapshot/--source-volume and revert through the real
CLI: their JSON and human output, exit codes, and bad input refused before anything changes."""

from __future__ import annotations

import re

import pytest
from conftest import INITIATOR_1, INSTANCE_1, inventory_tables

VG = "cinder-volumes"
SNAP_ID = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
SNAPSHOT_KEYS = {"id", "name", "volume_id", "volume_name", "volume_size", "status", "volume_group", "lv_path",
                 "provider_location", "previous_status", "created_at", "updated_at"}
VOLUME_KEYS = {"id", "name", "size", "status", "attach_status", "multiattach", "lv_path", "provider_location",
               "created_at", "updated_at", "attachments"}


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def refused(result, code: int) -> str:
    """One line on stderr, no traceback, nothing on stdout: the message."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_snapshot_json_documents(volctl, host):
    vol = ok(volctl("create", "--size", "2", "--name", "v1", "--json")).json()
    host.calls.clear()
    snap = ok(volctl("snapshot", "create", "v1", "--name", "s1", "--json")).json()
    assert set(snap) == SNAPSHOT_KEYS
    assert (snap["name"], snap["status"], snap["volume_id"], snap["volume_name"], snap["volume_size"]) == \
        ("s1", "available", vol["id"], "v1", 2)
    assert snap["lv_path"] == f"/dev/{VG}/_snapshot-{snap['id']}" and snap["volume_group"] == VG
    assert host.calls[-1] == ["lvcreate", "--name", f"_snapshot-{snap['id']}", "--snapshot", f"{VG}/volume-{vol['id']}",
                              "-L", "2g"]
    assert ok(volctl("snapshot", "list", "--json")).json() == [snap]
    assert ok(volctl("snapshot", "list", "v1", "--json")).json() == [snap]
    assert ok(volctl("snapshot", "show", snap["id"], "--json")).json() == snap
    assert ok(volctl("--json", "snapshot", "show", "s1")).json() == snap

    made = ok(volctl("create", "--snapshot", "s1", "--name", "n1", "--json")).json()
    assert VOLUME_KEYS <= set(made) and (made["size"], made["status"]) == (2, "available")
    clone = ok(volctl("create", "--source-volume", "v1", "--size", "3", "--name", "c1", "--json")).json()
    assert VOLUME_KEYS <= set(clone) and (clone["size"], clone["status"]) == (3, "available")

    reverted = ok(volctl("revert", "v1", "--snapshot", "s1", "--json")).json()
    assert VOLUME_KEYS <= set(reverted) and reverted["id"] == vol["id"] and reverted["status"] == "available"
    assert ok(volctl("snapshot", "show", "s1", "--json")).json()["status"] == "available"

    events = ok(volctl("history", "s1", "--json")).json()
    assert [(e["action"], e["to_status"]) for e in events if e["kind"] == "transition"] == [
        ("create", "creating"), ("create", "available"), ("revert", "restoring"), ("revert", "available")]
    deleted = ok(volctl("snapshot", "delete", "s1", "--json")).json()
    assert deleted == {"id": snap["id"], "name": "s1", "deleted": True}
    assert ok(volctl("snapshot", "list", "--json")).json() == []
    assert ok(volctl("history", snap["id"], "--json")).json()[-1]["to_status"] == "deleted"  # history outlives it


def test_snapshot_human_output(volctl):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    r = ok(volctl("snapshot", "list"))
    assert r.stdout == "" and "no snapshots" in r.stderr
    r = ok(volctl("snapshot", "create", "v1", "--name", "s1"))
    sid = re.search(r"created snapshot s1 \(([0-9a-f-]{36})\)", r.stderr).group(1)
    assert re.search(r"^status\s+available$", r.stdout, re.M) and re.search(r"^volume_size\s+1 GiB$", r.stdout, re.M)
    assert re.search(r"^provider_location\s+-$", r.stdout, re.M)
    lines = ok(volctl("snapshot", "list")).stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "VOLUME", "SIZE", "STATUS", "CREATED"]
    assert lines[1].split()[:5] == [sid, "s1", "v1", "1G", "available"]
    r = ok(volctl("revert", "v1", "--snapshot", "s1"))
    assert "reverted v1 to snapshot s1" in r.stderr and re.search(r"^status\s+available", r.stdout, re.M)
    r = ok(volctl("create", "--snapshot", "s1", "--name", "n1"))
    assert "created n1 (" in r.stderr
    r = ok(volctl("snapshot", "delete", "s1"))
    assert r.stdout == f"deleted snapshot s1 ({sid})\n"


def test_snapshot_commands_exit_codes(volctl):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    ok(volctl("reserve", "v1"))
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    ok(volctl("attach", "v1", "--instance", INSTANCE_1))
    assert "--force snapshots an in-use volume" in refused(volctl("snapshot", "create", "v1", "--name", "s1"), 5)
    ok(volctl("snapshot", "create", "v1", "--name", "s1", "--force"))
    assert "already exists" in refused(volctl("snapshot", "create", "v1", "--name", "s1", "--force"), 4)
    assert "no snapshot 'nosuch'" in refused(volctl("snapshot", "show", "nosuch"), 3)
    assert refused(volctl("snapshot", "create", "nosuch"), 3)
    assert "revert needs 'available'" in refused(volctl("revert", "v1", "--snapshot", "s1"), 5)
    ok(volctl("detach", "v1"))
    ok(volctl("export", "v1"))
    assert "unexport it first" in refused(volctl("revert", "v1", "--snapshot", "s1"), 5)
    assert "it has snapshots" in refused(volctl("delete", "v1"), 5)
    ok(volctl("unexport", "v1"))
    ok(volctl("revert", "v1", "--snapshot", "s1"))


@pytest.fixture
def world(volctl, db_path, host):
    """v1 (2 GiB) with snapshot s1, and what it takes to tell that a refused command changed nothing."""
    ok(volctl("create", "--size", "2", "--name", "v1"))
    ok(volctl("snapshot", "create", "v1", "--name", "s1"))

    def state():
        return inventory_tables(db_path), host.to_state()

    return state


@pytest.mark.parametrize("args", [
    ["snapshot", "show", "bad name"],
    ["snapshot", "show", "s1\n"],
    ["snapshot", "delete", "a/b"],
    ["snapshot", "list", "../v1"],
    ["snapshot", "create", "v1", "--name", "has space"],
    ["snapshot", "create", "v1", "--name", "x" * 64],
    ["snapshot", "create", "v1", "--name", SNAP_ID],  # shaped like a UUID: ambiguous with ids
    ["snapshot", "create", "v1\udcff", "--name", "s2"],
    ["snapshot", "create", "v1", "--force=yes"],
    ["snapshot", "frobnicate", "s1"],
    ["create", "--snapshot", "s1", "--source-volume", "v1"],
    ["create", "--source-volume", "v1", "--snapshot", "s1", "--size", "3"],
    ["create", "--snapshot", "s1", "--size", "0"],
    ["create", "--source-volume", "v1", "--size", "0"],
    ["create", "--snapshot", "s1", "--size", "1"],  # smaller than the snapshot's 2 GiB
    ["create", "--source-volume", "v1", "--size", "1"],
    ["create", "--snapshot", "bad name", "--name", "n1"],
    ["create", "--snapshot", "s1", "--name", "-x"],
    ["create"],  # neither --size nor a source
    ["revert", "v1", "--snapshot", "bad name"],
    ["revert", "v1"],
    ["revert", "bad name", "--snapshot", "s1"],
])
def test_bad_input_is_refused_with_one_line_and_changes_nothing(volctl, world, host, args):
    before = world()
    host.calls.clear()
    for r in (volctl(*args), volctl("--json", *args)):
        assert refused(r, 2).startswith("Error: ")
    assert world() == before  # not a row, not a history line, not an LV
    assert [c for c in host.calls if c[0] != "lvs"] == []
