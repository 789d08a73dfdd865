"""The SQLite inventory: the only module besides migrations.py that touches sqlite-utils.

Every status change is a compare-and-swap (UPDATE ... WHERE id=? AND status IN (...)); writes
that belong together run in one BEGIN IMMEDIATE transaction, so a reader never sees half of one
and two writers never deadlock on a lock upgrade.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from volctl.errors import AlreadyExists, EnvironmentProblem, NotFound
from volctl.inventory_attachments import AttachmentRows
from volctl.inventory_events import EventRows
from volctl.inventory_snapshots import SnapshotRows
from volctl.inventory_stats import StatsRows
from volctl.migrations import migrations
from volctl.model import Guard, Volume

if TYPE_CHECKING:
    from sqlite_utils import Database

BUSY_TIMEOUT = 30.0
_BATCH = 500
# A guard of the transition table (model.Guard) as SQL on the row it guards, with how many of
# the caller's values it takes.
GUARDS: dict[Guard, tuple[str, int]] = {
    Guard.MULTIATTACH_IS: ("multiattach = ?", 1),
    Guard.ATTACHED: ("attach_status = 'attached'", 0),
    Guard.NOT_ATTACHED: ("attach_status != 'attached'", 0),
    Guard.SMALLER_THAN: ("size < ?", 1),
    Guard.NO_SNAPSHOTS: ("NOT EXISTS (SELECT 1 FROM snapshots WHERE snapshots.volume_id = volumes.id)", 0),
    Guard.NOT_EXPORTED: ("provider_location IS NULL", 0),
    Guard.LATEST_SNAPSHOT: ("NOT EXISTS (SELECT 1 FROM snapshots AS newer WHERE newer.volume_id = snapshots.volume_id"
                            " AND (newer.created_at, newer.id) > (snapshots.created_at, snapshots.id))", 0),
}
Guards = dict  # {Guard: value}; a guard without a value maps to None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _connect(target: str, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN; transactions are opened explicitly below.
    conn = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return conn


class Inventory(AttachmentRows, EventRows, SnapshotRows, StatsRows):
    """The inventory's volume rows here; attachments and connections, history and snapshots in
    the modules of their rows (inventory_attachments.py, inventory_events.py, inventory_snapshots.py)."""

    def __init__(self, db: Database, path: str):
        self._now = now
        self.db = db
        self.path = path
        self.warnings: list[str] = []

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool, busy_timeout: float = BUSY_TIMEOUT) -> "Inventory":
        """create=False (read-only commands): a missing file reads as an empty inventory and is not created."""
        file = Path(path)
        warnings: list[str] = []
        if not _exists(file):
            if not create:
                db = _Database(_connect(":memory:", busy_timeout))
                migrations.apply(db)
                return cls(db, str(file))
            _create_private(file)
        else:
            warnings += _permission_warnings(file)
        try:
            conn = _connect(str(file), busy_timeout)
            db = _Database(conn)
            # Tables first, then volctl's migrations: a first volctl committing the schema (tables
            # and migration rows in one transaction) between the two reads is then seen by the
            # second, and never makes a fresh inventory look like another program's file.
            has_tables = _has_tables(db)
            applied = _applied(db)
            _refuse_foreign(has_tables, applied, str(file))
            if create:
                _use_wal(conn, busy_timeout)
            # FULL: a transaction that has committed is on the disk (WAL synced at each commit).
            # NORMAL is durable against a crash of volctl, not of the host: a power cut could roll
            # back a claim made before LVM or LIO was touched, or a connect that printed its
            # credentials (README "Guarantees"; BENCHMARKS.md measures what it costs).
            conn.execute("PRAGMA synchronous = FULL")
            if _pending(db, applied):
                inventory = cls(db, str(file))
                with inventory.write():
                    migrations.apply(db)  # its atomic() nests as a savepoint in our IMMEDIATE transaction
        except sqlite3.DatabaseError as e:
            raise inventory_error(str(file), e) from None
        inventory = cls(db, str(file))
        inventory.warnings = warnings
        return inventory

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator["Inventory"]:
        """One IMMEDIATE transaction: the write lock is taken up front, waiting up to the busy timeout."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- volumes ---------------------------------------------------------------------------

    def find(self, ref: str) -> Volume | None:
        row = self._volume_row("id = ?", ref) or self._volume_row("name = ?", ref)
        return self._hydrate(row) if row else None

    def get(self, ref: str) -> Volume:
        volume = self.find(ref)
        if volume is None:
            raise NotFound(f"no volume {ref!r}")
        return volume

    def list(self, status: str | None = None) -> Iterator[Volume]:
        """Streams in batches: memory stays flat however many volumes there are."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        cursor = self.db.conn.execute(f"SELECT * FROM volumes {where} ORDER BY created_at, id", params)
        columns = [c[0] for c in cursor.description]
        while batch := cursor.fetchmany(_BATCH):
            rows = [dict(zip(columns, values)) for values in batch]
            by_volume = self._attachments_of([r["id"] for r in rows])
            for row in rows:
                yield self._to_volume(row, by_volume.get(row["id"], ()), ())

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM volumes").fetchone()[0]

    def provisioned_gib(self, vg: str) -> int:
        """What the inventory has promised in a volume group: every volume's and snapshot's size,
        whatever its status (a row in 'creating' or 'error' may hold an LV), as Cinder counts every LV."""
        conn = self.db.conn
        volumes = conn.execute("SELECT COALESCE(SUM(size), 0) FROM volumes WHERE volume_group = ?", [vg]).fetchone()[0]
        snapshots = conn.execute("SELECT COALESCE(SUM(volume_size), 0) FROM snapshots WHERE volume_group = ?",
                                 [vg]).fetchone()[0]
        return int(volumes) + int(snapshots)

    def refuse_taken(self, kind: str, row_id: str, name: str) -> None:
        """add_volume's or add_snapshot's refusal of a taken id or name, said before anything is
        asked of the host (the space admission runs LVM): exit 4, whatever the host would say."""
        volume = kind == "volume"
        self._refuse_kept_history(kind, row_id)
        row = (lambda where, value: self._volume_row(where, value)) if volume else \
            (lambda where, value: self._snapshot_row(f"s.{where}", value))
        if row("name = ?", name):
            raise AlreadyExists(f"a {kind} with name {name!r} already exists")
        if row("id = ?", row_id):
            raise AlreadyExists(f"a {kind} with id {row_id!r} already exists")

    def _refuse_kept_history(self, kind: str, row_id: str) -> None:
        """`history <id>` still answers for a deleted volume or snapshot; a new one must not inherit it."""
        if self.db.conn.execute("SELECT 1 FROM events WHERE volume_id = ? LIMIT 1", [row_id]).fetchone():
            raise AlreadyExists(f"id {row_id} belonged to a deleted volume whose history is kept; choose another id"
                                if kind == "volume" else f"id {row_id} already has a history; choose another id")

    def add_volume(self, **row: object) -> None:
        self._refuse_kept_history("volume", str(row["id"]))
        try:
            self._insert("volumes", row)
        except sqlite3.IntegrityError:
            taken = "name" if self._volume_row("name = ?", row["name"]) else "id"
            raise AlreadyExists(f"a volume with {taken} {row[taken]!r} already exists") from None

    def cas(self, volume_id: str, expected: Iterable[str], status: str, *, guards: Guards | None = None,
            **fields: object) -> bool:
        """Compare-and-swap a volume's status; False when another caller got there first or a guard fails."""
        return self._cas("volumes", volume_id, expected, status, guards or {}, fields)

    def cas_snapshot(self, snapshot_id: str, expected: Iterable[str], status: str, *, guards: Guards | None = None,
                     **fields: object) -> bool:
        return self._cas("snapshots", snapshot_id, expected, status, guards or {}, fields)

    def _cas(self, table: str, row_id: str, expected: Iterable[str], status: str, guards: Guards, fields: dict) -> bool:
        expected = sorted(expected)
        changes = {"status": status, "updated_at": now(), **fields}
        assignments = ", ".join(f"{column} = ?" for column in changes)
        marks = ", ".join("?" for _ in expected)
        where, params = self._guards_sql(guards)
        sql = f"UPDATE {table} SET {assignments} WHERE id = ? AND status IN ({marks}){where}"
        cursor = self.db.conn.execute(sql, [*changes.values(), row_id, *expected, *params])
        return cursor.rowcount == 1

    @staticmethod
    def _guards_sql(guards: Guards) -> tuple[str, list]:
        where, params = "", []
        for guard, value in guards.items():
            sql, takes = GUARDS[guard]
            where += f" AND {sql}"
            params += [int(value) if isinstance(value, bool) else value] * takes
        return where, params

    def failed_guards(self, table: str, row_id: str, guards: Guards) -> list[Guard]:
        """Which guards do not hold for the row now: the reason a compare-and-swap lost."""
        failed = []
        for guard, value in guards.items():
            where, params = self._guards_sql({guard: value})
            if not self.db.conn.execute(f"SELECT 1 FROM {table} WHERE id = ?{where}", [row_id, *params]).fetchone():
                failed.append(guard)
        return failed

    def update(self, volume_id: str, **fields: object) -> None:
        fields = {**fields, "updated_at": now()}
        assignments = ", ".join(f"{column} = ?" for column in fields)
        self.db.conn.execute(f"UPDATE volumes SET {assignments} WHERE id = ?", [*fields.values(), volume_id])

    def remove_volume(self, volume_id: str) -> None:
        for table in ("attachments", "connections", "volumes"):
            column = "id" if table == "volumes" else "volume_id"
            self.db.conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [volume_id])

    def _insert(self, table: str, row: dict, *, upsert_on: tuple[str, ...] = ()) -> None:
        """sqlite-utils' insert (or upsert on the primary key) in plain SQL: every write command
        comes through here, and importing sqlite-utils costs more than the write (~60 ms on a host,
        seconds under QEMU TCG; see BENCHMARKS.md). Lists and dicts are stored as JSON, as it does."""
        values = [json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for v in row.values()]
        sql = f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})"
        if upsert_on:
            updates = ", ".join(f"{column} = excluded.{column}" for column in row if column not in upsert_on)
            sql += f" ON CONFLICT ({', '.join(upsert_on)}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING")
        self.db.conn.execute(sql, values)

    # -- rows to records -------------------------------------------------------------------

    def _volume_row(self, where: str, value: str) -> dict | None:
        cursor = self.db.conn.execute(f"SELECT * FROM volumes WHERE {where}", [value])
        values = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], values)) if values else None

    def _hydrate(self, row: dict) -> Volume:
        attachments = self._attachments_of([row["id"]]).get(row["id"], ())
        return self._to_volume(row, attachments, self._connections_of(row["id"]))

    def _json(self, text: str, column: str) -> object:
        try:
            return json.loads(text)
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            raise EnvironmentProblem(f"inventory {self.path} is corrupt: {column} is not JSON ({e})") from None

    @staticmethod
    def _to_volume(row: dict, attachments: tuple, connections: tuple) -> Volume:
        return Volume(
            id=row["id"], name=row["name"], size=row["size"], status=row["status"], attach_status=row["attach_status"],
            multiattach=bool(row["multiattach"]), volume_group=row["volume_group"], lv_name=row["lv_name"],
            lv_path=f"/dev/{row['volume_group']}/{row['lv_name']}",
            provider_location=row["provider_location"], provider_auth=row["provider_auth"],
            previous_status=row["previous_status"], created_at=row["created_at"], updated_at=row["updated_at"],
            attachments=attachments, connections=connections, target_helper=row["target_helper"],
            export_protocol=row["export_protocol"],
        )


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switching to WAL needs the file to itself and SQLite does not wait for that (no busy
    handler), so several volctl processes creating the inventory at once retry here."""
    deadline = time.monotonic() + busy_timeout
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _Database:
    """The connection now, sqlite-utils' Database on first use (migrations, nested atomic()).
    Commands read and write through .conn: importing sqlite-utils costs more than their SQL."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._real: "Database | None" = None

    @property
    def real(self) -> "Database":
        if self._real is None:
            from sqlite_utils import Database

            self._real = Database(self.conn, execute_plugins=False)  # no entry-point scan of site-packages
        return self._real

    def __getattr__(self, attribute: str):
        return getattr(self.real, attribute)

    def __getitem__(self, table: str):
        return self.real[table]

    def close(self) -> None:
        self.conn.close()


def _applied(db: _Database) -> set[str]:
    try:
        return {name for (name,) in db.conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [migrations.name])}
    except sqlite3.OperationalError:  # no such table: a new file, or not ours
        return set()


def _has_tables(db: _Database) -> bool:
    return bool(db.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


def _refuse_foreign(has_tables: bool, applied: set[str], path: str) -> None:
    """A file with tables but none of volctl's migrations is some other program's database: writing
    volctl's schema (or even WAL mode) into it would damage it."""
    if has_tables and not applied:
        raise EnvironmentProblem(f"{path} is not a volctl inventory (it holds other tables and no volctl schema); "
                                 "give --db a new path or volctl's own file")


def _pending(db: _Database, applied: set[str]) -> bool:
    """migrations.pending(db), answered from the applied names when nothing is (sqlite-utils' own table)."""
    if applied.issuperset(migrations.names):
        return False
    return bool(migrations.pending(db))


def _exists(file: Path) -> bool:
    """Only a file that is really absent is a new inventory; a path that cannot be looked at
    (a symlink loop, a name too long, a component that is a file) is an environment problem."""
    try:
        os.stat(file)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise EnvironmentProblem(f"inventory {file} cannot be used: {e.strerror}") from None
    return True


def _create_private(file: Path) -> None:
    """Parent 0700 and file 0600 from the first byte: the file will hold CHAP passwords."""
    try:
        if not file.parent.exists():
            file.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except FileExistsError:
        pass  # another volctl created it first; it created it private too
    except OSError as e:
        raise EnvironmentProblem(f"cannot create inventory {file}: {e.strerror}") from None


def _permission_warnings(file: Path) -> list[str]:
    warnings = []
    try:
        if stat.S_IMODE(file.stat().st_mode) & 0o077:
            warnings.append(f"inventory {file} is readable by others (mode {stat.S_IMODE(file.stat().st_mode):04o}): chmod 600 it, it holds the CHAP credentials")
        if stat.S_IMODE(file.parent.stat().st_mode) & 0o077:
            warnings.append(f"inventory directory {file.parent} is open to others (mode {stat.S_IMODE(file.parent.stat().st_mode):04o}): chmod 700 it")
    except OSError:
        pass
    return warnings


def inventory_error(path: str, error: sqlite3.Error) -> EnvironmentProblem:
    text = str(error)
    if "locked" in text or "busy" in text:
        return EnvironmentProblem(f"inventory {path} is locked by another process past the timeout")
    if "readonly" in text or "read-only" in text:
        return EnvironmentProblem(f"inventory {path} is read-only: {text}")
    if "not a database" in text or "malformed" in text:
        return EnvironmentProblem(f"inventory {path} is corrupt: {text}")
    if "unable to open" in text:
        return EnvironmentProblem(f"inventory {path} cannot be opened: {text}")
    return EnvironmentProblem(f"inventory {path}: {text}")
