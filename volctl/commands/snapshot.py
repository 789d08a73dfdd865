from __future__ import annotations

from typing import TYPE_CHECKING

import click

from volctl import completion, output, output_reports, validate
from volctl.commands._options import VOLUME_REF, _Validated, json_option, volume_argument

if TYPE_CHECKING:
    from volctl.app import App

SNAPSHOT_REF = _Validated("snapshot", validate.snapshot_ref)
snapshot_argument = click.argument("snapshot", metavar="SNAP", type=SNAPSHOT_REF, shell_complete=completion.snapshot)


@click.group()
def snapshot() -> None:
    """Snapshots of volumes, as Cinder's LVM driver makes them (thick: a COW LV; thin: a thin LV)."""


@snapshot.command("create")
@volume_argument
@click.option("--name", help="Unique snapshot name: 1-63 of A-Z a-z 0-9 . _ - (default: the id).")
@click.option("--force", is_flag=True, help="Also snapshot an in-use volume (what its writers have not flushed is not in it).")
@json_option
@click.pass_obj
def snapshot_create(app: App, *, volume: str, name: str | None, force: bool) -> None:
    """Snapshot an available volume (in-use with --force): creating -> available, or error.

    \b
    volctl snapshot create db1 --name db1-before-upgrade
    volctl snapshot create db1 --force --json
    """
    done = app.service.snapshot_create(volume, name=name, force=force)
    app.notes(done.notes)
    output.snapshot(done.snapshot, app.json, message=f"created snapshot {done.snapshot.name} ({done.snapshot.id})")


@snapshot.command("list")
@click.argument("volume", metavar="[VOL]", type=VOLUME_REF, required=False, shell_complete=completion.volume)
@json_option
@click.pass_obj
def snapshot_list(app: App, *, volume: str | None) -> None:
    """List snapshots, of one volume or of all (oldest first).

    \b
    volctl snapshot list
    volctl snapshot list db1 --json
    """
    output.snapshots(app.service.snapshots(volume), app.json)
    app.notes(())


@snapshot.command("show")
@snapshot_argument
@json_option
@click.pass_obj
def snapshot_show(app: App, *, snapshot: str) -> None:
    """Show one snapshot.

    \b
    volctl snapshot show db1-before-upgrade --json
    """
    output.snapshot(app.service.snapshot_show(snapshot), app.json)
    app.notes(())


@snapshot.command("delete")
@snapshot_argument
@json_option
@click.pass_obj
def snapshot_delete(app: App, *, snapshot: str) -> None:
    """Delete a snapshot: zero a thick one's COW store (volume_clear), lvremove. History stays.

    \b
    volctl snapshot delete db1-before-upgrade
    """
    with output_reports.progress("zeroing", enabled=not app.json) as progress:
        done = app.service.snapshot_delete(snapshot, progress)
    app.notes(done.notes)
    output.document(done.data, app.json, f"deleted snapshot {done.data['name']} ({done.data['id']})")
