"""Which saved LIO config survives a reboot on this host, and which unit restores it.

Debian patches rtslib's default save file to /etc/rtslib-fb-target/saveconfig.json and restores
it at boot (and on every upgrade of python3-rtslib-fb) with rtslib-fb-targetctl.service, which
clears every live target first; upstream rtslib, which cinder-rtstool's PyPI venv runs, uses
/etc/target/saveconfig.json and target.service. A save to the file the host's unit does not read
is lost at the next restart of that unit (../shared/reference/lio-lvm-facts.md §1.10, §5).

Every path is looked up under `root`, so tests can lay out a host in a temporary directory.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

DEBIAN_SAVE_FILE = "/etc/rtslib-fb-target/saveconfig.json"
UPSTREAM_SAVE_FILE = "/etc/target/saveconfig.json"
DEBIAN_UNIT = "rtslib-fb-targetctl.service"
UPSTREAM_UNIT = "target.service"
# systemd's own search order: the administrator's copy wins over the package's.
UNIT_DIRS = ("etc/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system")


@dataclass(frozen=True)
class RestoreUnit:
    """The host's LIO restore unit, and the file its `targetctl restore` reads."""

    name: str
    path: Path
    save_file: str


def _find_unit(root: Path, name: str) -> Path | None:
    for directory in UNIT_DIRS:
        candidate = root / directory / name
        if candidate.is_file():
            return candidate
    return None


def _restores_from(unit_file: Path, default: str) -> str:
    """`targetctl restore [FILE]` in an ExecStart= line; without FILE, targetctl's default."""
    try:
        text = unit_file.read_text(errors="replace")
    except OSError:
        return default
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() != "ExecStart":
            continue
        try:
            words = shlex.split(value.lstrip("-@:+!"))
        except ValueError:
            continue
        for i, word in enumerate(words[:-1]):
            if word.endswith("targetctl") and words[i + 1] == "restore":
                return words[i + 2] if len(words) > i + 2 else default
    return default


def restore_unit(root: Path | str = "/") -> RestoreUnit | None:
    """Debian's unit first: where both exist, Debian's rtslib is what targetctl runs."""
    root = Path(root)
    for name, default in ((DEBIAN_UNIT, DEBIAN_SAVE_FILE), (UPSTREAM_UNIT, UPSTREAM_SAVE_FILE)):
        found = _find_unit(root, name)
        if found is not None:
            return RestoreUnit(name, found, _restores_from(found, default))
    return None


def default_save_file(root: Path | str = "/") -> str:
    """The `lio_save_file` default: the file the host's LIO restore unit reads; with no unit,
    Debian's file where Debian's rtslib directory is, else upstream's."""
    root = Path(root)
    unit = restore_unit(root)
    if unit is not None:
        return unit.save_file
    if (root / Path(DEBIAN_SAVE_FILE).parent.relative_to("/")).is_dir():
        return DEBIAN_SAVE_FILE
    return UPSTREAM_SAVE_FILE
