"""The inventory schema, only here, append-only. Columns follow Cinder's volumes and
volume_attachment tables (cinder/db/models.py) where they mean the same thing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from sqlite_utils import Database


class _Migrations:
    """sqlite-utils' Migrations("volctl"), built on first use. `names` lets the inventory see
    that nothing is pending with one query, so read-only commands never import sqlite-utils
    (importing it costs more than their whole query; see BENCHMARKS.md)."""

    def __init__(self, name: str):
        self.name = name
        self._registered: list[tuple[Callable, dict]] = []
        self._real = None

    def __call__(self, **options) -> Callable:
        def register(fn: Callable) -> Callable:
            self._registered.append((fn, options))
            return fn

        return register

    @property
    def names(self) -> list[str]:
        return [options.get("name") or fn.__name__ for fn, options in self._registered]

    def __getattr__(self, attribute: str):  # pending, apply, applied, ...
        if self._real is None:
            from sqlite_utils.migrations import Migrations

            self._real = Migrations(self.name)
            for fn, options in self._registered:
                self._real(**options)(fn)
        return getattr(self._real, attribute)


migrations = _Migrations("volctl")


@migrations()
def m001_initial(db: Database) -> None:
    db["volumes"].create(
        {
            "id": str,
            "name": str,
            "size": int,
            "status": str,
            "attach_status": str,
            "multiattach": int,
            "volume_group": str,
            "lv_name": str,
            "provider_location": str,
            "provider_auth": str,
            "previous_status": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"name", "size", "status", "attach_status", "multiattach", "volume_group", "lv_name", "created_at", "updated_at"},
        defaults={"multiattach": 0},
    )
    db["volumes"].create_index(["name"], unique=True)
    db["volumes"].create_index(["status"])
    db["attachments"].create(
        {
            "id": str,
            "volume_id": str,
            "instance_uuid": str,
            "attached_host": str,
            "mountpoint": str,
            "attach_mode": str,
            "attach_status": str,
            "attach_time": str,
            "detach_time": str,
            "connector": str,
        },
        pk="id",
        not_null={"volume_id", "attach_mode", "attach_status"},
        foreign_keys=[("volume_id", "volumes", "id")],
    )
    db["attachments"].create_index(["volume_id"])
    db["connections"].create(
        {"volume_id": str, "initiator": str, "connector": str, "connected_at": str},
        pk=("volume_id", "initiator"),
        not_null={"connector", "connected_at"},
        foreign_keys=[("volume_id", "volumes", "id")],
    )
    # No foreign key: a deleted volume's history stays readable.
    db["events"].create(
        {
            "id": int,
            "volume_id": str,
            "volume_name": str,
            "at": str,
            "kind": str,
            "action": str,
            "from_status": str,
            "to_status": str,
            "argv": str,
            "exit_code": int,
            "duration": float,
            "detail": str,
            "pid": int,
        },
        pk="id",
        not_null={"volume_id", "at", "kind", "action"},
    )
    db["events"].create_index(["volume_id", "id"])
    db["events"].create_index(["volume_name"])


@migrations()
def m002_snapshots(db: Database) -> None:
    """Cinder's snapshots table, the columns that matter on one host; the history's rows say
    whether they are a volume's or a snapshot's."""
    db["snapshots"].create(
        {
            "id": str,
            "name": str,
            "volume_id": str,
            "volume_size": int,
            "status": str,
            "volume_group": str,
            "lv_name": str,
            "provider_location": str,
            "previous_status": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"name", "volume_id", "volume_size", "status", "volume_group", "lv_name", "created_at", "updated_at"},
        foreign_keys=[("volume_id", "volumes", "id")],
    )
    db["snapshots"].create_index(["name"], unique=True)
    db["snapshots"].create_index(["volume_id", "created_at"])
    db["events"].add_column("entity", str, not_null_default="volume")


@migrations()
def m003_target_helper(db: Database) -> None:
    """Which target helper made a volume's export (NULL when it has none), so that one host can
    hold exports of several helpers. Every export before this was LIO's, made by either LIO
    helper; the configured LIO helper drives an LIO export whichever made it, so those are named
    by the default one."""
    db["volumes"].add_column("target_helper", str)
    db.conn.execute("UPDATE volumes SET target_helper = 'lioadm' WHERE provider_location IS NOT NULL")


@migrations()
def m004_protocols(db: Database) -> None:
    """An export's protocol (iscsi, iser, nvmet_tcp; NULL when there is none, and for exports made
    before this, which the LIO helper's configured protocol names, as it always did); whether a
    connection authenticates its host; and the credentials hosts have of their own (NVMe's
    DH-HMAC-CHAP keys, one pair per host NQN for every volume it connects to), by target family."""
    db["volumes"].add_column("export_protocol", str)
    db["connections"].add_column("auth", str)
    db["host_credentials"].create(
        {"family": str, "host": str, "secrets": str, "created_at": str},
        pk=("family", "host"),
        not_null={"secrets", "created_at"},
    )
