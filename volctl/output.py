"""Everything a person or a script sees: JSON on stdout for scripts, rich for people, notes on stderr.
The only module that imports rich, and only when a person is the reader."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from volctl.errors import escaped
from volctl.model import Attachment, Event, Snapshot, Volume
from volctl.redact import mask


def attachment_dict(a: Attachment) -> dict:
    return {
        "id": a.id,
        "instance_uuid": a.instance_uuid,
        "attached_host": a.attached_host,
        "mountpoint": a.mountpoint,
        "attach_mode": a.attach_mode,
        "attach_status": a.attach_status,
        "attach_time": a.attach_time,
        "detach_time": a.detach_time,
        "initiator": a.initiator,
    }


def volume_dict(v: Volume, *, detail: bool = False, show_secrets: bool = False) -> dict:
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
        "previous_status": v.previous_status,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "attachments": [attachment_dict(a) for a in (v.attachments if detail else v.live_attachments)],
    }
    if detail:
        data["connections"] = [{"initiator": c.initiator, "connected_at": c.connected_at} for c in v.connections]
        auth = v.provider_auth
        data["provider_auth"] = auth if show_secrets or not auth else mask(auth)
    return data


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


def event_dict(e: Event) -> dict:
    return {
        "id": e.id, "at": e.at, "kind": e.kind, "action": e.action, "from_status": e.from_status,
        "to_status": e.to_status, "argv": list(e.argv) if e.argv is not None else None,
        "exit_code": e.exit_code, "duration": e.duration, "detail": e.detail,
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
             str(len(v.live_attachments))) for v in items]
    if not rows:
        note("no volumes")
        return
    _aligned(("ID", "NAME", "SIZE", "STATUS", "ATTACH", "MULTI", "ATTACHMENTS"), rows, right_aligned={2})


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


def volume(v: Volume, as_json: bool, *, show_secrets: bool = False, message: str | None = None) -> None:
    data = volume_dict(v, detail=True, show_secrets=show_secrets)
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
                "provider_auth", "previous_status", "created_at", "updated_at"):
        value = data.get(key)
        shown = f"{value} GiB" if key == "size" else ("-" if value is None else str(value))
        table.add_row(key, shown)
    for a in v.attachments:
        table.add_row("attachment", f"{a.id} {a.attach_status} instance {a.instance_uuid} host {a.attached_host or '-'} "
                      f"at {a.mountpoint or '-'} ({a.attach_mode})")
    for c in v.connections:
        table.add_row("acl", c.initiator)
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


def _event_cells(e: Event) -> tuple[str, str, str]:
    """(change or command, result, seconds) of one event, secrets masked."""
    if e.kind == "command":
        what = " ".join(e.argv or ())
        result = "ok" if e.exit_code == 0 else ("timeout" if e.exit_code is None else f"exit {e.exit_code}")
    else:
        what = f"{e.from_status or '-'} -> {e.to_status}" if e.to_status else ""
        result = ""
    if e.detail:
        what = f"{what}: {e.detail}" if what else e.detail
    return mask(what), result, f"{e.duration:.3f}" if e.duration is not None else ""


def events(items: list[Event], as_json: bool) -> None:
    if as_json:
        emit_json([event_dict(e) for e in items])
        return
    if sys.stdout.isatty():
        _events_for_a_person(items)
        return
    from rich.table import Table

    # For grep and awk: the stored values whole, as they always were.
    table = Table(box=None, pad_edge=False)
    for column in ("TIME", "KIND", "ACTION", "CHANGE / COMMAND", "RESULT", "SECONDS"):
        table.add_column(column, overflow="fold")
    for e in items:
        what, result, seconds = _event_cells(e)
        table.add_row(e.at, e.kind, e.action, what, result, seconds)
    _console().print(table)


_LAST_MIN = 10  # below this the change gets lines of its own under the short columns


def _events_for_a_person(items: list[Event]) -> None:
    """The short columns first, on one line each, and the change or command last, the only column
    that wraps, in whatever width the terminal has left. On 80 columns that is little, so a
    command's program is not repeated under ACTION (it is the command's first word) and its
    duration goes with its result. Laid out here rather than by a rich Table, which on 80 columns
    splits the timestamps and leaves the command 14 columns, and measures every cell many times."""
    from rich.cells import cell_len, chop_cells

    rows = []
    for e in items:
        what, result, seconds = _event_cells(e)
        action = "" if e.kind == "command" and e.argv and e.argv[0] == e.action else e.action
        what = escaped(what)  # a tool's stderr in a detail must not drive the terminal it is shown on
        rows.append(((_local_second(e.at), e.kind, action, f"{result} {seconds}s" if seconds else result), what))
    header = ("TIME", "KIND", "ACTION", "RESULT")
    widths = [max([cell_len(header[i])] + [cell_len(short[i]) for short, _ in rows]) for i in range(len(header))]

    def joined(cells: tuple[str, ...]) -> str:
        return "".join(cell + " " * (width - cell_len(cell) + 2) for cell, width in zip(cells, widths))

    console = _console()
    columns = console.width
    indent = sum(widths) + 2 * len(widths)
    last = columns - indent
    if last >= _LAST_MIN:
        console.print((joined(header) + "CHANGE / COMMAND"[:last]).rstrip(), style="bold", markup=False, highlight=False)
        out = []
        for short, what in rows:
            lines = _wrap(what, last)
            out.append((joined(short) + lines[0]).rstrip())
            out.extend(" " * indent + line for line in lines[1:])
    else:  # a very narrow terminal: the short cells unaligned, then the change under them across the width
        def fitted(line: str) -> str:
            return line if cell_len(line) <= columns else chop_cells(line, max(columns - 1, 1))[0] + "…"

        console.print(fitted("  ".join(header)), style="bold", markup=False, highlight=False)
        out = []
        for short, what in rows:
            out.append(fitted("  ".join(cell for cell in short if cell)))
            out.extend("    " + line for line in _wrap(what, max(columns - 4, 1)) if line)
    for start in range(0, len(out), 1000):
        sys.stdout.write("".join(line + "\n" for line in out[start:start + 1000]))


def _wrap(text: str, width: int) -> list[str]:
    """Words filled into lines of `width` cells; a word longer than a line is cut where lines end."""
    from rich.cells import cell_len, chop_cells

    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if not word:
            continue
        if not line and cell_len(word) <= width:
            line = word
        elif cell_len(line) + 1 + cell_len(word) <= width:
            line += " " + word
        elif cell_len(word) <= width:
            lines.append(line)
            line = word
        else:  # split anyway: start it on this line rather than waste the rest of it
            pieces = chop_cells(f"{line} {word}" if line else word, width)
            lines.extend(pieces[:-1])
            line = pieces[-1]
    lines.append(line)
    return lines


def _local_second(at: str) -> str:
    """A stored UTC timestamp as a person reads it: local time, to the second."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:  # not ours to judge: show what is stored
        return at


@contextmanager
def progress(title: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when a person watches; nothing for scripts."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(binary_units=True),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=_console(stderr=True), transient=True) as bar:
        task = bar.add_task(title, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def drift_report(report, as_json: bool, *, repaired: bool) -> None:
    items = [
        {"kind": d.kind, "volume_id": d.volume_id, "volume_name": d.volume_name, "subject": d.subject,
         "detail": d.detail, "repair": d.repair, "repaired": d.repaired, "error": d.error}
        for d in report.drift
    ]
    if as_json:
        emit_json({"clean": report.clean, "drift": items, "notes": list(report.notes)})
        return
    if not items:
        note("no drift: the inventory and the host agree")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("KIND", "VOLUME", "SUBJECT", "DETAIL", "REPAIR"):
        table.add_column(column, overflow="fold")
    for d in report.drift:
        if d.repaired:
            fix = f"done: {d.repair}"
        elif d.error:
            fix = f"failed: {d.error}"
        else:
            fix = (f"--repair would {d.repair}" if not repaired else "not repaired") if d.repair else "left to the operator"
        table.add_row(d.kind, d.volume_name or "-", d.subject, d.detail, fix)
    _console().print(table)
    remaining = sum(1 for d in report.drift if not d.repaired)
    note(f"{len(items)} drift(s) found, {len(items) - remaining} repaired, {remaining} remaining")


@contextmanager
def counting(title: str, enabled: bool, minimum: int) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of items done on stderr, for a person, once there are at least `minimum` items."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    state: dict = {}

    def update(done: int, total: int) -> None:
        if total < minimum:
            return
        if "bar" not in state:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            state["bar"] = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                    TimeRemainingColumn(), console=_console(stderr=True), transient=True)
            state["bar"].start()
            state["task"] = state["bar"].add_task(title, total=total)
        state["bar"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "bar" in state:
            state["bar"].stop()


def restore_report(report, as_json: bool) -> None:
    if as_json:
        emit_json(report.as_dict())
        return
    out = sys.stdout
    for name in report.restored:
        out.write(f"restored  {name}\n")
    for name in report.present:
        out.write(f"present   {name}\n")
    for failure in report.failed:
        out.write(f"FAILED    {failure.volume}: {mask(failure.error)}\n")
    for save in report.saves:
        if save.error:
            note(f"the {save.what} was not saved to {save.path}: {save.error}")
        elif save.saved:
            note(f"saved the {save.what} to {save.path}")
    note(f"{len(report.restored)} restored, {len(report.present)} already live, {len(report.failed)} failed")
