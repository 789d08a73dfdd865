"""The SQLite inventory on real files: schema, file modes, WAL, CAS under real concurrency,
streaming, history, corruption and transactions."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import sqlite3
import stat
import sys
import threading
import uuid

import pytest

from volctl.errors import AlreadyExists, EnvironmentProblem, ExitCode, NotFound
from volctl.inventory import Inventory, inventory_error, now
from volctl.migrations import migrations
from volctl.model import Attachment, Connection, Guard

ctx = multiprocessing.get_context("fork")


def vid(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


def row(n: int, **over) -> dict:
    stamp = over.pop("stamp", None) or f"2024-01-01T00:00:00.{n:06d}+00:00"
    r = dict(
        id=vid(n), name=f"vol{n}", size=1, status="available", attach_status="detached", multiattach=0,
        volume_group="cinder-volumes", lv_name=f"volume-{vid(n)}", provider_location=None, provider_auth=None,
        previous_status=None, created_at=stamp, updated_at=stamp,
    )
    r.update(over)
    return r


def attachment(n: int, volume: int, status="attached") -> Attachment:
    return Attachment(
        id=f"att-{n}", volume_id=vid(volume), instance_uuid=str(uuid.UUID(int=10_000 + n)), attached_host="compute-1",
        mountpoint="/dev/vdb", attach_mode="rw", attach_status=status, attach_time=f"2024-01-02T00:00:00.{n:06d}+00:00",
        connector={"initiator": "iqn.1994-05.com.redhat:client1", "multipath": False},
    )


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "volctl.db"


@pytest.fixture
def inv(path):
    inventory = Inventory.open(path, create=True)
    yield inventory
    inventory.close()


def status_of(path, volume_id) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT status FROM volumes WHERE id = ?", [volume_id]).fetchone()[0]
    finally:
        conn.close()


# -- schema -----------------------------------------------------------------------------------


def test_migrations_create_the_exact_schema(inv):
    db = inv.db
    assert {"volumes", "attachments", "connections", "events"} <= set(db.table_names())
    assert db["volumes"].columns_dict == {
        "id": str, "name": str, "size": int, "status": str, "attach_status": str, "multiattach": int,
        "volume_group": str, "lv_name": str, "provider_location": str, "provider_auth": str, "previous_status": str,
        "created_at": str, "updated_at": str, "target_helper": str, "export_protocol": str,
    }
    assert db["attachments"].columns_dict == {
        "id": str, "volume_id": str, "instance_uuid": str, "attached_host": str, "mountpoint": str, "attach_mode": str,
        "attach_status": str, "attach_time": str, "detach_time": str, "connector": str,
    }
    assert db["connections"].columns_dict == {"volume_id": str, "initiator": str, "connector": str, "connected_at": str,
                                              "auth": str}
    assert db["host_credentials"].columns_dict == {"family": str, "host": str, "secrets": str, "created_at": str}
    assert db["host_credentials"].pks == ["family", "host"]
    assert db["events"].columns_dict == {
        "id": int, "volume_id": str, "volume_name": str, "at": str, "kind": str, "action": str, "from_status": str,
        "to_status": str, "argv": str, "exit_code": int, "duration": float, "detail": str, "pid": int, "entity": str,
    }
    assert db["snapshots"].columns_dict == {
        "id": str, "name": str, "volume_id": str, "volume_size": int, "status": str, "volume_group": str, "lv_name": str,
        "provider_location": str, "previous_status": str, "created_at": str, "updated_at": str,
    }
    assert db["snapshots"].pks == ["id"]
    assert ("name",) in [tuple(i.columns) for i in db["snapshots"].indexes if i.unique]
    assert db["volumes"].pks == ["id"]
    assert db["connections"].pks == ["volume_id", "initiator"]
    unique = [tuple(i.columns) for i in db["volumes"].indexes if i.unique]
    assert ("name",) in unique
    assert not migrations.pending(db)


def test_migrations_twice_are_a_no_op(path):
    first = Inventory.open(path, create=True)
    first.add_volume(**row(1))
    schema = first.db.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    applied = first.db.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
    migrations.apply(first.db)  # again, on purpose
    first.close()
    second = Inventory.open(path, create=True)
    assert second.db.conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert second.db.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == applied
    assert second.get("vol1").id == vid(1)
    second.close()


def test_concurrent_first_opens_of_a_new_file(path):
    """Several volctl processes creating the inventory at once: all succeed, one schema."""
    barrier = ctx.Barrier(4)
    results = ctx.Queue()

    def opener(i):
        barrier.wait(10)
        try:
            inventory = Inventory.open(path, create=True)
            inventory.add_volume(**row(i))
            inventory.close()
            results.put("ok")
        except Exception as e:  # noqa: BLE001 - reported to the parent
            results.put(repr(e))

    procs = [ctx.Process(target=opener, args=(i,)) for i in range(4)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert outcomes == ["ok"] * 4
    inventory = Inventory.open(path, create=False)
    assert inventory.count() == 4
    assert inventory.db.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(migrations.names)


# -- files ------------------------------------------------------------------------------------


def test_new_file_is_0600_and_new_parent_0700(path):
    Inventory.open(path, create=True).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_wal_and_shm_files_are_private_too(inv, path):
    inv.add_volume(**row(1, provider_auth="CHAP user secretpassword"))
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, suffix


def test_read_only_open_of_a_missing_file_creates_nothing(tmp_path):
    target = tmp_path / "nowhere" / "volctl.db"
    inventory = Inventory.open(target, create=False)
    assert list(inventory.list()) == []
    assert inventory.count() == 0
    assert inventory.find("vol1") is None
    with pytest.raises(NotFound):
        inventory.get("vol1")
    with pytest.raises(NotFound):
        inventory.events("vol1")
    inventory.close()
    assert not target.exists()
    assert not target.parent.exists()


def test_read_only_open_of_an_existing_file_reads_it(inv, path):
    inv.add_volume(**row(1))
    reader = Inventory.open(path, create=False)
    assert [v.name for v in reader.list()] == ["vol1"]
    reader.close()


def test_permission_warnings(path):
    Inventory.open(path, create=True).close()
    inventory = Inventory.open(path, create=True)
    assert inventory.warnings == []
    inventory.close()
    path.chmod(0o644)
    inventory = Inventory.open(path, create=True)
    assert len(inventory.warnings) == 1
    assert "0644" in inventory.warnings[0] and "chmod 600" in inventory.warnings[0]
    inventory.close()
    path.chmod(0o640)  # group-readable is just as bad: the file holds CHAP passwords
    inventory = Inventory.open(path, create=True)
    assert len(inventory.warnings) == 1 and "0640" in inventory.warnings[0]
    inventory.close()
    path.chmod(0o644)
    path.parent.chmod(0o755)
    inventory = Inventory.open(path, create=False)
    assert len(inventory.warnings) == 2
    assert any("0755" in w and "chmod 700" in w for w in inventory.warnings)
    inventory.close()


def test_every_commit_is_synced_to_the_disk(path):
    """synchronous = FULL, on the connections of writers and readers alike: in WAL mode NORMAL
    is durable against a crash of volctl, but a power cut may roll back what had committed."""
    for create in (True, False):
        inv = Inventory.open(path, create=create)
        assert inv.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        inv.close()


def test_wal_journal_mode(inv, path):
    assert inv.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent, in the file
    other.close()


def test_corrupt_file_is_environment_problem(path):
    path.parent.mkdir(parents=True)
    data = os.urandom(8192)
    path.write_bytes(b"garbage!" + data)  # never the 'SQLite format 3' header
    for create in (True, False):
        with pytest.raises(EnvironmentProblem) as info:
            Inventory.open(path, create=create)
        assert info.value.exit_code == ExitCode.ENVIRONMENT == 7
        assert str(path) in str(info.value)
        assert "corrupt" in str(info.value)


# -- volumes ----------------------------------------------------------------------------------


def test_add_find_get(inv):
    inv.add_volume(**row(1, provider_location="10.0.0.5:3260,iqn.x iqn.x 0"))
    by_id, by_name = inv.get(vid(1)), inv.get("vol1")
    assert by_id == by_name
    assert by_id.lv_path == f"/dev/cinder-volumes/volume-{vid(1)}"
    assert by_id.multiattach is False and by_id.provider_location.endswith("iqn.x iqn.x 0")
    assert inv.find("nope") is None
    with pytest.raises(NotFound) as info:
        inv.get("nope")
    assert info.value.exit_code == 3


def test_duplicate_name_is_already_exists_naming_the_name(inv):
    inv.add_volume(**row(1))
    with pytest.raises(AlreadyExists) as info:
        inv.add_volume(**row(2, name="vol1"))
    assert info.value.exit_code == 4
    assert "name" in str(info.value) and "'vol1'" in str(info.value)
    assert inv.count() == 1


def test_duplicate_id_is_already_exists_naming_the_id(inv):
    inv.add_volume(**row(1))
    with pytest.raises(AlreadyExists) as info:
        inv.add_volume(**row(1, name="other"))
    assert "id" in str(info.value) and vid(1) in str(info.value)
    assert [v.name for v in inv.list()] == ["vol1"]


def test_cas_wins_when_expected_holds(inv):
    inv.add_volume(**row(1))
    before = inv.get(vid(1))
    assert inv.cas(vid(1), ["available"], "attaching", previous_status="available") is True
    after = inv.get(vid(1))
    assert after.status == "attaching" and after.previous_status == "available"
    assert after.updated_at > before.updated_at


def test_cas_with_stale_expectation_changes_nothing(inv):
    inv.add_volume(**row(1, status="in-use", attach_status="attached"))
    before = inv.get(vid(1))
    assert inv.cas(vid(1), ["available", "error"], "deleting", attach_status="detached") is False
    assert inv.get(vid(1)) == before


def test_cas_guards(inv):
    inv.add_volume(**row(1, multiattach=0))
    assert inv.cas(vid(1), ["available"], "attaching", guards={Guard.MULTIATTACH_IS: True}) is False
    assert inv.get(vid(1)).status == "available"
    assert inv.failed_guards("volumes", vid(1), {Guard.MULTIATTACH_IS: True}) == [Guard.MULTIATTACH_IS]
    assert inv.cas(vid(1), ["available"], "attaching", guards={Guard.MULTIATTACH_IS: False}) is True


def test_cas_guard_smaller_than_and_not_exported(inv):
    inv.add_volume(**row(1, size=5))
    assert inv.cas(vid(1), ["available"], "extending", guards={Guard.SMALLER_THAN: 5}) is False
    assert inv.cas(vid(1), ["available"], "reverting", guards={Guard.NOT_EXPORTED: None}) is True
    inv.update(vid(1), status="available", provider_location="127.0.0.1:3260,iqn.x iqn.x 0")
    assert inv.failed_guards("volumes", vid(1), {Guard.NOT_EXPORTED: None, Guard.SMALLER_THAN: 6}) == [Guard.NOT_EXPORTED]


def snapshot_row(n: int, volume: int = 1, **over) -> dict:
    stamp = f"2026-01-01T00:00:{n:02d}.000000+00:00"
    base = dict(id=f"5e000000-0000-4000-8000-{n:012d}", name=f"snap{n}", volume_id=vid(volume), volume_size=1,
                status="available", volume_group="vg", lv_name=f"_snapshot-5e000000-0000-4000-8000-{n:012d}",
                created_at=stamp, updated_at=stamp)
    return {**base, **over}


def test_no_snapshots_guard_keeps_a_volume_with_snapshots(inv):
    inv.add_volume(**row(1))
    inv.add_snapshot(**snapshot_row(1))
    assert inv.cas(vid(1), ["available"], "deleting", guards={Guard.NO_SNAPSHOTS: None}) is False
    assert inv.failed_guards("volumes", vid(1), {Guard.NO_SNAPSHOTS: None}) == [Guard.NO_SNAPSHOTS]
    inv.remove_snapshot(snapshot_row(1)["id"])
    assert inv.cas(vid(1), ["available"], "deleting", guards={Guard.NO_SNAPSHOTS: None}) is True


def test_latest_snapshot_guard_is_per_volume_and_breaks_ties_by_id(inv):
    inv.add_volume(**row(1))
    inv.add_volume(**row(2))
    inv.add_snapshot(**snapshot_row(1))
    inv.add_snapshot(**snapshot_row(2, created_at=snapshot_row(1)["created_at"]))  # the same instant
    inv.add_snapshot(**snapshot_row(3, volume=2))  # newer, but another volume's
    first, second = snapshot_row(1)["id"], snapshot_row(2)["id"]
    assert inv.cas_snapshot(first, ["available"], "restoring", guards={Guard.LATEST_SNAPSHOT: None}) is False
    assert inv.cas_snapshot(second, ["available"], "restoring", guards={Guard.LATEST_SNAPSHOT: None}) is True
    assert inv.latest_snapshot(vid(1)).id == second
    assert [s.name for s in inv.snapshots(vid(1))] == ["snap1", "snap2"]
    assert [s.name for s in inv.snapshots()] == ["snap1", "snap2", "snap3"]


def test_snapshot_names_are_unique_and_found_by_id_or_name(inv):
    inv.add_volume(**row(1))
    inv.add_snapshot(**snapshot_row(1))
    with pytest.raises(AlreadyExists):
        inv.add_snapshot(**snapshot_row(2, name="snap1"))
    s = inv.get_snapshot("snap1")
    assert inv.get_snapshot(s.id) == s
    assert (s.volume_name, s.lv_path) == (row(1)["name"], f"/dev/vg/{s.lv_name}")
    with pytest.raises(NotFound):
        inv.get_snapshot("nope")


def test_snapshot_history_is_marked_as_a_snapshots(inv):
    inv.add_volume(**row(1))
    inv.add_snapshot(**snapshot_row(1))
    s = inv.get_snapshot("snap1")
    inv.record(s, "transition", "create", to_status="available")
    inv.record(inv.get(vid(1)), "note", "snapshot", detail="x")
    rows = inv.db.conn.execute("SELECT volume_id, volume_name, entity FROM events ORDER BY id").fetchall()
    assert rows == [(s.id, "snap1", "snapshot"), (vid(1), row(1)["name"], "volume")]
    assert [e.action for e in inv.events("snap1")] == ["create"]


def test_cas_on_a_missing_volume(inv):
    assert inv.cas(vid(99), ["available"], "attaching") is False


def _race_round(path, volume_id, in_transaction, barrier, results):
    inventory = Inventory.open(path, create=True)
    try:
        barrier.wait(10)
        if in_transaction:
            with inventory.write():
                won = inventory.find(volume_id).status == "available" and inventory.cas(volume_id, ["available"], "attaching")
        else:
            won = inventory.cas(volume_id, ["available"], "attaching")
        results.append(won)
    finally:
        inventory.close()


@pytest.mark.parametrize("in_transaction", [False, True])
def test_cas_race_between_two_connections_in_threads(path, in_transaction):
    setup = Inventory.open(path, create=True)
    with setup.write():
        for n in range(50):
            setup.add_volume(**row(n))
    setup.close()
    for n in range(50):
        results: list[bool] = []
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=_race_round, args=(path, vid(n), in_transaction, barrier, results)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [False, True], n
        assert status_of(path, vid(n)) == "attaching"


def _race_worker(path, rounds, barrier, results, me):
    inventory = Inventory.open(path, create=True)
    for n in range(rounds):
        barrier.wait(30)
        with inventory.write():
            won = inventory.cas(vid(n), ["available"], "attaching")
            if won:
                inventory.record((vid(n), f"vol{n}"), "transition", "reserve", from_status="available", to_status="attaching")
        results.put((n, me, won))
    inventory.close()


def test_cas_race_between_two_processes(path):
    rounds = 50
    setup = Inventory.open(path, create=True)
    with setup.write():
        for n in range(rounds):
            setup.add_volume(**row(n))
    setup.close()
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(path, rounds, barrier, results, me)) for me in (0, 1)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in range(2 * rounds)]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    winners: dict[int, list[int]] = {}
    for n, me, won in outcomes:
        if won:
            winners.setdefault(n, []).append(me)
    assert sorted(winners) == list(range(rounds))
    assert all(len(w) == 1 for w in winners.values())
    check = Inventory.open(path, create=False)
    assert {v.status for v in check.list()} == {"attaching"}
    assert all(len(check.events(vid(n))) == 1 for n in range(rounds))  # one history line per winner
    check.close()


def test_update_and_remove(inv):
    inv.add_volume(**row(1))
    inv.add_attachment(attachment(1, 1))
    inv.add_connection(Connection(vid(1), "iqn.1994-05.com.redhat:client1", {"initiator": "iqn.1994-05.com.redhat:client1"}, now()))
    inv.update(vid(1), provider_auth="CHAP u p")
    assert inv.get(vid(1)).provider_auth == "CHAP u p"
    inv.remove_volume(vid(1))
    assert inv.find(vid(1)) is None
    assert inv.db.conn.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0
    assert inv.db.conn.execute("SELECT count(*) FROM connections").fetchone()[0] == 0


def test_attachments_and_connections_round_trip(inv):
    inv.add_volume(**row(1))
    inv.add_attachment(attachment(1, 1))
    inv.add_attachment(attachment(2, 1))
    inv.detach_attachment("att-1", "2024-01-03T00:00:00+00:00")
    connector = {"initiator": "iqn.1994-05.com.redhat:client1", "host": "compute-1", "multipath": True}
    inv.add_connection(Connection(vid(1), connector["initiator"], connector, "t1"))
    inv.add_connection(Connection(vid(1), connector["initiator"], {**connector, "multipath": False}, "t2"))  # upsert
    volume = inv.get(vid(1))
    assert [(a.id, a.attach_status) for a in volume.attachments] == [("att-1", "detached"), ("att-2", "attached")]
    assert volume.attachments[0].detach_time == "2024-01-03T00:00:00+00:00"
    assert volume.attachments[1].connector == attachment(2, 1).connector
    assert [a.id for a in volume.live_attachments] == ["att-2"]
    assert len(volume.connections) == 1
    assert volume.connections[0].connector == {**connector, "multipath": False}
    inv.remove_connection(vid(1), connector["initiator"])
    assert inv.get(vid(1)).connections == ()


# -- list ---------------------------------------------------------------------------------------


def test_list_streams_many_volumes_with_their_attachments(inv):
    total = 1205
    with inv.write():
        for n in range(total):
            inv.add_volume(**row(n, status="in-use" if n % 600 == 0 else "available"))
        for n, volume in enumerate((0, 600, 1200, 1200)):
            inv.add_attachment(attachment(n, volume))
    stream = inv.list()
    first = next(stream)  # that it streams: test_list_json_writes_each_volume_before_reading_the_rest
    assert first.id == vid(0) and [a.id for a in first.attachments] == ["att-0"]
    rest = list(stream)
    volumes = [first, *rest]
    assert len(volumes) == total
    assert [v.id for v in volumes] == [vid(n) for n in range(total)]  # created_at order
    with_attachments = {v.name: [a.id for a in v.attachments] for v in volumes if v.attachments}
    assert with_attachments == {"vol0": ["att-0"], "vol600": ["att-1"], "vol1200": ["att-2", "att-3"]}
    in_use = [v.name for v in inv.list(status="in-use")]
    assert in_use == ["vol0", "vol600", "vol1200"]
    assert all(v.attachments for v in inv.list(status="in-use"))
    assert list(inv.list(status="error")) == []
    assert inv.count() == total


def test_list_json_writes_each_volume_before_reading_the_rest(inv, path, make_service, monkeypatch):
    """`list --json` streams (README: its memory does not grow with the inventory): whenever a write
    reaches stdout, SQLite has handed out at most one batch of volume rows more than stdout has
    received. A row factory on every connection volctl opens counts the rows, so loading them all
    (fetchall, list(...), a JSON document built before it is written) anywhere on the way shows."""
    from volctl import inventory as inventory_module
    from volctl.cli import App, cli

    total = 4 * inventory_module._BATCH + 7
    with inv.write():
        for n in range(total):
            inv.add_volume(**row(n))
    fetched = [0]

    def counting(cursor, values):
        if "lv_name" in (c[0] for c in cursor.description):
            fetched[0] += 1
        return values

    real_connect = inventory_module._connect

    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.row_factory = counting
        return conn

    class Stdout(io.StringIO):
        def __init__(self):
            super().__init__()
            self.ahead: list[int] = []  # per write: rows handed out minus volumes already on stdout
            self.volumes = 0

        def write(self, text: str) -> int:
            self.ahead.append(fetched[0] - self.volumes)
            self.volumes += text.count('"lv_path"')
            return super().write(text)

    stdout = Stdout()
    monkeypatch.setattr(inventory_module, "_connect", connect)
    monkeypatch.setattr(sys, "stdout", stdout)
    with pytest.raises(SystemExit) as done:
        cli.main(["--db", str(path), "list", "--json"], prog_name="volctl", obj=App(_service=make_service()))
    monkeypatch.undo()
    assert done.value.code == 0
    assert [v["id"] for v in json.loads(stdout.getvalue())] == [vid(n) for n in range(total)]
    assert max(stdout.ahead) <= inventory_module._BATCH, max(stdout.ahead)
    assert fetched[0] == total and len(stdout.ahead) > total  # every row counted; written item by item


# -- history ------------------------------------------------------------------------------------


def test_events_by_id_and_by_name_survive_removal(inv):
    inv.add_volume(**row(1))
    volume = inv.get(vid(1))
    inv.record(volume, "transition", "create", from_status=None, to_status="available", detail="1 GiB")
    inv.record(volume, "command", "create", argv=["lvcreate", "-n", "volume-x", "cinder-volumes", "-L", "1g"], exit_code=0, duration=0.25)
    inv.record((vid(1), "vol1"), "transition", "delete", from_status="available", to_status="deleting")
    inv.remove_volume(vid(1))
    for ref in (vid(1), "vol1"):
        events = inv.events(ref)
        assert [(e.kind, e.action) for e in events] == [("transition", "create"), ("command", "create"), ("transition", "delete")]
        assert events[1].argv == ("lvcreate", "-n", "volume-x", "cinder-volumes", "-L", "1g")
        assert events[1].exit_code == 0 and events[1].duration == 0.25
        assert events[0].argv is None and events[0].to_status == "available" and events[0].detail == "1 GiB"
        assert [e.id for e in events] == sorted(e.id for e in events)
        assert all(e.volume_id == vid(1) for e in events)
    with pytest.raises(NotFound):
        inv.events("vol2")


def test_events_by_a_reused_name_are_the_newest_volumes(inv):
    inv.add_volume(**row(1, name="db"))
    inv.record(inv.get(vid(1)), "transition", "create", to_status="available")
    inv.remove_volume(vid(1))
    inv.add_volume(**row(2, name="db"))
    inv.record(inv.get(vid(2)), "transition", "create", to_status="error")
    assert [e.to_status for e in inv.events("db")] == ["error"]
    assert [e.to_status for e in inv.events(vid(1))] == ["available"]


# -- transactions -------------------------------------------------------------------------------


def test_failed_write_rolls_back_everything_inside_it(inv, path):
    inv.add_volume(**row(0))
    with pytest.raises(RuntimeError):
        with inv.write():
            inv.add_volume(**row(1))
            inv.cas(vid(0), ["available"], "deleting")
            inv.record((vid(1), "vol1"), "transition", "create", to_status="creating")
            inv.add_attachment(attachment(1, 1))
            inv.update(vid(0), provider_auth="CHAP u p")
            raise RuntimeError("crash in the middle")
    assert not inv.db.conn.in_transaction
    for reader in (inv, Inventory.open(path, create=False)):
        assert [v.name for v in reader.list()] == ["vol0"]
        assert reader.get(vid(0)).status == "available"
        assert reader.get(vid(0)).provider_auth is None
        assert reader.db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
        assert reader.db.conn.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0


def test_constraint_violation_inside_write_rolls_back_the_earlier_inserts(inv):
    with pytest.raises(AlreadyExists):
        with inv.write():
            inv.add_volume(**row(1))
            inv.add_volume(**row(2))
            inv.add_volume(**row(3, name="vol1"))
    assert inv.count() == 0
    inv.add_volume(**row(1))  # the connection is usable afterwards
    assert inv.count() == 1


def test_nested_write_failure_undoes_only_the_inner_part(inv):
    with inv.write():
        inv.add_volume(**row(1))
        with pytest.raises(RuntimeError):
            with inv.write():
                inv.add_volume(**row(2))
                raise RuntimeError("inner")
        inv.add_volume(**row(3))
    assert [v.name for v in inv.list()] == ["vol1", "vol3"]


def test_other_connections_never_see_half_a_write(inv, path):
    reader = Inventory.open(path, create=False)
    with inv.write():
        inv.add_volume(**row(1))
        inv.add_volume(**row(2))
        assert reader.count() == 0
    assert reader.count() == 2
    reader.close()


def test_write_lock_busy_past_the_timeout(path):
    holder = Inventory.open(path, create=True)
    waiter = Inventory.open(path, create=True, busy_timeout=0.1)
    with holder.write():
        with pytest.raises(sqlite3.OperationalError, match="locked") as info:
            with waiter.write():
                pass
    problem = inventory_error(str(path), info.value)  # what the CLI turns it into
    assert isinstance(problem, EnvironmentProblem) and problem.exit_code == 7
    assert "locked" in str(problem) and str(path) in str(problem)
    with waiter.write():  # free again once the holder commits
        waiter.add_volume(**row(1))
    holder.close()
    waiter.close()


def test_a_schema_committed_by_another_volctl_while_this_one_opens_is_not_another_programs_file(tmp_path, monkeypatch):
    """Found by test_races under load: 16 creates on a fresh inventory, one exit 7 "not a volctl
    inventory". The first volctl commits the tables and its migration rows in one transaction; if
    that commit falls between a second volctl's reads of the migrations and of the tables, the
    second saw tables without migrations. Here the commit is made to fall right there."""
    import volctl.inventory as inventory_module

    db = tmp_path / "volctl.db"
    read_applied = inventory_module._applied
    others = []

    def applied_then_another_volctl_commits(database):
        found = read_applied(database)
        if not others:
            others.append(None)  # the other volctl reads through here too
            others[0] = Inventory.open(db, create=True)  # applies the whole schema and commits
        return found

    monkeypatch.setattr(inventory_module, "_applied", applied_then_another_volctl_commits)
    inv = Inventory.open(db, create=True)
    assert others and inv.count() == 0
    inv.close()
    others[0].close()
