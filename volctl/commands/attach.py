from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@click.option("--instance", required=True, metavar="UUID", help="The instance (server) UUID.")
@click.option("--host", metavar="H", help="The compute host (stored as Cinder sanitizes it).")
@click.option("--mountpoint", metavar="P", help="Where the guest sees it, e.g. /dev/vdb.")
@click.option("--mode", type=click.Choice(["rw", "ro"]), default="rw", show_default=True, help="Attach mode.")
@click.option("--initiator", metavar="ID", help="The host this attachment uses, its IQN or NQN (default: found from the connections).")
@json_option
@click.pass_obj
def attach(app: App, *, volume: str, instance: str, host: str | None, mountpoint: str | None, mode: str,
           initiator: str | None) -> None:
    """Record an attachment (attaching -> in-use/attached). Idempotent per instance.

    \b
    volctl attach v1 --instance 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10 --host compute1 --mountpoint /dev/vdb
    """
    done = app.service.attach(volume, instance=instance, host=host, mountpoint=mountpoint, mode=mode, initiator=initiator)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"attached {done.volume.name}: attachment {done.data['attachment_id']}")
