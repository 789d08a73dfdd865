"""Options shared by several commands."""

from __future__ import annotations

import sys

import click

from volctl.errors import UsageError

MAX_GIB = 1_048_576


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        from volctl.cli import App

        ctx.ensure_object(App).json = True


# Accepted after the command too: `volctl show v1 --json`.
json_option = click.option("--json", is_flag=True, expose_value=False, callback=_set_json,
                           help="Machine output: one JSON document on stdout.")

volume_argument = click.argument("volume", metavar="VOL")

size_option = click.option("--size", type=click.IntRange(1, MAX_GIB), required=True, metavar="GIB",
                           help=f"Size in GiB (1 to {MAX_GIB}).")


def connector_options(func):
    func = click.option("--connector", "connector_file", metavar="FILE|-",
                        help="os-brick connector properties as JSON (- for stdin); must hold 'initiator'.")(func)
    func = click.option("--initiator", metavar="IQN", help="Shorthand for a connector {\"initiator\": IQN}.")(func)
    return func


def read_connector(initiator: str | None, connector_file: str | None) -> dict:
    from volctl.service import checked_connector, parse_connector

    if (initiator is None) == (connector_file is None):
        raise UsageError("give exactly one of --initiator IQN or --connector FILE|-")
    if initiator is not None:
        return checked_connector({"initiator": initiator})
    if connector_file == "-":
        return parse_connector(sys.stdin.read(), "stdin")
    try:
        with open(connector_file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"cannot read connector file {connector_file}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"connector file {connector_file} is not UTF-8 text") from None
    return parse_connector(text, connector_file)
