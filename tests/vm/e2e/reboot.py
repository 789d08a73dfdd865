"""What the two boots of the reboot test share (reboot_boot1.py, reboot_boot2.py).

The volume group lives on vmrun's --disk, which persists to the second boot. The inventory is
volctl's default /var/lib/volctl/volctl.db on the guest's own file system (SQLite on the 9p
share fails with "disk I/O error"), carried across as a file in VOLCTL_REBOOT_STATE, a --rw
directory, together with the saved LIO config: what a storage host keeps on its disks."""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import sqlite3
from pathlib import Path

VG = "volctl-reboot"
DB = Path("/var/lib/volctl/volctl.db")  # volctl's defaults: the boot unit passes no options
CONFIG = Path("/etc/volctl/volctl.toml")
THIN_CONFIG = CONFIG.with_name("thin.toml")
SETTINGS = f'volume_group = "{VG}"\nvolume_clear = "none"\n'
NVME_SETTINGS = 'target_protocol = "nvmet_tcp"\n'  # the NVMe/TCP pair's (nvme_reboot_boot1.py)
OFFSET, LENGTH = 1024 * 1024, 4 * 1024 * 1024  # where initiator.write_and_read_back writes


def state_dir() -> Path:
    path = Path(os.environ["VOLCTL_REBOOT_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_settings(extra: str = "") -> None:
    """extra: more settings, e.g. the NVMe/TCP pair's target_protocol (nvme_reboot_boot1.py)."""
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(SETTINGS + extra)
    THIN_CONFIG.write_text(SETTINGS + extra + 'lvm_type = "thin"\n')


def save_database(source: Path, target: Path) -> None:
    """SQLite's backup API into one self-contained file on the guest's own file system (a
    consistent copy even with volctl's WAL journal), then a plain file copy onto the share:
    SQLite itself cannot open a file on 9p ("disk I/O error")."""
    local = Path("/tmp/volctl-reboot-backup.db")
    local.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(local)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    shutil.copyfile(local, target)


def load_database(source: Path, target: Path) -> None:
    """The inventory back where volctl's default puts it, as a plain copy from the share."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
        stale.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)


def read_sha256(device: str) -> str:
    """The bytes write_and_read_back wrote, read again through the iSCSI or NVMe device (O_DIRECT)."""
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, LENGTH)
        os.preadv(fd, [buf], OFFSET)
        return hashlib.sha256(bytes(buf)).hexdigest()
    finally:
        os.close(fd)
