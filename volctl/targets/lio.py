"""What both LIO helpers share, as the LIO half of Cinder's `volume/targets/lio.py`: the kernel's
view of the targets in configfs, the saved config that the host restores at boot, and the host's
LIO restore unit. The helpers below it (lioadm.py: cinder-rtstool; rtslib.py: in-process) make
the same objects under the same host-wide lock and save to the same file, so an export made by
one is driven by the other as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from volctl.errors import EnvironmentProblem, TargetFailed
from volctl.iscsi import WWN_PREFIXES, IscsiConfig
from volctl.locks import FileLock
from volctl.targets import saved
from volctl.targets.driver import Defect, PersistenceProblem
from volctl.targets.iscsi import IscsiTarget
from volctl.targets.saved import SavedTarget

if TYPE_CHECKING:
    from volctl.model import Volume

CONFIGFS_ISCSI = Path("/sys/kernel/config/target/iscsi")
# Upstream rtslib's default (PyPI's, which cinder-rtstool runs); Debian patches its own to
# /etc/rtslib-fb-target/. The registry passes the `lio_save_file` setting (volctl/savefile.py).
SAVE_FILE = Path("/etc/target/saveconfig.json")


class LioTarget(IscsiTarget):
    """LIO iSCSI targets, one per exported volume: target and storage object named by the IQN,
    one TPG with authentication on, LUN 0, the portals, one CHAP NodeACL per initiator.

    Every primitive holds the host-wide LIO lock: rtslib is not safe under concurrent use, and
    the other helper may run in another volctl (Cinder serializes cinder-rtstool the same way).
    """

    family = "lio"
    what = "LIO config"

    def __init__(self, lock: FileLock, configfs: Path = CONFIGFS_ISCSI, save_file: Path = SAVE_FILE,
                 iscsi: IscsiConfig = IscsiConfig(), host_root: Path = Path("/")):
        super().__init__(lock, iscsi)
        self.configfs = configfs
        self.save_file = save_file
        self.host_root = host_root  # where the host's LIO restore unit is looked for

    @property
    def persisted_to(self) -> str:
        return str(self.save_file)

    # -- configfs: the kernel's own view, in microseconds ------------------------------------

    def is_live(self, target: str) -> bool:
        """Without the iscsi fabric in configfs (module not loaded yet) the helper is asked."""
        if self.configfs.is_dir():
            return (self.configfs / target).is_dir()
        return self.exists(target)

    def live_targets(self) -> list[str]:
        if self.configfs.is_dir():
            return sorted(p.name for p in self.configfs.iterdir() if p.name.startswith(WWN_PREFIXES))
        return self.targets()

    def is_whole(self, target: str) -> bool:
        """LUN 0 on the first TPG. A boot restore that ran before the LV was active leaves the
        target without it (rtslib reports the storage object as skipped)."""
        if not self.configfs.is_dir():
            return True  # no view of configfs: the helper listed it, and that is all we can know
        tpgs = sorted((self.configfs / target).glob("tpgt_*"))
        return bool(tpgs) and (tpgs[0] / "lun" / "lun_0").is_dir()

    def storage_object_dir(self, target: str) -> Path | None:
        """The configfs directory of the storage object behind LUN 0 (core/iblock_N/NAME): the
        LUN's link to it, one readlink, however many backstores the host has."""
        lun = self.configfs / target / "tpgt_1" / "lun" / "lun_0"
        try:
            links = [entry for entry in lun.iterdir() if entry.is_symlink()]
        except OSError:
            return None
        return links[0].resolve() if links else None

    def _unmap_off(self, volume: Volume, target: str) -> bool:
        """The export should advertise UNMAP and its LUN does not (made before volctl set it, or
        restored by the host's own unit from a config saved without it)."""
        if not self.advertises_discard(volume):
            return False
        so = self.storage_object_dir(target)
        if so is None:
            return False  # no LUN: lun_missing says so
        try:
            return (so / "attrib" / "emulate_tpu").read_text().strip() != "1" \
                or (so / "attrib" / "emulate_tpws").read_text().strip() != "1"
        except OSError:
            return True

    def defects(self, volume: Volume) -> list[Defect]:
        found = super().defects(volume)
        target = self.target_name(volume)
        if not found and self._unmap_off(volume, target):
            found.append(Defect("unmap_off", target, f"the LUN of {volume.name} does not advertise UNMAP "
                                "(emulate_tpu, emulate_tpws): hosts' discards never reach its thin pool",
                                "advertise UNMAP (hosts see it after a rescan)"))
        return found

    def mend(self, volume: Volume) -> list[str] | None:
        """UNMAP advertised on a live LUN (no host loses anything); a target without its LUN is
        left to be replaced (None)."""
        target = self.target_name(volume)
        if not self.is_whole(target):
            return None
        if not self._unmap_off(volume, target):
            return []
        with self.changing(target):
            self._advertise_unmap(target)
        return [f"UNMAP advertised on {target}"]

    def _advertise_unmap(self, iqn: str) -> None:
        """UNMAP and WRITE SAME with unmap on LUN 0 (emulate_tpu, emulate_tpws: 0 by default in
        LIO, and cinder-rtstool sets neither), written in configfs, where rtslib's save reads them."""
        so = self.storage_object_dir(iqn)
        if so is None:
            raise TargetFailed(f"LIO: target {iqn} has no LUN 0 storage object to advertise UNMAP on")
        for name in ("emulate_tpu", "emulate_tpws"):
            try:
                with open(so / "attrib" / name, "w") as f:
                    f.write("1")
            except OSError as e:  # ENOSYS: the device takes no discard (checked before: a changed device)
                raise TargetFailed(f"LIO: advertise UNMAP on {iqn} ({name}): {e.strerror}") from None

    def hosts(self, target: str) -> list[str]:
        """Initiators with an ACL on the target's first TPG."""
        tpgs = sorted((self.configfs / target).glob("tpgt_*"))
        if not tpgs:
            return []
        acl_dir = tpgs[0] / "acls"
        return sorted(p.name for p in acl_dir.iterdir()) if acl_dir.is_dir() else []

    # -- the saved config that survives a reboot ---------------------------------------------

    def saved_targets(self) -> list[SavedTarget] | None:
        """The targets in the saved config; None when there is no file."""
        document = saved.read(self.save_file)
        return None if document is None else saved.targets(document)

    def unsaved(self, ours: Callable[[str], bool] | None = None) -> list[str]:
        """A missing file counts as an empty one."""
        prefix = self.iscsi.prefix
        wanted = lambda iqn: iqn.startswith(prefix) and (ours is None or ours(iqn))  # noqa: E731
        stored_targets = self.saved_targets() or []
        running = {iqn: set(self.hosts(iqn)) for iqn in self.live_targets() if wanted(iqn)}
        stored = {t.iqn: set(t.initiators) for t in stored_targets if wanted(t.iqn)}
        return sorted(set(stored) ^ set(running) | {i for i in set(stored) & set(running) if stored[i] != running[i]})

    def persistence_problems(self, ours: Callable[[str], bool] | None = None) -> list[PersistenceProblem]:
        return [*self._saved_config_problems(ours), *self._restore_unit_problems()]

    def _saved_config_problems(self, ours: Callable[[str], bool] | None) -> list[PersistenceProblem]:
        path = str(self.save_file)
        try:
            differ = self.unsaved(ours)
        except EnvironmentProblem as e:
            return [PersistenceProblem("saved_config", path, str(e))]
        if not differ:
            return []
        if not self.save_file.exists():
            return [PersistenceProblem("saved_config", path,
                                       "no saved LIO config: the targets would not come back after a reboot")]
        return [PersistenceProblem("saved_config", path,
                                   f"the saved LIO config differs from the running one for: {', '.join(differ)}")]

    def _restore_unit_problems(self) -> list[PersistenceProblem]:
        """The host's LIO unit clears every live target and restores its own file, at boot and on
        each upgrade of Debian's python3-rtslib-fb: a save anywhere else is lost then."""
        from volctl.savefile import restore_unit

        unit = restore_unit(self.host_root)
        ours = str(self.save_file)
        if unit is None or unit.save_file == ours:
            return []
        return [PersistenceProblem(
            "restore_unit", str(unit.path),
            f"{unit.name} clears every live target and restores {unit.save_file} (at boot and on package "
            f"upgrades), but volctl saves to {ours}: set lio_save_file = \"{unit.save_file}\" or leave it unset")]
