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
def unexport(app: App, *, volume: str) -> None:
    """Remove a volume's export (its iSCSI target or NVMe/TCP subsystem, saved); refused while attached.

    \b
    volctl unexport v1
    """
    done = app.service.unexport(volume)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"unexported {done.volume.name}" if done.changed else None)
