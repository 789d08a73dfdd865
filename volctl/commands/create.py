import click

from volctl import output
from volctl.commands._options import json_option, size_option


@click.command()
@size_option
@click.option("--name", help="Unique name: 1-63 of A-Z a-z 0-9 . _ - (default: the id).")
@click.option("--multiattach", is_flag=True, help="Allow attaching to several instances at once.")
@click.option("--id", "volume_id", metavar="UUID", help="Use this id instead of a new random UUID.")
@json_option
@click.pass_obj
def create(app, *, size: int, name: str | None, multiattach: bool, volume_id: str | None) -> None:
    """Create a volume: an LV named from its id (creating -> available, or error).

    \b
    volctl create --size 10 --name db1
    volctl create --size 1 --name shared --multiattach --json
    """
    done = app.service.create(size=size, name=name, multiattach=multiattach, volume_id=volume_id)
    app.notes(done.notes)
    output.volume(done.volume, app.json, message=f"created {done.volume.name} ({done.volume.id})")
