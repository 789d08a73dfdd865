"""How a volctl process ends: an error becomes one line on stderr and the contract's exit code.
Shared by the click root group (volctl/group.py) and the console script's path that runs `show`
without click (volctl/fastpath.py), so both end every error alike. Imports nothing heavy: it is
on every command's start-up."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from typing import NoReturn

from volctl import output
from volctl.config import DEFAULT_DB
from volctl.errors import ExitCode, UsageError, VolctlError, quoted

_ENV_VARS = ("VOLCTL_DB", "VOLCTL_CONFIG")


def check_text(argv: list[str]) -> None:
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


def db_of(argv: list[str]) -> str:
    """The inventory an error is about, read from the command line as click would (its context is gone)."""
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--db="):
            return arg[len("--db="):]
    return os.environ.get("VOLCTL_DB") or DEFAULT_DB


def _discard_stdout() -> None:
    """What is still buffered goes to /dev/null at exit instead of failing again (the recipe of
    Python's signal documentation, "Note on SIGPIPE")."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def closed_stdout() -> NoReturn:
    """The reader went away (`| head`): end quietly with exit 1, as click's main does."""
    _discard_stdout()
    sys.exit(ExitCode.INTERNAL)


def flush_stdout(code: object) -> None:
    """Write out what the command printed, on every way a process ends (`code`: the exit code it is
    ending with), while a failure can still end it as the contract says. Into a pipe stdout is
    block-buffered: left to the interpreter's flush at exit, a reader gone by then made the process
    exit 120 with a BrokenPipeError on stderr."""
    try:
        sys.stdout.flush()
    except OSError as e:
        if e.errno == errno.EPIPE:
            closed_stdout()
        _discard_stdout()
        if code in (0, None):  # otherwise the failure that ends it is already on stderr
            output.error(f"cannot write the output: {e.strerror or e}")
            sys.exit(ExitCode.ENVIRONMENT)


def fail(e: BaseException, argv: list[str], verbose: bool) -> NoReturn:
    """Every error that is not click's own: one line (the traceback only with -v), its exit code.
    Called inside the `except` that caught `e`."""
    if isinstance(e, VolctlError):
        output.error(str(e))
        sys.exit(e.exit_code)
    if isinstance(e, sqlite3.Error):
        from volctl.inventory import inventory_error

        output.error(str(inventory_error(db_of(argv), e)))
        sys.exit(ExitCode.ENVIRONMENT)
    if isinstance(e, KeyboardInterrupt):
        output.error("interrupted")
        sys.exit(130)
    if verbose:  # the contract: one line, the traceback only with -v
        import traceback

        traceback.print_exc()
    output.error(f"internal error: {type(e).__name__}: {e}")
    sys.exit(ExitCode.INTERNAL)
