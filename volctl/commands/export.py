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
def export(app: App, *, volume: str) -> None:
    """Export a volume as an LIO iSCSI target with CHAP (cinder-rtstool create, save).

    Running it again on an exported volume changes nothing.

    \b
    volctl export v1
    """
    done = app.service.export(volume)
    app.notes(done.notes)
    message = f"exported {done.volume.name}: {done.volume.provider_location}" if done.changed else None
    output.volume(done.volume, app.json, message=message)
