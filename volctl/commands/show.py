from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@click.option("--show-secrets", is_flag=True, help="Include the CHAP password (provider_auth).")
@json_option
@click.pass_obj
def show(app: App, *, volume: str, show_secrets: bool) -> None:
    """Show one volume with its attachments and ACLs.

    \b
    volctl show v1
    volctl show v1 --json
    """
    output.volume(app.service.show(volume), app.json, show_secrets=show_secrets)
    app.notes(())  # e.g. an inventory open to others
