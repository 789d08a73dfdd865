"""Options shared by several commands, and the click types that hand each value to its validator
in volctl/validate.py as it enters."""

from __future__ import annotations

import os
import sys
from typing import Callable

import click

from volctl import completion, validate
from volctl.app import App
from volctl.errors import UsageError, quoted


class _Validated(click.ParamType):
    """A click type whose conversion is one validator: its UsageError is the message (exit 2)."""

    def __init__(self, name: str, check: Callable[[str], object]):
        self.name = name
        self._check = check

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # a default, already converted
            return value
        return self._check(value)


GIB = _Validated("gib", validate.size_text)
SECONDS = _Validated("seconds", lambda text: validate.seconds_text(text, "--stale-after"))
OUTPUT_FILE = _Validated("file", lambda text: validate.output_file(text, os.path.isdir(text)))
VOLUME_REF = _Validated("volume", validate.volume_ref)
HOST_ID = _Validated("host", validate.host_id)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(App).json = True


# Accepted after the command too: `volctl show v1 --json`.
json_option = click.option("--json", is_flag=True, expose_value=False, callback=_set_json,
                           help="Machine output: one JSON document on stdout.")

volume_argument = click.argument("volume", metavar="VOL", type=VOLUME_REF, shell_complete=completion.volume)

size_option = click.option("--size", type=GIB, required=True, metavar="GIB",
                           help=f"Size in GiB (1 to {validate.MAX_GIB}).")


def exclusive(*names: str) -> Callable:
    """Refuse (exit 2, before anything happens) a command given more than one of these options."""

    def check(ctx: click.Context, param: click.Parameter, value):
        given = [p for p in ctx.command.params if p.name in names and ctx.params.get(p.name) is not None]
        if value is not None and given:
            flags = " and ".join(sorted({p.opts[0] for p in given} | {param.opts[0]}))
            raise UsageError(f"{flags} exclude each other: give one")
        return value

    return check


def connector_options(func):
    func = click.option("--connector", "connector_file", metavar="FILE|-", callback=exclusive("initiator"),
                        help="os-brick connector properties as JSON (- for stdin); 'initiator' (iSCSI) or "
                             "'nqn' (NVMe/TCP) names the host.")(func)
    func = click.option("--initiator", metavar="ID", type=HOST_ID, callback=exclusive("connector_file"),
                        help="Shorthand for a connector: {\"initiator\": IQN} for an iSCSI export, "
                             "{\"nqn\": NQN} for an NVMe/TCP one.")(func)
    return func


PROTOCOL_CHOICE = click.Choice(("iscsi", "iser", "nvmet_tcp"))
protocol_option = click.option("--protocol", type=PROTOCOL_CHOICE, metavar="PROTO",
                               help="iscsi, iser or nvmet_tcp: this export's protocol, for a volume not exported "
                                    "yet (default: target_protocol); another than a live export's is refused.")


def read_connector(initiator: str | None, connector_file: str | None) -> tuple[dict | None, str | None]:
    """(the connector, None) for --connector; (None, the host) for --initiator, whose key in a
    connector the export's protocol decides."""
    if initiator is None and connector_file is None:
        raise UsageError("give one of --initiator ID or --connector FILE|-")
    if initiator is not None:
        return None, initiator
    limit = validate.CONNECTOR_MAX_BYTES + 1  # one byte more than allowed is enough to refuse it
    if connector_file == "-":
        return validate.parse_connector(sys.stdin.buffer.read(limit), "stdin"), None
    try:
        with open(connector_file, "rb") as f:
            data = f.read(limit)
    except OSError as e:
        raise UsageError(f"cannot read connector file {quoted(connector_file)}: {e.strerror}") from None
    return validate.parse_connector(data, quoted(connector_file)), None
