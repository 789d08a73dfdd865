from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output_history
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@json_option
@click.pass_obj
def history(app: App, *, volume: str) -> None:
    """Every transition and external command of a volume, oldest first (deleted volumes too).

    \b
    volctl history v1
    volctl history 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10 --json
    """
    output_history.events(app.service.history(volume), app.json)
    app.notes(())  # e.g. an inventory open to others
