from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output_reports
from volctl import completion
from volctl.commands._options import VOLUME_REF, json_option

if TYPE_CHECKING:
    from volctl.app import App

# A bar for a person only when there is something to watch: each volume costs a few seconds.
BAR_FROM = 6


@click.command()
@click.argument("volumes", metavar="[VOL]...", nargs=-1, type=VOLUME_REF, shell_complete=completion.volume)
@json_option
@click.pass_obj
def restore(app: App, *, volumes: tuple[str, ...]) -> int:
    """Re-create, from the inventory, every recorded export missing on the host (at boot).

    For each volume with a recorded export (or each VOL named): activate its LV (lvchange -K),
    re-create the target with its LUN and portals and the ACL of every recorded connection with
    the volume's CHAP; what is already there is left alone. Nothing live is deleted, targets
    volctl does not know are not touched, and the LIO config is saved once, to lio_save_file.

    Exits 0 when every recorded export is live, 6 when some volume could not be restored,
    5 when the only problems are volumes whose state needs `volctl doctor` first.

    \b
    volctl restore
    volctl restore v1 v2 --json
    """
    from volctl.restore import Restorer

    restorer = Restorer(app.service)
    with output_reports.counting("restoring exports", enabled=not app.json, minimum=BAR_FROM) as progress:
        report = restorer.run(volumes, progress)
    app.notes(())
    output_reports.restore_report(report, app.json)
    return report.exit_code
