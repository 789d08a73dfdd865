from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output, output_reports
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@json_option
@click.pass_obj
def delete(app: App, *, volume: str) -> None:
    """Delete a volume: remove its export, zero it (volume_clear), lvremove. History stays.

    \b
    volctl delete v1
    """
    with output_reports.progress("zeroing", enabled=not app.json) as progress:
        done = app.service.delete(volume, progress)
    app.notes(done.notes)
    output.document(done.data, app.json, f"deleted {done.data['name']} ({done.data['id']})")
