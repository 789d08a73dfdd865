from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output, output_reports
from volctl import completion, validate
from volctl.commands._options import GIB, VOLUME_REF, exclusive, json_option
from volctl.commands.snapshot import SNAPSHOT_REF

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@click.option("--size", type=GIB, metavar="GIB", help=f"Size in GiB (1 to {validate.MAX_GIB}); with --snapshot or "
              "--source-volume, the source's size when left out, and never smaller.")
@click.option("--name", help="Unique name: 1-63 of A-Z a-z 0-9 . _ - (default: the id).")
@click.option("--multiattach", is_flag=True, help="Allow attaching to several instances at once.")
@click.option("--id", "volume_id", metavar="UUID", help="Use this id instead of a new random UUID.")
@click.option("--snapshot", metavar="SNAP", type=SNAPSHOT_REF, callback=exclusive("source_volume"),
              shell_complete=completion.snapshot, help="A new volume from this snapshot.")
@click.option("--source-volume", metavar="VOL", type=VOLUME_REF, callback=exclusive("snapshot"),
              shell_complete=completion.volume, help="A clone of this volume.")
@json_option
@click.pass_obj
def create(app: App, *, size: int | None, name: str | None, multiattach: bool, volume_id: str | None,
           snapshot: str | None, source_volume: str | None) -> None:
    """Create a volume: an LV named from its id (creating -> available, or error); from a snapshot
    or a clone of a volume (thin: a thin snapshot; thick: a new LV and a dd copy).

    \b
    volctl create --size 10 --name db1
    volctl create --size 1 --name shared --multiattach --json
    volctl create --snapshot db1-before-upgrade --name db1-copy
    volctl create --source-volume db1 --size 20 --name db1-clone
    """
    with output_reports.progress("copying", enabled=not app.json and (snapshot or source_volume) is not None) as progress:
        done = app.service.create(size=size, name=name, multiattach=multiattach, volume_id=volume_id,
                                  snapshot=snapshot, source_volume=source_volume, progress=progress)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"created {done.volume.name} ({done.volume.id})")
