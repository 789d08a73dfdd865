from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import connector_options, json_option, read_connector, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@connector_options
@json_option
@click.pass_obj
def disconnect(app: App, *, volume: str, initiator: str | None, connector_file: str | None) -> None:
    """Remove an initiator's ACL (cinder-rtstool delete-initiator, save).

    On a multiattach volume the ACL stays while another live attachment uses the same initiator.

    \b
    volctl disconnect v1 --initiator iqn.1994-05.com.redhat:client1
    """
    done = app.service.disconnect(volume, read_connector(initiator, connector_file))
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"disconnected from {done.volume.name}" if done.changed else None)
