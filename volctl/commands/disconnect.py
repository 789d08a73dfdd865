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
    """Take a host's access away: its ACL (iSCSI) or its place in allowed_hosts (NVMe/TCP); saved.

    On a multiattach volume the access stays while another live attachment uses the same host.

    \b
    volctl disconnect v1 --initiator iqn.1994-05.com.redhat:client1
    volctl disconnect v2 --initiator nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427
    """
    connector, host = read_connector(initiator, connector_file)
    done = app.service.disconnect(volume, connector, initiator=host)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"disconnected from {done.volume.name}" if done.changed else None)
