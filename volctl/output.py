"""Everything a person or a script sees: JSON on stdout for scripts, rich for people, notes on stderr.
Split by what it renders: this module the basics every command uses and the volume and snapshot
records; output_history.py a volume's history; output_reports.py doctor's and restore's reports
and the progress bars. These three are the only modules that import rich, and only when a person
is the reader."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from volctl.errors import escaped
from volctl.redact import mask

if TYPE_CHECKING:  # attributes only: a JSON read renders without importing the model's classes again
    from volctl.model import Attachment, Snapshot, Volume


def attachment_dict(a: Attachment, protocol: str | None = None) -> dict:
    return {
        "id": a.id,
        "instance_uuid": a.instance_uuid,
        "attached_host": a.attached_host,
        "mountpoint": a.mountpoint,
        "attach_mode": a.attach_mode,
        "attach_status": a.attach_status,
        "attach_time": a.attach_time,
        "detach_time": a.detach_time,
        "initiator": a.initiator_over(protocol),
    }


def export_auth(v: Volume) -> str | None:
    """How the volume's export makes hosts prove themselves: its CHAP (iSCSI), or DH-HMAC-CHAP when
    its hosts connected with keys of their own (NVMe/TCP); None for an export that lets any
    allowed host in, or no export."""
    if not v.provider_location:
        return None
    if v.export_protocol == "nvmet_tcp":
        return next((c.auth for c in v.connections if c.auth), None)
    return v.provider_auth.split(" ", 1)[0] if v.provider_auth else None


def volume_dict(v: Volume, *, detail: bool = False, show_secrets: bool = False,
                host_secrets: dict | None = None) -> dict:
    data = {
        "id": v.id,
        "name": v.name,
        "size": v.size,
        "status": v.status,
        "attach_status": v.attach_status,
        "multiattach": v.multiattach,
        "volume_group": v.volume_group,
        "lv_path": v.lv_path,
        "provider_location": v.provider_location,
        "protocol": v.export_protocol,
        "previous_status": v.previous_status,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "attachments": [attachment_dict(a, v.export_protocol) for a in (v.attachments if detail else v.live_attachments)],
    }
    if detail:
        data["auth"] = export_auth(v)
        data["connections"] = [_connection_dict(c, (host_secrets or {}).get(c.initiator) if show_secrets else None)
                               for c in v.connections]
        auth = v.provider_auth
        data["provider_auth"] = auth if show_secrets or not auth else mask(auth)
    return data


def _connection_dict(c, secrets: dict | None) -> dict:
    entry = {"initiator": c.initiator, "connected_at": c.connected_at, "auth": c.auth}
    if secrets:  # --show-secrets: the host's own keys, as connect handed them out
        entry.update(dhchap_secret=secrets.get("dhchap_key"), dhchap_ctrl_secret=secrets.get("dhchap_ctrl_key"))
    return entry


def snapshot_dict(s: Snapshot) -> dict:
    return {
        "id": s.id,
        "name": s.name,
        "volume_id": s.volume_id,
        "volume_name": s.volume_name,
        "volume_size": s.volume_size,
        "status": s.status,
        "volume_group": s.volume_group,
        "lv_path": s.lv_path,
        "provider_location": s.provider_location,
        "previous_status": s.previous_status,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def emit_json(document: object) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def emit_json_stream(items: Iterable[dict]) -> None:
    """A JSON array written item by item, so memory does not grow with the inventory."""
    out = sys.stdout
    first = True
    for item in items:
        out.write("[\n  " if first else ",\n  ")
        out.write(json.dumps(item))
        first = False
    out.write("[]\n" if first else "\n]\n")


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is read by grep and awk: never cut a value to fit an imagined 80 columns.
    width = None if stream.isatty() else 1000
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def note(message: str) -> None:
    """Chatter for a person, on stderr, so stdout stays data."""
    sys.stderr.write(escaped(mask(message)) + "\n")


def error(message: str) -> None:
    """Exactly one line, whatever the message quotes (a path with a newline, a byte that is not UTF-8)."""
    sys.stderr.write(f"Error: {escaped(mask(message))}\n")


def volumes(items: Iterable[Volume], as_json: bool) -> None:
    if as_json:
        emit_json_stream(volume_dict(v) for v in items)
        return
    rows = [(v.id, v.name, f"{v.size}G", v.status, v.attach_status, "yes" if v.multiattach else "no",
             str(len(v.live_attachments)), v.export_protocol or ("?" if v.provider_location else "-")) for v in items]
    if not rows:
        note("no volumes")
        return
    # PROTOCOL last, where it moves no column a script reads: "-" not exported, "?" exported
    # before exports recorded their protocol
    _aligned(("ID", "NAME", "SIZE", "STATUS", "ATTACH", "MULTI", "ATTACHMENTS", "PROTOCOL"), rows, right_aligned={2})


def _aligned(header: tuple[str, ...], rows: list[tuple[str, ...]], right_aligned: set[int]) -> None:
    """The layout of a box-less rich table (columns two spaces apart, bold header on a terminal)
    without rich's layout pass, which measures every cell many times: 11 s for 10,000 volumes and
    134 s for 100,000 against well under a second here (BENCHMARKS.md). Every value is ASCII
    (validated names, UUIDs, states), so len() is the width on screen."""
    widths = [max(len(header[i]), max(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(width) if i in right_aligned else cell.ljust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    out = sys.stdout
    if out.isatty():
        _console().print(line(header), style="bold", markup=False)
    else:
        out.write(line(header) + "\n")
    for start in range(0, len(rows), 1000):
        out.write("".join(line(row) + "\n" for row in rows[start:start + 1000]))


def volume(v: Volume, as_json: bool, *, show_secrets: bool = False, message: str | None = None,
           host_secrets: dict | None = None) -> None:
    data = volume_dict(v, detail=True, show_secrets=show_secrets, host_secrets=host_secrets)
    if as_json:
        emit_json(data)
        return
    if message:
        note(message)
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key in ("id", "name", "size", "status", "attach_status", "multiattach", "lv_path", "provider_location",
                "protocol", "auth", "provider_auth", "previous_status", "created_at", "updated_at"):
        value = data.get(key)
        shown = f"{value} GiB" if key == "size" else ("-" if value is None else str(value))
        table.add_row(key, shown)
    for a in v.attachments:
        table.add_row("attachment", f"{a.id} {a.attach_status} instance {a.instance_uuid} host {a.attached_host or '-'} "
                      f"at {a.mountpoint or '-'} ({a.attach_mode})")
    for c in data["connections"]:
        keys = f" (keys {c['dhchap_secret']} {c['dhchap_ctrl_secret']})" if c.get("dhchap_secret") else ""
        table.add_row("acl", c["initiator"] + (f" {c['auth']}" if c["auth"] else "") + keys)
    _console().print(table)


def snapshots(items: list[Snapshot], as_json: bool) -> None:
    if as_json:
        emit_json([snapshot_dict(s) for s in items])
        return
    if not items:
        note("no snapshots")
        return
    rows = [(s.id, s.name, s.volume_name or s.volume_id, f"{s.volume_size}G", s.status, s.created_at) for s in items]
    _aligned(("ID", "NAME", "VOLUME", "SIZE", "STATUS", "CREATED"), rows, right_aligned={3})


def snapshot(s: Snapshot, as_json: bool, *, message: str | None = None) -> None:
    data = snapshot_dict(s)
    if as_json:
        emit_json(data)
        return
    if message:
        note(message)
    rows = [(key, f"{value} GiB" if key == "volume_size" else ("-" if value is None else str(value)))
            for key, value in data.items()]
    width = max(len(k) for k, _ in rows)
    sys.stdout.write("".join(f"{k.ljust(width)}  {v}\n" for k, v in rows))


def extended(v: Volume, rescans: list[dict], as_json: bool) -> None:
    """The grown volume, and what each connected host runs to see its new size."""
    if as_json:
        emit_json({**volume_dict(v, detail=True), "rescans": rescans})
        return
    note(f"extended {v.name} to {v.size} GiB")
    for rescan in rescans:
        sys.stdout.write(f"{rescan['host']}: {rescan['run']}\n")


def manageable(entries: list[dict], as_json: bool) -> None:
    if as_json:
        emit_json(entries)
        return
    if not entries:
        note("no LVs in the volume group")
        return
    rows = [(e["reference"]["source-name"], f"{e['size']}G", "yes" if e["safe_to_manage"] else "no",
             e["reason_not_safe"] or "-", e["cinder_id"] or "-") for e in entries]
    _aligned(("LV", "SIZE", "SAFE", "REASON", "VOLUME"), rows, right_aligned={1})


def document(data: dict, as_json: bool, message: str) -> None:
    if as_json:
        emit_json(data)
    else:
        sys.stdout.write(message + "\n")


def connection(info: dict, as_json: bool, volume_name: str) -> None:
    """The one output that carries the CHAP password: the initiator needs it to log in."""
    if as_json:
        emit_json(info)
        return
    note(f"{volume_name}: connection info for the initiator (contains the CHAP password)")
    data = info["data"]
    width = max(len(k) for k in data)
    sys.stdout.write(f"{'driver_volume_type'.ljust(width)}  {info['driver_volume_type']}\n")
    for key, value in data.items():
        sys.stdout.write(f"{key.ljust(width)}  {json.dumps(value) if not isinstance(value, str) else value}\n")


def metrics(families: list, path: str | None) -> None:
    """Prometheus's text format on stdout, or in a file written whole (node_exporter's textfile
    collector may read it at any moment), readable by the collector's user."""
    from pathlib import Path

    from volctl import files
    from volctl.metrics import render

    text = render(families)
    if path is None:
        sys.stdout.write(text)
        return
    if not path.endswith(".prom"):
        note(f"{path}: node_exporter's textfile collector reads only files named *.prom")
    files.write_whole(Path(path), text, "metrics file", 0o644)
