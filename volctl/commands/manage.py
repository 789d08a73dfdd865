from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@click.option("--source-name", required=True, metavar="LV", help="The LV to take in, in volume_group.")
@click.option("--name", help="Unique volume name: 1-63 of A-Z a-z 0-9 . _ - (default: the new id).")
@click.option("--multiattach", is_flag=True, help="Allow attaching to more than one instance.")
@json_option
@click.pass_obj
def manage(app: App, *, source_name: str, name: str | None, multiattach: bool) -> None:
    """Take an existing LV in as a volume (Cinder's manage_existing): renamed to volctl's name for a
    new id, its size rounded up to whole GiB (managing -> available, or error_managing).

    Exit 3: no such LV; 4: already managed; 5: not safe (open, a snapshot, the thin pool ...).

    \b
    volctl manage --source-name volume-3a81fdac-e8ae-4e61-b6a2-2e14ff316f19 --name db1
    """
    done = app.service.manage(source_name, name=name, multiattach=multiattach)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"managed {source_name} as {done.volume.name} ({done.volume.lv_name})")
