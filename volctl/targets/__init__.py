"""Target helpers, chosen by the `target_helper` setting as Cinder chooses among
`cinder/volume/targets/`: `lioadm` (cinder-rtstool, the default) and `rtslib` (in-process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from volctl.locks import FileLock
    from volctl.runner import Runner
    from volctl.targets.base import TargetHelper

HELPERS = ("lioadm", "rtslib")


def target_helper(name: str, runner: Runner, lock: FileLock, **options: object) -> TargetHelper:
    """options: iscsi (an IscsiConfig), and configfs and save_file when not the host's own."""
    if name == "rtslib":
        from volctl.targets.rtslib import RtslibTarget

        return RtslibTarget(lock, **options)
    if name == "lioadm":
        from volctl.targets.lio import LioAdm

        return LioAdm(runner, lock, **options)
    raise ValueError(f"unknown target helper {name!r}")  # config.py admits only HELPERS
