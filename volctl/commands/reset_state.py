from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command("reset-state")
@volume_argument
@click.option("--status", required=True, metavar="S", help="The new status, e.g. available or error.")
@click.option("--attach-status", metavar="A", help="The new attach status, e.g. detached.")
@json_option
@click.pass_obj
def reset_state(app: App, *, volume: str, status: str, attach_status: str | None) -> None:
    """Admin escape hatch: set a volume's status as given, recorded in history.

    Warns when the host disagrees (an export or ACL still present while resetting to available).

    \b
    volctl reset-state v1 --status available --attach-status detached
    """
    done = app.service.reset_state(volume, status=status, attach_status=attach_status)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"reset {done.volume.name} to {done.volume.status}")
