"""The console script (`volctl` -> volctl.cli:main). The click root group is volctl/group.py.

`cli` and `App` are still importable from here (tests, tools): they come from volctl/group.py
when first asked for."""

from __future__ import annotations


def main() -> None:
    from volctl.group import cli

    cli(prog_name="volctl")


def __getattr__(name: str):
    if name in ("cli", "App", "VolctlGroup"):
        from volctl import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
