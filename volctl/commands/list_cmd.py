import click

from volctl import output
from volctl.commands._options import json_option


@click.command("list")
@click.option("--status", metavar="S", help="Only volumes in this status.")
@json_option
@click.pass_obj
def list_(app, *, status: str | None) -> None:
    """List volumes (oldest first).

    \b
    volctl list
    volctl list --status in-use --json
    """
    output.volumes(app.service.list(status), app.json)
    app.notes(())  # e.g. an inventory open to others
