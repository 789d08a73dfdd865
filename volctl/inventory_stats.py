"""What `volctl metrics` reads of the inventory, part of the Inventory (volctl/inventory.py): a few
rows per volume and snapshot and one count per protocol, plain SQL on its connection, with no
volume hydrated (1,000 of them cost seconds under TCG; the metrics run every minute)."""

from __future__ import annotations

from typing import NamedTuple


class VolumeFacts(NamedTuple):  # not a dataclass: the inventory is imported by every command's start-up
    status: str
    volume_group: str
    lv_name: str
    size_gib: int
    updated_at: str
    export_protocol: str | None  # None: not exported


class SnapshotFacts(NamedTuple):
    status: str
    volume_group: str
    lv_name: str
    size_gib: int


class StatsRows:
    """Mixed into Inventory, which gives `db`."""

    def volume_facts(self, legacy_protocol: str) -> list[VolumeFacts]:
        """legacy_protocol: the protocol of an export recorded before exports recorded theirs."""
        rows = self.db.conn.execute(
            "SELECT status, volume_group, lv_name, size, updated_at, CASE WHEN COALESCE(provider_location, '') = '' "
            "THEN NULL ELSE COALESCE(export_protocol, ?) END FROM volumes", [legacy_protocol])
        return [VolumeFacts(*row) for row in rows]

    def snapshot_facts(self) -> list[SnapshotFacts]:
        rows = self.db.conn.execute("SELECT status, volume_group, lv_name, volume_size FROM snapshots")
        return [SnapshotFacts(*row) for row in rows]

    def connections_by_protocol(self, legacy_protocol: str) -> dict[str, int]:
        rows = self.db.conn.execute(
            "SELECT COALESCE(v.export_protocol, ?), count(*) FROM connections c JOIN volumes v ON v.id = c.volume_id "
            "GROUP BY 1", [legacy_protocol])
        return dict(rows.fetchall())
