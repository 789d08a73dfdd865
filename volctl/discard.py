"""Whether an export advertises UNMAP (discard) to its hosts: `report_discard_supported`, Cinder's
option, decided per volume from the LV's device in sysfs (thin-facts.md §3, §5, §6).

- "thin" (the default): thin volumes only. A thin pool gets space back only when hosts discard,
  and LIO's block backstore advertises UNMAP only with `emulate_tpu` set (0 by default; neither
  cinder-rtstool nor rtslib sets it).
- true: every volume whose device takes discards (a thick LV passes them to the disks under it).
- false: none, as Cinder's default: exports and connection info are as before.

A device that takes no discard is never advertised (LIO refuses `emulate_tpu` on one, ENOSYS). A
thin LV is a device-mapper `thin` target on its pool's `-tpool` device, which sysfs lists as its
one slave; no program runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

SETTINGS = ("thin", True, False)


def sysfs_dir(lv_path: str, sys_root: str = "/sys") -> Path | None:
    """The block device's directory in sysfs (/sys/dev/block/MAJ:MIN), None when the path is no block device."""
    try:
        device = os.stat(lv_path).st_rdev
    except OSError:
        return None
    if not device:
        return None
    path = Path(sys_root) / "dev" / "block" / f"{os.major(device)}:{os.minor(device)}"
    return path if path.is_dir() else None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def takes_discard(device: Path) -> bool:
    return _read(device / "queue" / "discard_max_bytes") not in ("", "0")


def is_thin(device: Path) -> bool:
    """A thin LV (or thin snapshot): its one slave is its pool's `<vg>-<pool>-tpool` device."""
    try:
        slaves = os.listdir(device / "slaves")
    except OSError:
        return False
    return len(slaves) == 1 and _read(device / "slaves" / slaves[0] / "dm" / "name").endswith("-tpool")


class DiscardPolicy:
    def __init__(self, setting: str | bool = False, device_of: Callable[[str], Path | None] = sysfs_dir):
        self.setting = setting
        self._device_of = device_of

    def advertised(self, lv_path: str) -> bool:
        """Whether an export of this LV advertises UNMAP (and its connection info says discard)."""
        if self.setting is False:
            return False
        device = self._device_of(lv_path)
        if device is None or not takes_discard(device):
            return False
        return self.setting is True or is_thin(device)
