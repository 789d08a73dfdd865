"""The root click group: global options, the App object (volctl/app.py) commands receive, the
subcommands, each imported when it runs, and the one place where click's errors become exit codes
(every other error ends in volctl/exits.py). The console script starts in volctl/cli.py."""

from __future__ import annotations

import importlib
import sqlite3
import sys
from typing import NoReturn

import click

from volctl import __version__, output
from volctl.app import App
from volctl.commands import COMMANDS
from volctl.config import DEFAULT_DB
from volctl.errors import ExitCode, VolctlError
from volctl.exits import check_text, fail, flush_stdout


class VolctlGroup(click.Group):
    """Imports a subcommand's module when that command runs (or --help, completion or a tool lists
    them): a command does not pay for the other eighteen modules and what they import."""

    @property
    def commands(self) -> dict[str, click.Command]:
        """Every command, each module imported: for whatever walks the whole tree."""
        for name in COMMANDS:
            self._load(name)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = dict(value)

    def _load(self, name: str) -> click.Command:
        if name not in self._commands:
            module, attribute = COMMANDS[name]
            self._commands[name] = getattr(importlib.import_module(f"volctl.commands.{module}"), attribute)
        return self._commands[name]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name) if cmd_name in COMMANDS else self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self._commands})

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        try:
            self._main(args, prog_name, complete_var, **extra)
        except SystemExit as end:
            flush_stdout(end.code)  # a reader gone by now ends the process its own way
            raise

    def _main(self, args, prog_name, complete_var, **extra) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        verbose = "-v" in argv or "--verbose" in argv
        try:
            check_text(argv)
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()  # `volctl` alone: the help, as click prints it
            sys.exit(ExitCode.USAGE)
        except click.ClickException as e:
            # One line, as every volctl error: click's usage banner would make it three.
            hint = f"; see '{e.ctx.command_path} --help'" if isinstance(e, click.UsageError) and e.ctx else ""
            output.error(e.format_message() + hint)
            sys.exit(ExitCode.USAGE if isinstance(e, click.UsageError) else e.exit_code)
        except click.Abort:
            output.error("aborted")
            sys.exit(ExitCode.INTERNAL)
        except (VolctlError, sqlite3.Error, KeyboardInterrupt, Exception) as e:
            fail(e, argv, verbose)
        sys.exit(result if isinstance(result, int) else ExitCode.OK)


@click.group(cls=VolctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="PATH", envvar="VOLCTL_DB", default=DEFAULT_DB, show_default=True,
              help="SQLite inventory (env VOLCTL_DB); created 0600 in a 0700 directory on first write.")
@click.option("--config", metavar="PATH", envvar="VOLCTL_CONFIG", default=None,
              help="TOML settings (env VOLCTL_CONFIG) [default: /etc/volctl/volctl.toml if present].")
@click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON document on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Debug log on stderr: each external command, exit code and duration.")
@click.version_option(__version__, "--version", prog_name="volctl")
@click.pass_context
def cli(ctx: click.Context, db: str, config: str | None, as_json: bool, verbose: bool) -> None:
    """Cinder's LVM attach flow on one host, over LIO iSCSI or nvmet NVMe/TCP: volumes, exports,
    connections, attachments.

    \b
    volctl create --size 1 --name v1
    volctl reserve v1
    volctl export v1
    volctl connect v1 --initiator iqn.1994-05.com.redhat:client1 --json
    volctl attach v1 --instance 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10 --host compute1 --mountpoint /dev/vdb
    """
    app = ctx.ensure_object(App)
    app.db, app.config, app.verbose = db, config, verbose or app.verbose
    app.json = app.json or as_json
    if app.verbose:
        import logging  # deferred, as every import only -v needs: start-up is most of a read command

        # volctl's own debug log only: sh's logs each raw argv, CHAP passwords included.
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="volctl: %(message)s")
        logging.getLogger("volctl").setLevel(logging.DEBUG)
