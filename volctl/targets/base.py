"""What every LIO iSCSI target helper shares, as Cinder's `volume/targets/iscsi.py` is the
template for `lio.py` and the others: the lock, change sets that persist once, the views of
configfs and of the saved config, and the primitives each helper makes on the host.

A helper subclasses TargetHelper and implements the underscored primitives; the service, doctor
and restore use only the public methods here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Iterator, Sequence

from volctl import formats
from volctl.formats import Chap
from volctl.locks import FileLock
from volctl.targets import saved
from volctl.targets.saved import SavedTarget

CONFIGFS_ISCSI = Path("/sys/kernel/config/target/iscsi")
# Upstream rtslib's default (PyPI's, which cinder-rtstool runs); Debian patches its own to
# /etc/rtslib-fb-target/. The service passes the `lio_save_file` setting (volctl/savefile.py).
SAVE_FILE = Path("/etc/target/saveconfig.json")
_WWN_PREFIXES = ("iqn.", "eui.", "naa.")

if TYPE_CHECKING:
    from volctl.model import Volume


@dataclass(frozen=True)
class IscsiConfig:
    """What Cinder's ISCSITarget reads from its configuration: the target names and the portals."""

    prefix: str = "iqn.2010-10.org.openstack:"
    ips: tuple[str, ...] = ("127.0.0.1",)
    port: int = 3260
    protocol: str = "iscsi"  # or "iser"


class TargetHelper(ABC):
    """LIO iSCSI targets, one per exported volume: target and storage object named by the IQN,
    one TPG with authentication on, LUN 0, the portals, one CHAP NodeACL per initiator.

    Every primitive holds the host-wide LIO lock (rtslib is not safe under concurrent use, and
    the other helper may run in another volctl). What a change set touched is persisted once,
    when its outermost `changes()` ends; a change set that raised leaves its targets pending, so
    the next persist in this process writes them too.
    """

    name: ClassVar[str]

    def __init__(self, lock: FileLock, configfs: Path = CONFIGFS_ISCSI, save_file: Path = SAVE_FILE,
                 iscsi: IscsiConfig = IscsiConfig()):
        self.lock = lock
        self.configfs = configfs
        self.save_file = save_file
        self.iscsi = iscsi
        self._pending: set[str] = set()
        self._depth = 0

    # -- the iSCSI template: names, credentials, portals, connection info ---------------------

    def iqn(self, volume: Volume) -> str:
        """The recorded target, else prefix + LV name (Cinder's iscsi_target_prefix + name)."""
        return volume.iqn or self.iscsi.prefix + volume.lv_name

    def location(self, iqn: str) -> str:
        return formats.provider_location(self.iscsi.ips, self.iscsi.port, iqn)

    @staticmethod
    def credentials(provider_auth: str | None) -> tuple[Chap, bool]:
        """The volume's CHAP, or new ones (True) that the caller stores before any target has
        them: a crash cannot then leave a target whose credentials nobody knows (Cinder reuses
        them on every later export the same way, _get_target_chap_auth)."""
        chap = formats.parse_provider_auth(provider_auth)
        return (chap, False) if chap is not None else (formats.generate_chap(), True)

    def export(self, device: str, iqn: str, chap: Chap) -> None:
        """create() on this host's portals, with the iSER flag when the protocol is iser."""
        self.create(device, iqn, chap, iser=self.iscsi.protocol == "iser", ips=self.iscsi.ips, port=self.iscsi.port)

    def connection_info(self, volume: Volume, connector: dict, access_mode: str, force_multipath: bool = False) -> dict:
        return formats.connection_info(
            volume_id=volume.id, location=volume.provider_location, auth=volume.provider_auth,
            protocol=self.iscsi.protocol, connector=connector, access_mode=access_mode, force_multipath=force_multipath,
        )

    # -- change sets -------------------------------------------------------------------------

    @contextmanager
    def changes(self) -> Iterator[None]:
        with self.lock.held():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.persist()

    def touch(self, iqn: str) -> None:
        """Have the next persist write this target as it is live, though nothing here changed it
        (a target found live but maybe never saved)."""
        self._pending.add(iqn)

    def persist(self) -> None:
        """Write what is pending to the saved config."""
        with self.lock.held():
            self._persist(frozenset(self._pending))
            self._pending.clear()

    def save(self) -> None:
        """Write the whole running config (doctor's repair of a saved config that differs)."""
        with self.lock.held():
            self._save_all()
            self._pending.clear()

    # -- making and removing -----------------------------------------------------------------

    def create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None:
        with self.lock.held():
            self._pending.add(iqn)
            self._create(device, iqn, chap, iser=iser, ips=ips, port=port)

    def delete(self, iqn: str) -> None:
        with self.lock.held():
            self._pending.add(iqn)
            self._delete(iqn)

    def add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        """An ACL with the volume's CHAP and LUN 0 mapped; an ACL already there is left as it is."""
        with self.lock.held():
            self._pending.add(iqn)
            self._add_initiator(iqn, chap, initiator)

    def delete_initiator(self, iqn: str, initiator: str) -> bool:
        """False when the ACL (or its whole target) was already gone."""
        with self.lock.held():
            self._pending.add(iqn)
            return self._delete_initiator(iqn, initiator)

    # -- looking -----------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """Every live target's IQN, as the helper itself sees LIO."""
        with self.lock.held():
            return self._targets()

    def exists(self, iqn: str) -> bool:
        return iqn in self.targets()

    def is_live(self, iqn: str) -> bool:
        """exists() read from configfs when it is mounted: the kernel's own view, in microseconds.
        Without the iscsi fabric in configfs (module not loaded yet) the helper is asked."""
        if self.configfs.is_dir():
            return (self.configfs / iqn).is_dir()
        return self.exists(iqn)

    def live_targets(self) -> list[str]:
        if self.configfs.is_dir():
            return sorted(p.name for p in self.configfs.iterdir() if p.name.startswith(_WWN_PREFIXES))
        return self.targets()

    def has_lun(self, iqn: str) -> bool:
        """LUN 0 on the first TPG. A boot restore that ran before the LV was active leaves the
        target without it (rtslib reports the storage object as skipped)."""
        if not self.configfs.is_dir():
            return True  # no view of configfs: the helper listed it, and that is all we can know
        tpgs = sorted((self.configfs / iqn).glob("tpgt_*"))
        return bool(tpgs) and (tpgs[0] / "lun" / "lun_0").is_dir()

    def acls(self, iqn: str) -> list[str]:
        """Initiators with an ACL on the target's first TPG, from configfs."""
        tpgs = sorted((self.configfs / iqn).glob("tpgt_*"))
        if not tpgs:
            return []
        acl_dir = tpgs[0] / "acls"
        return sorted(p.name for p in acl_dir.iterdir()) if acl_dir.is_dir() else []

    def saved_targets(self) -> list[SavedTarget] | None:
        """The targets in the saved config that survives a reboot; None when there is no file."""
        document = saved.read(self.save_file)
        return None if document is None else saved.targets(document)

    def unsaved(self, prefix: str) -> list[str]:
        """The live or saved targets under `prefix` whose saved entry (the target, its ACLs)
        differs from the live one; a missing file counts as an empty one. An unreadable one
        raises EnvironmentProblem."""
        stored_targets = self.saved_targets() or []
        running = {iqn: set(self.acls(iqn)) for iqn in self.live_targets() if iqn.startswith(prefix)}
        stored = {t.iqn: set(t.initiators) for t in stored_targets if t.iqn.startswith(prefix)}
        return sorted(set(stored) ^ set(running) | {i for i in set(stored) & set(running) if stored[i] != running[i]})

    # -- what each helper implements ---------------------------------------------------------

    @abstractmethod
    def _create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None: ...

    @abstractmethod
    def _delete(self, iqn: str) -> None: ...

    @abstractmethod
    def _add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None: ...

    @abstractmethod
    def _delete_initiator(self, iqn: str, initiator: str) -> bool: ...

    @abstractmethod
    def _targets(self) -> list[str]: ...

    @abstractmethod
    def _persist(self, iqns: frozenset[str]) -> None:
        """Make the saved config hold these targets as they are live (and everything else as before)."""

    @abstractmethod
    def _save_all(self) -> None: ...
