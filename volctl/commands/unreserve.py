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
def unreserve(app: App, *, volume: str) -> None:
    """Undo a reserve (attaching -> in-use if attachments remain, else available).

    \b
    volctl unreserve v1
    """
    done = app.service.unreserve(volume)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"unreserved {done.volume.name}: {done.volume.status}")
