"""The attachments and connections tables' rows, part of the Inventory (volctl/inventory.py): plain
SQL on its connection, as every other read and write there."""

from __future__ import annotations

import json

from volctl.model import Attachment, Connection


class AttachmentRows:
    """Mixed into Inventory, which gives `db`, `_insert` and `_json`."""

    def add_attachment(self, attachment: Attachment) -> None:
        row = {**attachment.__dict__, "connector": _dump(attachment.connector)}
        self._insert("attachments", row)

    def detach_attachment(self, attachment_id: str, detach_time: str) -> None:
        self.db.conn.execute(
            "UPDATE attachments SET attach_status = 'detached', detach_time = ? WHERE id = ?", [detach_time, attachment_id]
        )

    def add_connection(self, connection: Connection) -> None:
        self._insert("connections", {**connection.__dict__, "connector": _dump(connection.connector)},
                     upsert_on=("volume_id", "initiator"))

    def remove_connection(self, volume_id: str, initiator: str) -> None:
        self.db.conn.execute("DELETE FROM connections WHERE volume_id = ? AND initiator = ?", [volume_id, initiator])

    def remove_connections(self, volume_id: str) -> None:
        self.db.conn.execute("DELETE FROM connections WHERE volume_id = ?", [volume_id])

    def _connections_of(self, volume_id: str) -> tuple[Connection, ...]:
        cursor = self.db.conn.execute("SELECT volume_id, initiator, connector, connected_at, auth FROM connections "
                                      "WHERE volume_id = ? ORDER BY connected_at", [volume_id])
        return tuple(
            Connection(volume_id=v, initiator=i, connector=self._json(c, "connections.connector"), connected_at=t, auth=a)
            for v, i, c, t, a in cursor
        )

    def host_credentials(self, family: str, host: str) -> dict | None:
        row = self.db.conn.execute("SELECT secrets FROM host_credentials WHERE family = ? AND host = ?",
                                   [family, host]).fetchone()
        return self._json(row[0], "host_credentials.secrets") if row else None

    def add_host_credentials(self, family: str, host: str, secrets: dict, created_at: str) -> None:
        self._insert("host_credentials", {"family": family, "host": host, "secrets": json.dumps(secrets),
                                          "created_at": created_at})

    def _attachments_of(self, volume_ids: list[str]) -> dict[str, tuple[Attachment, ...]]:
        marks = ", ".join("?" for _ in volume_ids)
        cursor = self.db.conn.execute(
            f"SELECT * FROM attachments WHERE volume_id IN ({marks}) ORDER BY attach_time, id", volume_ids
        )
        columns = [c[0] for c in cursor.description]
        found: dict[str, list[Attachment]] = {}
        for values in cursor:
            r = dict(zip(columns, values))
            r["connector"] = self._json(r["connector"], "attachments.connector") if r["connector"] else None
            found.setdefault(r["volume_id"], []).append(Attachment(**r))
        return {k: tuple(v) for k, v in found.items()}


def _dump(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)
