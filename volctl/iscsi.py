"""LIO iSCSI targets through Cinder's own `cinder-rtstool`, as Cinder's LioAdm drives it.

Every call holds the host-wide LIO lock. Targets are matched by exact line, not by substring
(Cinder's `if iqn in line` confuses volume-1 with volume-10).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from volctl.errors import EnvironmentProblem
from volctl.formats import Chap
from volctl.locks import FileLock
from volctl.runner import Runner

RTSTOOL = "cinder-rtstool"
CONFIGFS_ISCSI = Path("/sys/kernel/config/target/iscsi")
# Upstream rtslib's default (PyPI's, which cinder-rtstool runs); Debian patches its own to
# /etc/rtslib-fb-target/. The service passes the `lio_save_file` setting (volctl/savefile.py).
SAVE_FILE = Path("/etc/target/saveconfig.json")


@dataclass(frozen=True)
class SavedTarget:
    iqn: str
    initiators: tuple[str, ...]


class LioTarget:
    def __init__(self, runner: Runner, lock: FileLock, configfs: Path = CONFIGFS_ISCSI, save_file: Path = SAVE_FILE):
        self.runner = runner
        self.lock = lock
        self.configfs = configfs
        self.save_file = save_file

    def _rtstool(self, *args: str, secrets: Sequence[str] = ()) -> str:
        with self.lock.held():
            return self.runner.run([RTSTOOL, *args], secrets=secrets).stdout

    def create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None:
        self._rtstool(
            "create", device, iqn, chap.username, chap.password, str(iser), f"-p{port}", "-a" + ",".join(ips),
            secrets=[chap.password],
        )

    def targets(self) -> list[str]:
        return [line.strip() for line in self._rtstool("get-targets").splitlines() if line.strip()]

    def exists(self, iqn: str) -> bool:
        return iqn in self.targets()

    def is_live(self, iqn: str) -> bool:
        """exists() without starting cinder-rtstool when configfs is mounted: the kernel's own view,
        read in microseconds against a Python process per call (5 s under the VM tier's QEMU).
        Without the iscsi fabric in configfs (module not loaded yet) it asks get-targets."""
        if self.configfs.is_dir():
            return (self.configfs / iqn).is_dir()
        return self.exists(iqn)

    def live_targets(self) -> list[str]:
        """targets() from configfs when it is mounted (no Python process to start), else get-targets."""
        if self.configfs.is_dir():
            return sorted(p.name for p in self.configfs.iterdir() if p.name.startswith(("iqn.", "eui.", "naa.")))
        return self.targets()

    def delete(self, iqn: str) -> None:
        self._rtstool("delete", iqn)

    def add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        self._rtstool("add-initiator", iqn, chap.username, chap.password, initiator, secrets=[chap.password])

    def delete_initiator(self, iqn: str, initiator: str) -> bool:
        """False when the ACL was already gone (cinder-rtstool says so and exits 0)."""
        out = self._rtstool("delete-initiator", iqn, initiator)
        return "ACL not found" not in out

    def save(self) -> None:
        """Always to an explicit path: without one, rtslib picks its own default, which differs
        between PyPI's and Debian's rtslib. Given a path, cinder-rtstool makes no directory."""
        try:
            self.save_file.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as e:
            raise EnvironmentProblem(f"cannot create {self.save_file.parent} for the saved LIO config: {e.strerror}") from None
        self._rtstool("save", str(self.save_file))
        self._restorable_by_older_rtslib()

    def _restorable_by_older_rtslib(self) -> None:
        """PyPI's rtslib (2.2.x, cinder-rtstool's) writes "exclusive": true on block storage
        objects; Debian 12's 2.1.75, which rtslib-fb-targetctl.service restores with, rejects the
        key ("unexpected keyword argument 'exclusive', skipped") and brings every target back
        without its LUN (measured in the VM tier). true is the default of every rtslib that knows
        the key, so dropping it loses nothing. Called under the LIO lock, like the save."""
        try:
            document = json.loads(self.save_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return  # doctor reports an unreadable saved config
        objects = [so for so in document.get("storage_objects", []) if so.get("exclusive") is True]
        if not objects:
            return
        for so in objects:
            del so["exclusive"]
        tmp = self.save_file.with_name(f".{self.save_file.name}.volctl")
        try:
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds CHAP passwords
            with os.fdopen(fd, "w") as f:
                json.dump(document, f, sort_keys=True, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.save_file)
        except OSError as e:
            raise EnvironmentProblem(f"cannot rewrite the saved LIO config {self.save_file}: {e.strerror}") from None

    def has_lun(self, iqn: str) -> bool:
        """LUN 0 on the first TPG, read from configfs. A boot restore that ran before the LV was
        active leaves the target without it (rtslib reports the storage object as skipped)."""
        if not self.configfs.is_dir():
            return True  # no view of configfs: get-targets listed it, and that is all we can know
        tpgs = sorted((self.configfs / iqn).glob("tpgt_*"))
        return bool(tpgs) and (tpgs[0] / "lun" / "lun_0").is_dir()

    def acls(self, iqn: str) -> list[str]:
        """Initiators with an ACL on the target's first TPG, read from configfs (rtstool cannot list them)."""
        tpgs = sorted((self.configfs / iqn).glob("tpgt_*"))
        if not tpgs:
            return []
        acl_dir = tpgs[0] / "acls"
        return sorted(p.name for p in acl_dir.iterdir()) if acl_dir.is_dir() else []

    def saved_targets(self) -> list[SavedTarget] | None:
        """The targets in the saved LIO config that survives a reboot; None when there is no file."""
        try:
            document = json.loads(self.save_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise EnvironmentProblem(f"saved LIO config {self.save_file} is unreadable: {e}") from None
        saved = []
        for target in document.get("targets", []):
            initiators = tuple(
                acl.get("node_wwn", "") for tpg in target.get("tpgs", [])[:1] for acl in tpg.get("node_acls", [])
            )
            saved.append(SavedTarget(target.get("wwn", ""), initiators))
        return saved
