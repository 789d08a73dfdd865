"""Reports and progress: doctor's drift, restore's outcome, and the bars a person sees on stderr
while zeroing, copying or restoring. Part of volctl's output (volctl/output.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from volctl.output import _console, emit_json, note
from volctl.redact import mask


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
         "detail": d.detail, "repair": d.repair, "repaired": d.repaired, "error": d.error,
         **({"numbers": d.numbers} if d.numbers is not None else {})}
        for d in report.drift
    ]
    if as_json:
        emit_json({"clean": report.clean, "drift": items, "notes": list(report.notes), "pools": list(report.pools)})
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
