"""`volctl show VOL [--json] [--show-secrets]` without click.

Importing click costs a read command about as much as the whole floor it is measured against (the
interpreter opening the SQLite file and running the one query; BENCHMARKS.md, issue 20), so the
console script (volctl/cli.py) runs `show` here when its command line is one that click would read
in exactly one way: global --db/--config (once each, `--opt VALUE` or `--opt=VALUE`) and --json,
then `show`, one VOL and the command's own flags. Anything else (-v, --help, --version, `--`, a
value or VOL starting with '-', an option given twice, unknown words, shell completion) returns
None here and goes to click, which gives it its usual answer. The body is the `show` command's own
(volctl/commands/show.py calls `show_volume`), and every error ends as the click path ends it:
volctl/exits.py for volctl's and sqlite3's, click's own behaviour for ^C and a closed stdout.
tests/test_fastpath.py runs each command line both ways and compares stdout, stderr and exit code.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from volctl.app import App

_VALUED = ("--db", "--config")  # the global options that take a value; --json is the only global flag here
_FLAGS = ("--json", "--show-secrets")  # show's own


class Show:
    """A `show` command line as click would read it; db and config None when not given (the
    environment, then the defaults)."""

    def __init__(self, db: str | None, config: str | None, as_json: bool, volume: str, show_secrets: bool):
        self.db, self.config, self.as_json, self.volume, self.show_secrets = db, config, as_json, volume, show_secrets


def parse(argv: list[str]) -> Show | None:
    """The `show` request this command line is, or None when click must read it."""
    if os.environ.get("_VOLCTL_COMPLETE"):  # shell completion: click's
        return None
    values: dict[str, str] = {}
    as_json = False
    i = 0
    while i < len(argv) and argv[i] != "show":
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if arg == "--json":
            as_json = True
        elif name in _VALUED and name not in values:
            if not eq:
                if i + 1 == len(argv):
                    return None
                i += 1
                value = argv[i]
            if value.startswith("-"):
                return None
            values[name] = value
        else:
            return None
        i += 1
    if i == len(argv):
        return None
    words: list[str] = []
    flags: set[str] = set()
    for arg in argv[i + 1:]:
        if arg in _FLAGS:
            flags.add(arg)
        elif arg.startswith("-"):
            return None
        else:
            words.append(arg)
    if len(words) != 1:
        return None
    return Show(values.get("--db"), values.get("--config"), as_json or "--json" in flags, words[0],
                "--show-secrets" in flags)


def show_volume(app: App, *, volume: str, show_secrets: bool) -> None:
    """The `show` command's body, with click or without."""
    from volctl import output

    service = app.service
    shown = service.show(volume)
    keys = service.host_secrets_of(shown) if show_secrets else None
    output.volume(shown, app.json, show_secrets=show_secrets, host_secrets=keys)
    app.notes(())  # e.g. an inventory open to others


def run(request: Show, argv: list[str]) -> None:
    """As VolctlGroup.main and click's own main would run it; never returns. (Its imports are
    here: every other command line only pays for parse().)"""
    from volctl.exits import flush_stdout

    try:
        _run_and_exit(request, argv)
    except SystemExit as end:
        flush_stdout(end.code)  # a reader gone by now ends the process its own way
        raise


def _run_and_exit(request: Show, argv: list[str]) -> None:
    import errno
    import sqlite3

    from volctl.errors import ExitCode, VolctlError
    from volctl.exits import check_text, closed_stdout, fail

    try:
        check_text(argv)
        try:
            _run(request)
        except (EOFError, KeyboardInterrupt):
            # click's main: a blank line closes the terminal's ^C echo, then Abort, which
            # VolctlGroup ends as "aborted" (exit 1).
            from volctl import output

            sys.stderr.write("\n")
            sys.stderr.flush()
            output.error("aborted")
            sys.exit(ExitCode.INTERNAL)
        except OSError as e:
            if e.errno != errno.EPIPE:
                raise
            closed_stdout()
    except (VolctlError, sqlite3.Error, KeyboardInterrupt, Exception) as e:
        fail(e, argv, verbose=False)
    sys.exit(ExitCode.OK)


def _run(request: Show) -> None:
    from volctl import validate
    from volctl.app import App
    from volctl.config import DEFAULT_DB

    # The root group's callback, then VOL's conversion (commands/_options.py VOLUME_REF).
    app = App(db=request.db if request.db is not None else os.environ.get("VOLCTL_DB") or DEFAULT_DB,
              config=request.config if request.config is not None else os.environ.get("VOLCTL_CONFIG") or None,
              json=request.as_json)
    show_volume(app, volume=validate.volume_ref(request.volume), show_secrets=request.show_secrets)
