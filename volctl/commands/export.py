from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, protocol_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@protocol_option
@json_option
@click.pass_obj
def export(app: App, *, volume: str, protocol: str | None) -> None:
    """Export a volume: an LIO iSCSI target with CHAP (iscsi, iser), or an nvmet NVMe/TCP subsystem
    (nvmet_tcp), as target_protocol or --protocol says; saved for the next boot.

    Running it again on an exported volume changes nothing.

    \b
    volctl export v1
    volctl export v2 --protocol nvmet_tcp
    """
    done = app.service.export(volume, protocol=protocol)
    app.notes(done.notes)
    message = f"exported {done.volume.name}: {done.volume.provider_location}" if done.changed else None
    output.volume(done.volume, app.json, message=message)
