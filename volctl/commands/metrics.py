from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import output
from volctl.commands._options import OUTPUT_FILE, SECONDS

if TYPE_CHECKING:
    from volctl.app import App


@click.command()
@click.option("--output", "output_file", type=OUTPUT_FILE, metavar="FILE",
              help="Write to FILE (atomically, mode 0644) instead of stdout: a *.prom file in node_exporter's "
                   "--collector.textfile.directory.")
@click.option("--stale-after", type=SECONDS, default=300.0, show_default=True, metavar="SECONDS",
              help="How long a volume may sit in a busy status before volctl_volumes_stuck counts it (as doctor's).")
@click.pass_obj
def metrics(app: App, *, output_file: str | None, stale_after: float) -> None:
    """Print the inventory's and the host's space metrics in Prometheus's text format.

    Volumes and snapshots by status, volumes stuck in a busy status, exports and connections
    by protocol, provisioned and allocated bytes, each volume group's size and free space, and
    each thin pool's size, data and metadata use, health and over-subscription. One lvs per
    volume group; a group LVM cannot report has volctl_lvm_up 0.

    \b
    volctl metrics
    volctl metrics --output /var/lib/prometheus/node-exporter/volctl.prom
    """
    from volctl.metrics import Collector

    families = Collector(app.service, stale_after).collect()
    app.notes(())
    output.metrics(families, output_file)
