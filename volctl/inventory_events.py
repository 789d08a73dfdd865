"""The history's rows (the events table), part of the Inventory (volctl/inventory.py): plain SQL
on its connection, as every other read and write there."""

from __future__ import annotations

import os

from volctl.errors import NotFound
from volctl.model import Event, Snapshot, Volume


class EventRows:
    """Mixed into Inventory, which gives `db`, `_insert`, `_json` and `_now`."""

    def record(self, volume: Volume | Snapshot | tuple[str, str], kind: str, action: str, **fields: object) -> None:
        """One history row, a volume's or (given a Snapshot) a snapshot's, under its id and name."""
        volume_id, volume_name = (volume.id, volume.name) if isinstance(volume, (Volume, Snapshot)) else volume
        if isinstance(volume, Snapshot):
            fields["entity"] = "snapshot"
        argv = fields.pop("argv", None)
        self._insert(
            "events",
            {
                "volume_id": volume_id,
                "volume_name": volume_name,
                "at": self._now(),
                "kind": kind,
                "action": action,
                "argv": Event.encode_argv(argv),
                "pid": os.getpid(),
                **fields,
            }
        )

    def ever_known(self, entity: str = "volume") -> dict[str, str | None]:
        """Every id that is or was in the inventory (its history outlives it), with the status its
        last transition gave: "deleted", "unmanaged" (let go: no longer volctl's), or its
        status now. One query, for doctor's question of whose an LV or target is."""
        cursor = self.db.conn.execute(
            "SELECT volume_id, to_status FROM events WHERE id IN (SELECT max(id) FROM events "
            "WHERE entity = ? AND kind = 'transition' GROUP BY volume_id)", [entity])
        return dict(cursor.fetchall())

    def events(self, ref: str) -> list[Event]:
        """History by id, or by name (the newest volume of that name, deleted ones included)."""
        row = self.db.conn.execute("SELECT volume_id FROM events WHERE volume_id = ? LIMIT 1", [ref]).fetchone()
        if row is None:
            row = self.db.conn.execute(
                "SELECT volume_id FROM events WHERE volume_name = ? ORDER BY id DESC LIMIT 1", [ref]
            ).fetchone()
        if row is None:
            raise NotFound(f"no volume {ref!r} and no history for it")
        cursor = self.db.conn.execute("SELECT * FROM events WHERE volume_id = ? ORDER BY id", [row[0]])
        columns = [c[0] for c in cursor.description]
        events = []
        for values in cursor:
            r = dict(zip(columns, values))
            events.append(
                Event(
                    id=r["id"], volume_id=r["volume_id"], at=r["at"], kind=r["kind"], action=r["action"],
                    from_status=r["from_status"], to_status=r["to_status"],
                    argv=tuple(self._json(r["argv"], "events.argv")) if r["argv"] else None,
                    exit_code=r["exit_code"], duration=r["duration"], detail=r["detail"],
                )
            )
        return events
