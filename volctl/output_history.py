"""A volume's history (`volctl history`): JSON, a table for grep and awk, or the layout for a
person at a terminal. Part of volctl's output (volctl/output.py)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from volctl.errors import escaped
from volctl.output import _console, emit_json
from volctl.redact import mask

if TYPE_CHECKING:
    from volctl.model import Event


def event_dict(e: Event) -> dict:
    return {
        "id": e.id, "at": e.at, "kind": e.kind, "action": e.action, "from_status": e.from_status,
        "to_status": e.to_status, "argv": list(e.argv) if e.argv is not None else None,
        "exit_code": e.exit_code, "duration": e.duration, "detail": e.detail,
    }


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
