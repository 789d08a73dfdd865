"""A stand-in for the kernel's nvmet configfs (drivers/nvme/target/configfs.c), for tests of
volctl/targets/nvmet.py: a real directory tree under a tmp dir, where mkdir of an object makes
the attribute files and default groups the kernel makes (with its defaults), rmdir takes them
away, and each write and link keeps the kernel's rules (nvme-facts.md §2):

- a port's `addr_*` cannot change while it is enabled (it links a subsystem): EACCES;
- the first link under `ports/<id>/subsystems/` binds the address: EADDRNOTAVAIL while the
  address is in `down` (a test brings it up, as an interface coming up at boot);
- `allowed_hosts` links and `attr_allow_any_host` = 1 exclude each other: EINVAL;
- a namespace's device cannot change while enabled (EBUSY); enabling needs a device_path;
  `revalidate_size` on a disabled namespace is EINVAL; nsid 0 is refused;
- a subsystem or port with children (namespaces, links) cannot be removed: ENOTEMPTY / EBUSY;
- host entries have dhchap_* files only when `auth` (CONFIG_NVME_TARGET_AUTH).

Its state is the directory itself, so real processes share it as they share the kernel. Every
call is recorded (`calls`), and `fail(op, contains, errno)` makes matching calls fail.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from volctl.targets.nvmet_config import ConfigFs

SUBSYSTEM_ATTRS = {"attr_allow_any_host": "0", "attr_version": "1.3", "attr_serial": "1234567890abcdef",
                   "attr_model": "Linux", "attr_cntlid_min": "1", "attr_cntlid_max": "65519", "attr_pi_enable": "0",
                   "attr_qid_max": "128"}
NAMESPACE_ATTRS = {"device_path": "", "device_uuid": "00000000-0000-0000-0000-000000000000",
                   "device_nguid": "00000000-0000-0000-0000-000000000000", "enable": "0", "buffered_io": "0",
                   "ana_grpid": "1", "resv_enable": "0"}
PORT_ATTRS = {"addr_trtype": "", "addr_adrfam": "", "addr_traddr": "", "addr_trsvcid": "", "addr_treq": "not specified",
              "addr_tsas": "none", "param_inline_data_size": "-1", "param_pi_enable": "0"}
HOST_AUTH_ATTRS = {"dhchap_key": "", "dhchap_ctrl_key": "", "dhchap_hash": "hmac(sha256)", "dhchap_dhgroup": "null"}


@dataclass
class _Failure:
    op: str
    contains: str
    errno: int
    times: int


def _error(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class FakeNvmetKernel(ConfigFs):
    def __init__(self, root: Path, auth: bool = True):
        self.root = root
        self.auth = auth
        self.down: set[str] = set()  # addresses not up yet
        self.calls: list[tuple[str, str]] = []
        self.failures: list[_Failure] = []
        for group in ("subsystems", "ports", "hosts"):
            (root / group).mkdir(parents=True, exist_ok=True)
        (root / "discovery_nqn").write_text("nqn.2014-08.org.nvmexpress.discovery\n")

    # -- test controls -----------------------------------------------------------------------

    def fail(self, op: str, contains: str = "", code: int = errno.EIO, times: int = 1) -> None:
        self.failures.append(_Failure(op, contains, code, times))

    def clear(self) -> None:
        """What a reboot leaves: nothing live."""
        for group in ("ports", "subsystems", "hosts"):
            shutil.rmtree(self.root / group)
            (self.root / group).mkdir()

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def _enter(self, op: str, path: Path) -> None:
        where = self.rel(path)
        self.calls.append((op, where))
        for failure in self.failures:
            if failure.op == op and failure.contains in where and failure.times:
                failure.times -= 1
                raise _error(failure.errno, path)

    # -- what the helper calls ---------------------------------------------------------------

    def mkdir(self, path: Path) -> None:
        self._enter("mkdir", path)
        parts = self.rel(path).split("/")
        path.mkdir()  # FileExistsError as the kernel's EEXIST
        if parts[0] == "subsystems" and len(parts) == 2:
            self._attrs(path, SUBSYSTEM_ATTRS)
            for group in ("namespaces", "allowed_hosts"):
                (path / group).mkdir()
        elif parts[0] == "subsystems" and len(parts) == 4 and parts[2] == "namespaces":
            if not parts[3].isdigit() or int(parts[3]) in (0, 0xFFFFFFFF):
                path.rmdir()
                raise _error(errno.EINVAL, path)
            self._attrs(path, NAMESPACE_ATTRS)
            (path / "revalidate_size").write_text("")
            os.chmod(path / "revalidate_size", 0o200)  # write-only
        elif parts[0] == "ports" and len(parts) == 2:
            self._attrs(path, PORT_ATTRS)
            for group in ("subsystems", "referrals", "ana_groups"):
                (path / group).mkdir()
        elif parts[0] == "hosts" and len(parts) == 2:
            if self.auth:
                self._attrs(path, HOST_AUTH_ATTRS)
        else:
            path.rmdir()
            raise _error(errno.EPERM, path)

    @staticmethod
    def _attrs(path: Path, attrs: dict[str, str]) -> None:
        for name, value in attrs.items():
            (path / name).write_text(value + "\n")

    def rmdir(self, path: Path) -> None:
        self._enter("rmdir", path)
        parts = self.rel(path).split("/")
        if parts[0] == "subsystems" and len(parts) == 2:
            if any((path / "namespaces").iterdir()) or any((path / "allowed_hosts").iterdir()):
                raise _error(errno.ENOTEMPTY, path)
            if any((port / "subsystems" / parts[1]).is_symlink() for port in (self.root / "ports").iterdir()):
                raise _error(errno.EBUSY, path)  # configfs: the port's link pins it
        if parts[0] == "ports" and len(parts) == 2 and any((path / "subsystems").iterdir()):
            raise _error(errno.ENOTEMPTY, path)
        if parts[0] == "hosts" and len(parts) == 2:
            for subsystem in (self.root / "subsystems").iterdir():
                if (subsystem / "allowed_hosts" / parts[1]).is_symlink():
                    raise _error(errno.EBUSY, path)
        if parts[0] == "subsystems" and len(parts) == 4 and (path / "enable").read_text().strip() == "1":
            pass  # the kernel disables a namespace as it goes
        shutil.rmtree(path)

    def write(self, path: Path, value: str) -> None:
        self._enter("write", path)
        if not path.exists():
            raise _error(errno.ENOENT, path)
        parts = self.rel(path).split("/")
        name = parts[-1]
        owner = path.parent
        if parts[0] == "ports" and name.startswith("addr_") and any((owner / "subsystems").iterdir()):
            raise _error(errno.EACCES, path)  # "Disable port before changing attribute"
        if name == "attr_allow_any_host" and value.strip() == "1" and any((owner / "allowed_hosts").iterdir()):
            raise _error(errno.EINVAL, path)
        if parts[0] == "subsystems" and len(parts) == 5 and parts[2] == "namespaces":
            enabled = (owner / "enable").read_text().strip() == "1"
            if name.startswith("device_") and enabled:
                raise _error(errno.EBUSY, path)
            if name == "enable" and value.strip() == "1" and not (owner / "device_path").read_text().strip():
                raise _error(errno.EINVAL, path)
            if name == "revalidate_size":
                if not enabled:
                    raise _error(errno.EINVAL, path)  # "enable ns before revalidate."
                self.calls.append(("revalidate", self.rel(owner)))
                return
        if parts[0] == "hosts" and name in ("dhchap_key", "dhchap_ctrl_key") and value.strip() \
                and not value.startswith("DHHC-1:"):
            raise _error(errno.EINVAL, path)
        path.write_text(value.rstrip("\n") + "\n")

    def symlink(self, link: Path, to: Path) -> None:
        self._enter("symlink", link)
        parts = self.rel(link).split("/")
        if parts[0] == "ports" and parts[2] == "subsystems":
            port = link.parent.parent
            if not any((port / "subsystems").iterdir()):  # the first link enables the port
                if (port / "addr_traddr").read_text().strip() in self.down:
                    raise _error(errno.EADDRNOTAVAIL, link)
        if parts[0] == "subsystems" and parts[2] == "allowed_hosts":
            if (self.root / "subsystems" / parts[1] / "attr_allow_any_host").read_text().strip() == "1":
                raise _error(errno.EINVAL, link)  # "can't add hosts when allow_any_host is set!"
        link.symlink_to(to)

    def unlink(self, link: Path) -> None:
        self._enter("unlink", link)
        link.unlink()

    # -- views for tests ---------------------------------------------------------------------

    def subsystems(self) -> list[str]:
        return sorted(p.name for p in (self.root / "subsystems").iterdir())

    def ports(self) -> list[str]:
        return sorted(p.name for p in (self.root / "ports").iterdir())

    def hosts(self) -> list[str]:
        return sorted(p.name for p in (self.root / "hosts").iterdir())

    def attr(self, *parts: str) -> str:
        return self.root.joinpath(*parts).read_text().strip()
