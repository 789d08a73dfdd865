from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import connector_options, json_option, protocol_option, read_connector, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@connector_options
@protocol_option
@click.option("--multipath", is_flag=True, help="Return the portal lists even with one portal.")
@json_option
@click.pass_obj
def connect(app: App, *, volume: str, initiator: str | None, connector_file: str | None, protocol: str | None,
            multipath: bool) -> None:
    """Give a host access (export if needed; an iSCSI ACL with the volume's CHAP, or the host in an
    NVMe subsystem's allowed_hosts with its DH-HMAC-CHAP keys) and print Cinder's connection info.

    \b
    volctl connect v1 --initiator iqn.1994-05.com.redhat:client1 --json
    volctl connect v2 --protocol nvmet_tcp --initiator "$(cat /etc/nvme/hostnqn)" --json
    os-brick-connector-json | volctl connect v1 --connector - --json
    """
    connector, host = read_connector(initiator, connector_file)
    done = app.service.connect(volume, connector, initiator=host, protocol=protocol, multipath=multipath)
    app.notes(done.notes)
    output.connection(done.data, app.json, done.volume.name)
