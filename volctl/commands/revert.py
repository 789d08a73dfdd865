from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, volume_argument
from volctl.commands.snapshot import SNAPSHOT_REF

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@click.option("--snapshot", "snapshot", metavar="SNAP", type=SNAPSHOT_REF, required=True,
              help="The volume's latest snapshot, of its current size.")
@json_option
@click.pass_obj
def revert(app: App, *, volume: str, snapshot: str) -> None:
    """Revert a thick volume to its latest snapshot (reverting -> available): lvconvert --merge,
    then the snapshot is made again. The volume must be available and not exported.

    \b
    volctl unexport db1 && volctl revert db1 --snapshot db1-before-upgrade
    """
    done = app.service.revert(volume, snapshot)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"reverted {done.volume.name} to snapshot {done.snapshot.name}")
