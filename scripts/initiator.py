"""The initiator side of the demo and of the VM tier: open-iscsi's iscsiadm, driven the way
os-brick drives it, from the connection info `volctl connect --json` prints.

Not part of volctl (which is the target side); stdlib only, so it runs in any Python."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INITIATOR_FILE = Path("/etc/iscsi/initiatorname.iscsi")
AUTH_FAILURE = 24  # iscsiadm's ISCSI_ERR_LOGIN_AUTH_FAILED


class LoginFailed(Exception):
    def __init__(self, returncode: int, output: str):
        super().__init__(f"iscsiadm login failed with exit {returncode}: {output.strip()}")
        self.returncode = returncode


def iscsiadm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["iscsiadm", *args], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
                          timeout=300)
    if check and done.returncode != 0:
        raise RuntimeError(f"iscsiadm {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def initiator_name() -> str:
    for line in INITIATOR_FILE.read_text().splitlines():
        if line.startswith("InitiatorName="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"no InitiatorName in {INITIATOR_FILE}")


def start_iscsid(name: str | None = None) -> None:
    """iscsid reads the initiator name once, at start: write it first (guest only)."""
    if name is not None:
        INITIATOR_FILE.parent.mkdir(parents=True, exist_ok=True)
        INITIATOR_FILE.write_text(f"InitiatorName={name}\n")
    if subprocess.run(["pgrep", "-x", "iscsid"], capture_output=True).returncode != 0:
        subprocess.run(["iscsid"], check=True)
        time.sleep(0.3)
    subprocess.run(["modprobe", "iscsi_tcp"], check=False)


@dataclass(frozen=True)
class Session:
    iqn: str
    portal: str
    lun: int
    iface: str = "default"

    @property
    def by_path(self) -> Path:
        return Path(f"/dev/disk/by-path/ip-{self.portal}-iscsi-{self.iqn}-lun-{self.lun}")

    def device(self, wait: float = 20.0) -> str:
        """udev's by-path link where udev runs; else the disk the kernel attached (sysfs), whose
        node devtmpfs makes by itself."""
        deadline = time.monotonic() + wait
        seen_at = None
        while time.monotonic() < deadline:
            if self.by_path.exists():
                return os.path.realpath(self.by_path)
            found = self._disk_from_sysfs()
            if found:
                seen_at = seen_at or time.monotonic()
                if time.monotonic() - seen_at > 2.0:  # udev would have made the link by now
                    return found
            time.sleep(0.1)
        raise RuntimeError(f"{self.by_path} did not appear within {wait:g} s")

    def _disk_from_sysfs(self) -> str | None:
        for session in Path("/sys/class/iscsi_session").glob("session*"):
            try:
                if (session / "targetname").read_text().strip() != self.iqn:
                    continue
                if (session / "ifacename").read_text().strip() != self.iface:
                    continue
            except OSError:
                continue
            for disk in (session / "device").glob(f"target*/*:*:*:{self.lun}/block/*"):
                node = Path("/dev") / disk.name
                if node.exists():
                    return str(node)
        return None

    def rescan(self) -> None:
        iscsiadm("-m", "node", "-T", self.iqn, "-p", self.portal, "-I", self.iface, "-R")

    def logout(self) -> None:
        iscsiadm("-m", "node", "-T", self.iqn, "-p", self.portal, "-I", self.iface, "--logout", check=False)
        iscsiadm("-m", "node", "-T", self.iqn, "-p", self.portal, "-I", self.iface, "-o", "delete", check=False)


def add_iface(name: str, initiator: str) -> str:
    """A second initiator identity on this host, for logins as an initiator with no ACL."""
    iscsiadm("-m", "iface", "-I", name, "--op", "new", check=False)
    iscsiadm("-m", "iface", "-I", name, "--op", "update", "-n", "iface.initiatorname", "-v", initiator)
    return name


def login(data: dict, *, password: str | None = None, iface: str = "default") -> Session:
    """Discovery, CHAP on the node record, login: what os-brick's connect_volume does by hand."""
    iqn, portal, lun = data["target_iqn"], data["target_portal"], int(data.get("target_lun", 0))
    iscsiadm("-m", "discovery", "-t", "sendtargets", "-p", portal, "-I", iface)
    node = ["-m", "node", "-T", iqn, "-p", portal, "-I", iface]
    for key, value in (("node.session.auth.authmethod", data.get("auth_method", "None")),
                       ("node.session.auth.username", data.get("auth_username", "")),
                       ("node.session.auth.password", password if password is not None else data.get("auth_password", ""))):
        iscsiadm(*node, "--op", "update", "-n", key, "-v", value)
    done = iscsiadm(*node, "--login", check=False)
    if done.returncode != 0:
        iscsiadm(*node, "-o", "delete", check=False)
        raise LoginFailed(done.returncode, done.stderr or done.stdout)
    return Session(iqn, portal, lun, iface)


def block_size(device: str) -> int:
    return int(subprocess.run(["blockdev", "--getsize64", device], capture_output=True, text=True, check=True).stdout)


def write_and_read_back(device: str, lv_path: str, size: int = 4 * 1024 * 1024, offset: int = 1024 * 1024) -> str:
    """Write random bytes through the iSCSI device (O_DIRECT), read them back through it and
    straight from the LV; return their sha256 if all three agree."""
    import hashlib

    pattern = os.urandom(size)
    fd = os.open(device, os.O_RDWR | os.O_DIRECT)
    try:
        import mmap

        buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT wants
        buf.write(pattern)
        os.pwritev(fd, [buf], offset)
        os.fsync(fd)
        back = mmap.mmap(-1, size)
        os.preadv(fd, [back], offset)
        through_iscsi = bytes(back)
    finally:
        os.close(fd)
    subprocess.run(["blockdev", "--flushbufs", lv_path], check=False)
    with open(lv_path, "rb", buffering=0) as lv:
        lv.seek(offset)
        on_lv = lv.read(size)
    if through_iscsi != pattern:
        raise AssertionError("bytes read back over iSCSI differ from the bytes written")
    if on_lv != pattern:
        raise AssertionError("bytes on the LV differ from the bytes written over iSCSI")
    return hashlib.sha256(pattern).hexdigest()
