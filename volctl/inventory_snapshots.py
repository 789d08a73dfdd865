"""The snapshots table's rows, part of the Inventory (volctl/inventory.py): plain SQL on its
connection, as every other read and write there."""

from __future__ import annotations

import sqlite3

from volctl.errors import AlreadyExists, NotFound
from volctl.model import Snapshot


class SnapshotRows:
    """Mixed into Inventory, which gives `db`, `_insert` and `_now`."""

    def add_snapshot(self, **row: object) -> None:
        self._refuse_kept_history("snapshot", str(row["id"]))
        try:
            self._insert("snapshots", row)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"a snapshot with name {row['name']!r} already exists") from None

    def find_snapshot(self, ref: str) -> Snapshot | None:
        row = self._snapshot_row("s.id = ?", ref) or self._snapshot_row("s.name = ?", ref)
        return self._to_snapshot(row) if row else None

    def get_snapshot(self, ref: str) -> Snapshot:
        snapshot = self.find_snapshot(ref)
        if snapshot is None:
            raise NotFound(f"no snapshot {ref!r}")
        return snapshot

    def snapshots(self, volume_id: str | None = None) -> list[Snapshot]:
        """Oldest first; of one volume, or of all."""
        where, params = ("WHERE s.volume_id = ?", [volume_id]) if volume_id else ("", [])
        cursor = self.db.conn.execute(
            f"SELECT s.*, v.name AS volume_name FROM snapshots s LEFT JOIN volumes v ON v.id = s.volume_id {where}"
            " ORDER BY s.created_at, s.id", params)
        columns = [c[0] for c in cursor.description]
        return [self._to_snapshot(dict(zip(columns, values))) for values in cursor]

    def latest_snapshot(self, volume_id: str) -> Snapshot | None:
        found = self.snapshots(volume_id)
        return found[-1] if found else None

    def update_snapshot(self, snapshot_id: str, **fields: object) -> None:
        fields = {**fields, "updated_at": self._now()}
        assignments = ", ".join(f"{column} = ?" for column in fields)
        self.db.conn.execute(f"UPDATE snapshots SET {assignments} WHERE id = ?", [*fields.values(), snapshot_id])

    def remove_snapshot(self, snapshot_id: str) -> None:
        self.db.conn.execute("DELETE FROM snapshots WHERE id = ?", [snapshot_id])

    def _snapshot_row(self, where: str, value: str) -> dict | None:
        cursor = self.db.conn.execute(
            f"SELECT s.*, v.name AS volume_name FROM snapshots s LEFT JOIN volumes v ON v.id = s.volume_id WHERE {where}",
            [value])
        values = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], values)) if values else None

    @staticmethod
    def _to_snapshot(row: dict) -> Snapshot:
        return Snapshot(
            id=row["id"], name=row["name"], volume_id=row["volume_id"], volume_size=row["volume_size"],
            status=row["status"], volume_group=row["volume_group"], lv_name=row["lv_name"],
            lv_path=f"/dev/{row['volume_group']}/{row['lv_name']}", provider_location=row["provider_location"],
            previous_status=row["previous_status"], created_at=row["created_at"], updated_at=row["updated_at"],
            volume_name=row.get("volume_name"),
        )

