"""Typed wrapper around the LVM programs: argv lists in, dataclasses out.

Command lines follow Cinder's LVM driver (cinder/brick/local_dev/lvm.py); reports are read as JSON
in bytes instead of Cinder's whitespace-split GiB strings.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from volctl.errors import CommandFailed, EnvironmentProblem
from volctl.model import GIB
from volctl.runner import Runner
from volctl.udev import UdevMode, decide

# Zeroing a large thick LV runs at disk speed; a TiB at 200 MB/s takes about 90 minutes.
ZERO_TIMEOUT = 24 * 3600.0
# Every LVM command takes seconds even under emulation; one that runs this long is waiting for a
# udev cookie nobody will signal (see volctl/udev.py), and must fail rather than stall the caller.
# Such an LVM ignores SIGTERM (measured in the guest); the runner's timeout kills with SIGKILL.
LVM_TIMEOUT = 180.0
_LV_FIELDS = "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv"
_POOL_FIELDS = "vg_name,lv_name,lv_size,lv_attr,data_percent,metadata_percent,lv_metadata_size,lv_health_status"
_USAGE_FIELDS = _POOL_FIELDS + ",pool_lv,vg_size,vg_free"
_NOT_FOUND = ("not found", "Failed to find")
# cinder: "lvremove --config 'activation { retry_deactivation = 1} ' -f"
_REMOVE_CONFIG = "activation { retry_deactivation = 1} "
_REMOVE_RETRY_CONFIG = "activation { retry_deactivation = 1} devices { ignore_suspended_devices = 1}"


@dataclass(frozen=True)
class LogicalVolume:
    vg: str
    name: str
    size_bytes: int
    attr: str
    path: str
    pool: str = ""

    @property
    def is_thin_pool(self) -> bool:
        return self.attr.startswith("t")

    @property
    def is_thin_volume(self) -> bool:
        return self.attr.startswith("V")

    @property
    def is_thick_origin(self) -> bool:
        """A thick LV with snapshots ('o'; 'O' while a merge runs): lvm2 resizes it only inactive."""
        return self.attr[:1] in ("o", "O")

    @property
    def is_thick_snapshot(self) -> bool:
        return self.attr[:1] in ("s", "S")

    @property
    def is_active(self) -> bool:
        """lv_attr's fifth character is the state; 'a' = active (lvs(8))."""
        return self.attr[4:5] == "a"

    @property
    def is_open(self) -> bool:
        """lv_attr's sixth character: 'o' while something holds the device open (an export, a mount)."""
        return self.attr[5:6] == "o"


@dataclass(frozen=True)
class ThinPool:
    """A thin pool as one `lvs` reports it. The percentages are None while the pool is inactive
    (lvs shows them only for an active LV); health "" is lvm2's healthy."""

    vg: str
    name: str
    size_bytes: int
    data_percent: float | None
    metadata_percent: float | None
    metadata_size_bytes: int
    health: str


@dataclass(frozen=True)
class VolumeGroup:
    name: str
    size_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class GroupUsage:
    """A volume group's space as one `lvs` reports it: the group, what each LV holds (a thin LV:
    its size times its data percent; any other: its size), and its thin pools."""

    group: VolumeGroup
    held_bytes: dict[str, int]  # LV name -> bytes it holds in the group
    pools: tuple[ThinPool, ...]


@dataclass(frozen=True)
class LvmHost:
    """How LVM commands run on this host: with or without udev, and which lvm.conf."""

    udev: UdevMode = field(default_factory=lambda: UdevMode(True, "default"))
    system_dir: str | None = None  # LVM_SYSTEM_DIR: the directory of Cinder's lvm_conf_file
    timeout: float = LVM_TIMEOUT

    @property
    def env(self) -> dict[str, str]:
        env = {}
        if not self.udev.sync:
            # lvm2 2.03: udev_rules=0 udev_sync=0 verify_udev_operations=1, so LVM itself makes the
            # /dev/VG/LV nodes that export and zeroing open; libdm honours it too.
            env["DM_DISABLE_UDEV"] = "1"
        if self.system_dir is not None:
            env["LVM_SYSTEM_DIR"] = self.system_dir
        return env

    def describe(self) -> list[str]:
        lines = [self.udev.describe()]
        if self.system_dir is not None:
            lines.append(f"lvm_conf_file: LVM reads {self.system_dir}/lvm.conf (LVM_SYSTEM_DIR)")
        return lines


@functools.lru_cache(maxsize=None)
def host_for(lvm_udev: str, lvm_conf_file: str = "") -> LvmHost:
    """Decided once per process: the environment does not change under a running volctl."""
    system_dir = None
    if lvm_conf_file:
        if not os.path.isfile(lvm_conf_file):
            raise EnvironmentProblem(f"lvm_conf_file {lvm_conf_file} does not exist")
        system_dir = os.path.dirname(os.path.abspath(lvm_conf_file))
    return LvmHost(decide(lvm_udev), system_dir)


def new_pool_gib(group: VolumeGroup) -> int:
    """Cinder sizes a new thin pool at 95 % of the group's free space, in whole GiB."""
    return int(group.free_bytes * 0.95 / GIB)


def _percent(row: dict, key: str) -> float | None:
    """lvs shows a percentage only while the LV is active: None otherwise."""
    text = (row.get(key) or "").strip()
    return float(text) if text else None


def _thin_pool(row: dict) -> ThinPool:
    return ThinPool(row["vg_name"], row["lv_name"], int(row["lv_size"]), _percent(row, "data_percent"),
                    _percent(row, "metadata_percent"), int(row.get("lv_metadata_size") or 0),
                    (row.get("lv_health_status") or "").strip())


def _logical_volume(row: dict) -> LogicalVolume:
    return LogicalVolume(vg=row["vg_name"], name=row["lv_name"], size_bytes=int(row["lv_size"]), attr=row.get("lv_attr", ""),
                         path=row.get("lv_path", ""), pool=row.get("pool_lv", ""))


def _reports(stdout: str) -> list[dict]:
    document = json.loads(stdout)
    return document.get("report", [])


class Lvm:
    def __init__(self, runner: Runner, vg: str, host: LvmHost | None = None):
        self.runner = runner
        self.vg = vg
        self.host = host or LvmHost()

    def _run(self, argv: list[str], timeout: float | None = None, **options):
        """Every LVM command goes through here, so none can miss the udev mode or the timeout."""
        try:
            return self.runner.run(argv, env=self.host.env, timeout=timeout or self.host.timeout, **options)
        except CommandFailed as e:
            if e.returncode is None and self.host.udev.sync:
                hint = (f"timed out after {self.host.timeout:g} s; LVM may be waiting for udev (lvm_udev = \"off\" "
                        "runs it without; `dmsetup udevcomplete_all` frees a stale cookie)")
                raise CommandFailed(e.argv, None, e.stderr, reason=hint) from None
            raise

    def path(self, name: str) -> str:
        return f"/dev/{self.vg}/{name}"

    def mapper_path(self, name: str, layer: str = "") -> str:
        """The device-mapper node, as Cinder names it: each '-' of the VG and LV doubled. A thick
        snapshot's exception store is the layer '-cow', which has no /dev/VG/ link."""
        return f"/dev/mapper/{self.vg.replace('-', '--')}-{name.replace('-', '--')}{layer}"

    def create(self, name: str, size_gib: int, *, thin_pool: str | None = None) -> None:
        if thin_pool:
            argv = ["lvcreate", "-T", "-V", f"{size_gib}g", "-n", name, f"{self.vg}/{thin_pool}"]
        else:
            argv = ["lvcreate", "-n", name, self.vg, "-L", f"{size_gib}g"]
        self._run(argv)

    def create_thin_pool(self, pool: str) -> None:
        """Cinder sizes the pool at 95 % of the VG's free space, in whole GiB."""
        size_gib = new_pool_gib(self.volume_group())
        if size_gib < 1:
            raise CommandFailed(["lvcreate", "-T", f"{self.vg}/{pool}"], None, "", reason=f"volume group {self.vg} has less than 1 GiB free")
        self._run(["lvcreate", "-T", "-L", f"{size_gib}g", f"{self.vg}/{pool}"])

    def extend(self, name: str, size_gib: int, *, thick_origin: bool = False) -> None:
        """A thick origin (an LV with snapshots) is deactivated around the resize, as Cinder's
        brick does: lvm2 refuses "Snapshot origin volumes can be resized only while inactive"."""
        argv = ["lvextend", "-L", f"{size_gib}g", f"{self.vg}/{name}"]
        if not thick_origin:
            self._run(argv)
            return
        self.deactivate(name)
        try:
            self._run(argv)
        except CommandFailed:
            # Active again either way: left inactive, neither it nor its snapshots could be exported or read.
            with contextlib.suppress(CommandFailed):  # the resize's failure is the one to report
                self.activate(name)
            raise
        self.activate(name)

    def activate(self, name: str, *, permanent: bool = False) -> None:
        """Cinder's activate_lv. -K also activates LVs with the activation-skip flag, which
        vgchange -aay at boot leaves inactive (thin snapshots and their clones by default);
        permanent clears that flag instead (-k n), so a new volume comes up at boot by itself."""
        flags = ["-k", "n"] if permanent else ["-K"]
        self._run(["lvchange", "-a", "y", "--yes", *flags, f"{self.vg}/{name}"])

    def rename(self, name: str, new_name: str) -> None:
        """Cinder's rename_volume (manage_existing): `lvrename VG OLD NEW`."""
        self._run(["lvrename", self.vg, name, new_name])

    def deactivate(self, name: str) -> None:
        self._run(["lvchange", "-a", "n", f"{self.vg}/{name}"])

    def snapshot(self, name: str, origin: str, size_gib: int | None = None) -> None:
        """Cinder's create_snapshot: thick with a COW store as large as the origin (-L), thin without -L."""
        argv = ["lvcreate", "--name", name, "--snapshot", f"{self.vg}/{origin}"]
        if size_gib is not None:
            argv += ["-L", f"{size_gib}g"]
        self._run(argv)

    def merge(self, snapshot: str) -> None:
        """Cinder's revert_to_snapshot (thick): the origin must be closed for the merge to start at
        once; lvconvert then waits for it to finish, and the snapshot LV is gone afterwards."""
        self._run(["lvconvert", "--merge", f"{self.vg}/{snapshot}"], timeout=ZERO_TIMEOUT)

    def remove(self, name: str) -> None:
        """Cinder's delete: one retry after `udevadm settle`, ignoring suspended devices."""
        target = f"{self.vg}/{name}"
        try:
            self._run(["lvremove", "--config", _REMOVE_CONFIG, "-f", target])
        except CommandFailed:
            if self.host.udev.sync:  # without udev there is nothing to settle (and maybe no udevadm)
                self.runner.run(["udevadm", "settle"], ok_codes=(0, 1))
            self._run(["lvremove", "--config", _REMOVE_RETRY_CONFIG, "-f", target])

    def clear(self, name: str, size_bytes: int, on_progress: Callable[[int], None] | None = None) -> None:
        """volume_clear=zero: Cinder's dd of /dev/zero over the whole LV, O_DIRECT on the output."""
        self.zero(self.path(name), size_bytes, on_progress)

    def zero(self, device: str, size_bytes: int, on_progress: Callable[[int], None] | None = None) -> None:
        self._dd(["dd", "if=/dev/zero", f"of={device}", f"count={size_bytes}", "bs=1M", "iflag=count_bytes",
                  "oflag=direct", "status=progress"], size_bytes, on_progress)

    def copy(self, source: str, dest: str, size_bytes: int, on_progress: Callable[[int], None] | None = None) -> None:
        """Cinder's copy_volume between two LVs: O_DIRECT on both sides, the source's bytes only."""
        self._dd(["dd", f"if={self.mapper_path(source)}", f"of={self.mapper_path(dest)}", f"count={size_bytes}", "bs=1M",
                  "iflag=count_bytes,direct", "oflag=direct", "status=progress"], size_bytes, on_progress)

    def _dd(self, argv: list[str], size_bytes: int, on_progress: Callable[[int], None] | None) -> None:
        pending = [""]

        def parse(chunk: str) -> None:
            # dd rewrites one status line with '\r'; report the newest byte count it printed.
            pending[0] += chunk
            *done, pending[0] = re.split(r"[\r\n]", pending[0])
            for line in reversed(done):
                match = re.match(r"\s*(\d+) bytes", line)
                if match and on_progress:
                    on_progress(int(match.group(1)))
                    break

        self.runner.run(argv, on_stderr=parse if on_progress else None, timeout=ZERO_TIMEOUT)
        if on_progress:
            on_progress(size_bytes)

    @staticmethod
    def _lvs_argv(fields: str, target: str) -> list[str]:
        return ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, target]

    def _rows(self, fields: str, target: str) -> list[dict]:
        """`lvs` of a group or one LV, as report rows."""
        return [row for report in _reports(self._run(self._lvs_argv(fields, target)).stdout) for row in report.get("lv", [])]

    def _one(self, fields: str, name: str) -> dict | None:
        """One LV's report row; None when the LV (or its VG) is not there; any other failure raises."""
        try:
            rows = self._rows(fields, f"{self.vg}/{name}")
        except CommandFailed as e:
            if any(marker in e.stderr for marker in _NOT_FOUND):
                return None
            raise
        return rows[0] if rows else None

    def get(self, name: str) -> LogicalVolume | None:
        """None when the LV (or its VG) is not there; any other failure raises."""
        row = self._one(_LV_FIELDS, name)
        return _logical_volume(row) if row else None

    def list(self) -> list[LogicalVolume]:
        return [_logical_volume(row) for row in self._rows(_LV_FIELDS, self.vg)]

    def thin_pool(self, pool: str) -> ThinPool | None:
        """The pool's size, data and metadata use and health, from one `lvs`; None when it is not
        there. An LV of that name that is not a thin pool raises: it is not the pool volctl means."""
        row = self._one(_POOL_FIELDS, pool)
        if row is None:
            return None
        if not row.get("lv_attr", "").startswith("t"):
            raise CommandFailed(self._lvs_argv(_POOL_FIELDS, f"{self.vg}/{pool}"), 0, "",
                                reason=f"{self.vg}/{pool} is not a thin pool (lv_attr {row.get('lv_attr')!r})")
        return _thin_pool(row)

    def usage(self) -> GroupUsage:
        """The group's size and free space, what each LV holds and every thin pool's use, from one
        `lvs` (a group with no LV yet: one `vgs`)."""
        rows = self._rows(_USAGE_FIELDS, self.vg)
        if not rows:
            return GroupUsage(self.volume_group(), {}, ())
        group = VolumeGroup(rows[0]["vg_name"], int(rows[0]["vg_size"]), int(rows[0]["vg_free"]))
        held = {}
        for row in rows:
            size = int(row["lv_size"])
            thin = row.get("lv_attr", "").startswith("V")
            held[row["lv_name"]] = round(size * (_percent(row, "data_percent") or 0.0) / 100) if thin else size
        pools = tuple(_thin_pool(row) for row in rows if row.get("lv_attr", "").startswith("t"))
        return GroupUsage(group, held, pools)

    def volume_group(self) -> VolumeGroup:
        argv = ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free", self.vg]
        rows = [row for report in _reports(self._run(argv).stdout) for row in report.get("vg", [])]
        if not rows:
            raise CommandFailed(argv, 0, f"volume group {self.vg} not in the report")
        row = rows[0]
        return VolumeGroup(row["vg_name"], int(row["vg_size"]), int(row["vg_free"]))
