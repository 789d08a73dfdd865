"""The root click group: global options, the App object (volctl/app.py) commands receive, and
the one place where errors become exit codes."""

from __future__ import annotations

import os
import sqlite3
import sys

import click

from volctl import __version__, output
from volctl.app import App
from volctl.commands import COMMANDS
from volctl.config import DEFAULT_DB
from volctl.errors import ExitCode, UsageError, VolctlError, quoted


class VolctlGroup(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        verbose = "-v" in argv or "--verbose" in argv
        try:
            _check_text(argv)
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
        except VolctlError as e:
            output.error(str(e))
            sys.exit(e.exit_code)
        except sqlite3.Error as e:
            from volctl.inventory import inventory_error

            output.error(str(inventory_error(_db_of(argv), e)))
            sys.exit(ExitCode.ENVIRONMENT)
        except KeyboardInterrupt:
            output.error("interrupted")
            sys.exit(130)
        except Exception as e:  # the contract: one line, the traceback only with -v
            if verbose:
                import traceback

                traceback.print_exc()
            output.error(f"internal error: {type(e).__name__}: {e}")
            sys.exit(ExitCode.INTERNAL)
        sys.exit(result if isinstance(result, int) else ExitCode.OK)


_ENV_VARS = ("VOLCTL_DB", "VOLCTL_CONFIG")


def _check_text(argv: list[str]) -> None:
    """Every argument and volctl setting from the environment is text volctl can store and print.
    Python hands undecodable bytes over as lone surrogates, which no later step could encode."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(f"argument {quoted(arg)} is not valid UTF-8") from None
    for var in _ENV_VARS:
        value = os.environ.get(var)
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError(f"{var}={quoted(value)} is not valid UTF-8") from None


def _db_of(argv: list[str]) -> str:
    """The inventory an error is about, read from the command line as click would (its context is gone)."""
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--db="):
            return arg[len("--db="):]
    return os.environ.get("VOLCTL_DB") or DEFAULT_DB


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
    """Cinder's LVM + LIO iSCSI attach flow on one host: volumes, exports, connections, attachments.

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


for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="volctl")
