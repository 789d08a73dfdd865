from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import completion, output
from volctl.commands._options import exclusive, json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@volume_argument
@click.option("--attachment", "attachment_id", metavar="ID", callback=exclusive("instance"),
              shell_complete=completion.attachment, help="The attachment to end.")
@click.option("--instance", metavar="UUID", callback=exclusive("attachment_id"),
              shell_complete=completion.instance, help="End the attachment of this instance.")
@json_option
@click.pass_obj
def detach(app: App, *, volume: str, attachment_id: str | None, instance: str | None) -> None:
    """End an attachment (in-use -> detaching -> in-use or available); the export goes with the last one.

    \b
    volctl detach v1
    volctl detach shared --instance 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10
    """
    done = app.service.detach(volume, attachment_id=attachment_id, instance=instance)
    app.notes(done.notes)
    extra = "; export removed" if done.data["export_removed"] else ""
    output.volume(done.volume, app.json, message=f"detached {done.data['attachment_id']} from {done.volume.name}{extra}")
