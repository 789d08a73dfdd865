from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@json_option
@click.pass_obj
def unmanage(app: App, *, volume: str) -> None:
    """Let a volume go (Cinder's unmanage): its export removed and saved first, then volctl forgets
    it; the LV stays, named volume-<id>, and its history stays readable. Available or error*, not
    attached, no snapshots. --json gives the `cinder manage` line that adopts it.

    \b
    volctl unmanage v1
    """
    done = app.service.unmanage(volume)
    app.notes(done.notes)
    output.document(done.data, app.json, f"unmanaged {done.data['name']}: LV {done.data['lv']} stays\n"
                                         f"adopt it with: {done.data['cinder_manage']}")
