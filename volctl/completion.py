"""Shell completion of VOL, --attachment and --instance from the inventory (click's `shell_complete=`).

This runs at every TAB press, inside the operator's prompt, so it reads the inventory with plain
sqlite3 opened read-only: the file and its directory are never created, no migration runs, no
write lock is taken, and nothing heavier than sqlite3 is imported. Whatever goes wrong (no
inventory yet, unreadable, corrupt, an older schema) completes nothing and prints nothing: an
error there would land in the middle of the command line being typed."""

from __future__ import annotations

import functools
import os
import sqlite3
from typing import Callable

import click
from click.shell_completion import CompletionItem

from volctl.config import DEFAULT_DB

# The largest code point: `x >= p AND x < p || TOP` is a prefix match that can use an index.
_TOP = "\U0010ffff"
_LIVE = "attach_status != 'detached'"
# The volume the command line already names, by id first and then by name, as the inventory resolves it.
_TYPED_VOLUME = "coalesce((SELECT id FROM volumes WHERE id = :vol), (SELECT id FROM volumes WHERE name = :vol))"

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _quiet(complete: Completer) -> Completer:
    @functools.wraps(complete)
    def run(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            return complete(ctx, param, incomplete)
        except Exception:  # see the module docstring: never an error in the prompt
            return []

    return run


def _inventory(ctx: click.Context) -> str:
    """--db or VOLCTL_DB as given on this command line (click has resolved both into the root's params)."""
    db = ctx.find_root().params.get("db")
    if not isinstance(db, str) or not db:
        db = os.environ.get("VOLCTL_DB") or DEFAULT_DB
    return os.path.expanduser(db)  # the shell hands over `--db ~/x.db` unexpanded


def _uri(path: str) -> str:
    # The three characters an SQLite URI path gives a meaning to.
    quoted = os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{quoted}?mode=ro"


def _rows(ctx: click.Context, sql: str, params: dict) -> list[tuple]:
    path = _inventory(ctx)
    if not os.path.isfile(path):  # mode=ro never creates it either; this just skips the attempt
        return []
    try:
        conn = sqlite3.connect(_uri(path), uri=True, timeout=1.0)
    except sqlite3.Error:
        return []
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def _typed_volume(ctx: click.Context) -> str | None:
    value = ctx.params.get("volume")
    if isinstance(value, str) and value:
        return value
    # While the option being completed still lacks its value, click's parser stops there and leaves
    # the positional words it has seen unassigned: VOL is the first of them.
    words = [word for word in ctx.args if not word.startswith("-")]
    return words[0] if words else None


def _prefix(incomplete: str) -> dict:
    return {"lo": incomplete, "hi": incomplete + _TOP}


@_quiet
def volume(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Names of volumes (an unnamed volume's name is its id); ids once what is typed starts no name, so
    `d<TAB>` is not buried under every UUID that starts with d. For `history`, deleted volumes too:
    their history stays readable."""
    history = ctx.command.name == "history"
    gone = "FROM events WHERE volume_id NOT IN (SELECT id FROM volumes)"
    found: dict[str, str] = {}
    rows = _rows(ctx, "SELECT name, status, size FROM volumes WHERE name >= :lo AND name < :hi ORDER BY name",
                 _prefix(incomplete))
    found.update((name, f"{status}, {size} GiB") for name, status, size in rows)
    if history:
        for value, in _rows(ctx, f"SELECT DISTINCT volume_name {gone} AND volume_name >= :lo AND volume_name < :hi "
                                 "ORDER BY volume_name", _prefix(incomplete)):
            found.setdefault(value, "deleted")
    if found or not incomplete:
        return [CompletionItem(value, help=help_) for value, help_ in found.items()]
    rows = _rows(ctx, "SELECT id, name, status FROM volumes WHERE id >= :lo AND id < :hi ORDER BY id", _prefix(incomplete))
    found.update((id_, f"{name}, {status}") for id_, name, status in rows)
    if history:
        for value, in _rows(ctx, f"SELECT DISTINCT volume_id {gone} AND volume_id >= :lo AND volume_id < :hi "
                                 "ORDER BY volume_id", _prefix(incomplete)):
            found.setdefault(value, "deleted")
    return [CompletionItem(value, help=help_) for value, help_ in found.items()]


def _of_typed_volume(ctx: click.Context) -> tuple[str, dict]:
    ref = _typed_volume(ctx)
    return (f"AND a.volume_id = {_TYPED_VOLUME}", {"vol": ref}) if ref else ("", {})


@_quiet
def attachment(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Live attachments of the volume on the command line (of every volume while none is typed yet)."""
    where, params = _of_typed_volume(ctx)
    rows = _rows(ctx, "SELECT a.id, a.instance_uuid, v.name FROM attachments a JOIN volumes v ON v.id = a.volume_id "
                      f"WHERE a.{_LIVE} AND a.id >= :lo AND a.id < :hi {where} ORDER BY a.attach_time, a.id",
                 {**_prefix(incomplete), **params})
    return [CompletionItem(id_, help=f"{name}, instance {instance}") for id_, instance, name in rows]


@_quiet
def instance(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Instances with a live attachment of the volume on the command line (of any volume while none is typed)."""
    where, params = _of_typed_volume(ctx)
    rows = _rows(ctx, "SELECT a.instance_uuid, v.name, a.id FROM attachments a JOIN volumes v ON v.id = a.volume_id "
                      f"WHERE a.{_LIVE} AND a.instance_uuid >= :lo AND a.instance_uuid < :hi {where} "
                      "ORDER BY a.attach_time, a.id",
                 {**_prefix(incomplete), **params})
    seen: dict[str, str] = {}
    for uuid, name, id_ in rows:
        seen.setdefault(uuid, f"{name}, attachment {id_}")
    return [CompletionItem(uuid, help=help_) for uuid, help_ in seen.items()]


@_quiet
def snapshot(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Names of snapshots (of the volume on the command line, for revert); ids once what is typed starts no name."""
    where, params = ("AND s.volume_id = " + _TYPED_VOLUME, {"vol": _typed_volume(ctx)}) \
        if ctx.command.name == "revert" and _typed_volume(ctx) else ("", {})
    query = ("SELECT s.{col}, s.status, v.name FROM snapshots s LEFT JOIN volumes v ON v.id = s.volume_id "
             "WHERE s.{col} >= :lo AND s.{col} < :hi " + where + " ORDER BY s.{col}")
    rows = _rows(ctx, query.format(col="name"), {**_prefix(incomplete), **params})
    if not rows and incomplete:
        rows = _rows(ctx, query.format(col="id"), {**_prefix(incomplete), **params})
    return [CompletionItem(value, help=f"{status}, of {volume or 'a deleted volume'}") for value, status, volume in rows]
