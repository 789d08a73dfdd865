from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl.commands._options import json_option, volume_argument
from volctl.fastpath import show_volume

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@click.option("--show-secrets", is_flag=True, help="Include the CHAP password (provider_auth) and NVMe hosts' DH-HMAC-CHAP keys.")
@json_option
@click.pass_obj
def show(app: App, *, volume: str, show_secrets: bool) -> None:
    """Show one volume with its export (protocol, how hosts authenticate), attachments and ACLs.

    \b
    volctl show v1
    volctl show v1 --json
    """
    show_volume(app, volume=volume, show_secrets=show_secrets)  # also the console script's path without click
