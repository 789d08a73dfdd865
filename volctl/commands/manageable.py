from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@json_option
@click.pass_obj
def manageable(app: App) -> None:
    """List the volume group's LVs and whether `manage` could take each in (Cinder's
    get_manageable_volumes: reference, size in GiB rounded up, safe_to_manage, reason_not_safe).

    \b
    volctl manageable
    volctl manageable --json
    """
    output.manageable(app.service.manageable(), app.json)
    app.notes(())
