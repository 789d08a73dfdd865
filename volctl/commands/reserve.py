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
def reserve(app: App, *, volume: str) -> None:
    """Reserve a volume for attaching (available -> attaching; in-use too if multiattach).

    \b
    volctl reserve v1
    """
    done = app.service.reserve(volume)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"reserved {done.volume.name}")
