"""The console script (`volctl` -> volctl.cli:main): `show` without click when its command line
allows (volctl/fastpath.py), everything else through the click root group (volctl/group.py).

`cli` and `App` are still importable from here (tests, tools): they come from volctl/group.py
when first asked for, so the console script does not import click before it needs it."""

from __future__ import annotations

import sys


def main() -> None:
    from volctl import fastpath

    argv = sys.argv[1:]
    request = fastpath.parse(argv)
    if request is not None:
        fastpath.run(request, argv)
    from volctl.group import cli

    cli(prog_name="volctl")


def __getattr__(name: str):
    if name in ("cli", "App", "VolctlGroup"):
        from volctl import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
