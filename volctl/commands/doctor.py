from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output_reports
from volctl.commands._options import SECONDS, json_option
from volctl.errors import ExitCode

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@click.option("--repair", is_flag=True, help="Fix what can be fixed without losing anything, and say what was done.")
@click.option("--stale-after", type=SECONDS, default=300.0, show_default=True, metavar="SECONDS",
              help="How long a volume may sit in creating/attaching/detaching/deleting/extending before it counts as stuck.")
@json_option
@click.pass_obj
def doctor(app: App, *, repair: bool, stale_after: float) -> int:
    """Compare the inventory with the host (LVs, LIO targets, ACLs, saved LIO config) and report drift.

    Exits 0 when everything agrees (or everything found was repaired), 5 when drift remains.

    \b
    volctl doctor
    volctl doctor --repair --json
    """
    from volctl.doctor import Doctor

    doc = Doctor(app.service, stale_after)
    report = doc.examine()
    if repair:
        report = doc.repair(report)
    app.notes(report.notes)
    output_reports.drift_report(report, app.json, repaired=repair)
    return ExitCode.OK if report.clean else ExitCode.INVALID_STATE
