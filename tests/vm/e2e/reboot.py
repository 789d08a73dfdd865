"""What the two boots of the reboot test share (reboot_boot1.py, reboot_boot2.py).

The volume group lives on vmrun's --disk, which persists to the second boot. The inventory is
volctl's default /var/lib/volctl/volctl.db on the guest's own file system (SQLite on the 9p
share fails with "disk I/O error"), carried across as a file in VOLCTL_REBOOT_STATE, a --rw
directory, together with the saved LIO config: what a storage host keeps on its disks."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shlex
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

VG = "volctl-reboot"
DB = Path("/var/lib/volctl/volctl.db")  # volctl's defaults: the boot unit passes no options
CONFIG = Path("/etc/volctl/volctl.toml")
THIN_CONFIG = CONFIG.with_name("thin.toml")
SETTINGS = f'volume_group = "{VG}"\nvolume_clear = "none"\n'
NVME_SETTINGS = 'target_protocol = "nvmet_tcp"\n'  # the NVMe/TCP pair's (nvme_reboot_boot1.py)
OFFSET, LENGTH = 1024 * 1024, 4 * 1024 * 1024  # where initiator.write_and_read_back writes
UNIT = Path("/etc/systemd/system/volctl-restore.service")
# systemd's PATH for services; the unit gets nothing else from the environment
UNIT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore"}


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


def carry_over(saved_config: str, save_file: Path | None = None, settings: str = "") -> dict:
    """Boot 2's start: boot 1's facts; its inventory and saved target config back where the host
    keeps them (save_file, or where boot 1's facts say), everything else new; the settings."""
    state = state_dir()
    facts = json.loads((state / "facts.json").read_text())
    load_database(state / "volctl.db", DB)
    save_file = Path(save_file or facts["save_file"])
    save_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(state / saved_config, save_file)
    write_settings(settings)
    return facts


def unit_volctl(*args: str, expect: int, timeout: float) -> subprocess.CompletedProcess:
    """volctl as the boot unit runs it: from systemd's PATH, with systemd's environment."""
    done = subprocess.run(["/usr/local/bin/volctl", *args], capture_output=True, text=True, env=UNIT_ENV,
                          timeout=timeout)
    assert done.returncode == expect, f"volctl {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}"
    return done


def install_unit(repo: Path, tools: Path) -> None:
    """As README says: the venv's volctl and cinder-rtstool on systemd's PATH, then install + enable
    (offline: the guest's PID 1 is not systemd)."""
    for tool in (repo / ".venv" / "bin" / "volctl", tools / "cinder-rtstool"):
        Path("/usr/local/bin", tool.name).symlink_to(tool)
    subprocess.run(["install", "-m", "0644", str(repo / "systemd" / UNIT.name), str(UNIT.parent) + "/"], check=True,
                   capture_output=True)
    subprocess.run(["systemctl", "enable", UNIT.name], check=True, capture_output=True)
    assert Path("/etc/systemd/system/multi-user.target.wants", UNIT.name).resolve() == UNIT


def run_unit_restore(timeout: float) -> subprocess.CompletedProcess:
    """The unit's ExecStart, as systemd would run it at boot; its time and output kept in the state."""
    [exec_start] = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ExecStart=")]
    started = time.monotonic()
    done = subprocess.run(shlex.split(exec_start), capture_output=True, text=True, env=UNIT_ENV, timeout=timeout)
    seconds = time.monotonic() - started
    (state_dir() / "boot2-restore.json").write_text(json.dumps({"command": exec_start, "seconds": round(seconds, 2),
                                                                "exit": done.returncode, "stdout": done.stdout}))
    assert done.returncode == 0, done.stderr
    return done
