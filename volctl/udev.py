"""Whether LVM may rely on udev from where volctl runs (the `lvm_udev` setting).

LVM's own test is only `access("/run/udev/control")`. Two common places get it wrong: a host or
container with no udevd, where LVM waits for udev to make `/dev/VG/LV` and then cannot wipe the
new LV; and a privileged container that sees the host's `/run/udev` from its own IPC namespace,
where LVM waits for a udev cookie (a SysV semaphore) that the host's udevd can never signal, and
hangs. In both, LVM must run with udev sync and udev rules off and make the nodes itself.

Reads only /run and /proc, starts no program; the roots are parameters so tests can point them
at a made-up layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from volctl.files import read_text

CHOICES = ("auto", "on", "off")
UDEVD_NAMES = frozenset({"systemd-udevd", "udevd"})


@dataclass(frozen=True)
class UdevMode:
    sync: bool  # True: LVM waits for udev and leaves /dev to udev's rules
    reason: str

    @property
    def name(self) -> str:
        return "on" if self.sync else "off"

    def describe(self) -> str:
        return f"lvm_udev: {self.name} ({self.reason})"


def decide(setting: str, *, run: str | Path = "/run", proc: str | Path = "/proc",
           environ: dict[str, str] | None = None) -> UdevMode:
    if setting == "on":
        return UdevMode(True, "lvm_udev = \"on\" in the config")
    if setting == "off":
        return UdevMode(False, "lvm_udev = \"off\" in the config")
    if setting != "auto":
        raise ValueError(f"lvm_udev must be one of {', '.join(CHOICES)}, not {setting!r}")
    environ = os.environ if environ is None else environ
    if "DM_DISABLE_UDEV" in environ:
        return UdevMode(False, "auto: DM_DISABLE_UDEV is set in volctl's environment")
    control = Path(run) / "udev" / "control"
    if not os.path.lexists(control):
        return UdevMode(False, f"auto: no {control}, so udev is not running here")
    proc = Path(proc)
    own = _namespaces(proc / "self")
    if own is None:
        return UdevMode(False, f"auto: cannot read {proc}/self/ns, so volctl's namespaces are unknown")
    visible = _udevd_pids(proc)
    if not visible:
        return UdevMode(False, f"auto: {control} exists but no udevd is visible in volctl's PID namespace "
                               "(a container seeing the host's /run/udev?)")
    for pid in visible:
        if _namespaces(proc / pid) == own:
            return UdevMode(True, f"auto: udevd (pid {pid}) runs in volctl's PID and IPC namespaces")
    return UdevMode(False, f"auto: udevd (pid {', '.join(visible)}) runs in another IPC or PID namespace, "
                           "so it could not answer LVM's udev cookies")


def _namespaces(process: Path) -> tuple[str, str] | None:
    try:
        return os.readlink(process / "ns" / "ipc"), os.readlink(process / "ns" / "pid")
    except OSError:  # gone meanwhile, or not ours to read
        return None


def _udevd_pids(proc: Path) -> list[str]:
    found = []
    try:
        entries = sorted((e for e in os.listdir(proc) if e.isdigit()), key=int)
    except OSError:
        return []
    # A host (and nvmet's kernel threads) may have hundreds of processes: files.read_text's plain os calls.
    for pid in entries:
        if read_text(f"{proc}/{pid}/comm") in UDEVD_NAMES:  # "": gone meanwhile, or not ours to read
            found.append(pid)
    return found
