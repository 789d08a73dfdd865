from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option

if TYPE_CHECKING:
    from volctl.app import App


@click.command("list")
@click.option("--status", metavar="S", help="Only volumes in this status.")
@json_option
@click.pass_obj
def list_(app: App, *, status: str | None) -> None:
    """List volumes (oldest first).

    \b
    volctl list
    volctl list --status in-use --json
    """
    output.volumes(app.service.list(status), app.json)
    app.notes(())  # e.g. an inventory open to others
