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
    """Grow a volume to GIB, available or in-use (extending -> where it was, or error_extending);
    an exported one keeps its export, and each connected host is told what to run to see the size.

    \b
    volctl extend v1 --size 20
    """
    done = app.service.extend(volume, size)
    app.notes(done.notes)
    output.extended(done.volume, done.data["rescans"], app.json)
