from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, size_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@size_option
@json_option
@click.pass_obj
def extend(app: App, *, volume: str, size: int) -> None:
    """Grow an available volume to GIB (extending -> available, or error_extending).

    \b
    volctl extend v1 --size 20
    """
    done = app.service.extend(volume, size)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"extended {done.volume.name} to {done.volume.size} GiB")
