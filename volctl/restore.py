"""`volctl restore`: bring back, from the inventory, every recorded export the host has lost (a
reboot, `targetctl clear`, the restart Debian's postinst does on an upgrade of python3-rtslib-fb),
and the code `doctor --repair` uses for exports.

The inventory is the source of truth: it knows every export, ACL and CHAP credential. Unlike
Cinder's ensure_export, which restores the whole saved file only when no target exists at all,
each volume is looked at on its own: what is missing is re-created, what is there and right is
left alone, nothing live is ever deleted, and targets volctl does not know are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from volctl import formats
from volctl.errors import ExitCode, VolctlError
from volctl.model import EXPORTABLE, Volume

if TYPE_CHECKING:
    from volctl.service import VolumeService

Progress = Callable[[int, int], None]  # (volumes done, volumes in all)


class NotRestorable(VolctlError):
    """The inventory must be settled first (doctor, reset-state, export): exit 5."""

    exit_code = ExitCode.INVALID_STATE


class RestoreFailed(VolctlError):
    """The host is missing something restore cannot re-create (an LV): exit 6."""

    exit_code = ExitCode.COMMAND_FAILED


@dataclass(frozen=True)
class Failure:
    volume: str
    error: str
    exit_code: int


@dataclass(frozen=True)
class RestoreReport:
    restored: tuple[str, ...]
    present: tuple[str, ...]
    failed: tuple[Failure, ...]
    save_file: str
    saved: bool
    save_error: str | None = None

    @property
    def exit_code(self) -> int:
        """6 when something on the host failed; 5 when the only problems need doctor first."""
        if self.save_error or any(f.exit_code != ExitCode.INVALID_STATE for f in self.failed):
            return ExitCode.COMMAND_FAILED
        return ExitCode.INVALID_STATE if self.failed else ExitCode.OK

    def as_dict(self) -> dict:
        return {
            "restored": list(self.restored),
            "present": list(self.present),
            "failed": [{"volume": f.volume, "error": f.error} for f in self.failed],
            "save_file": self.save_file,
            "saved": self.saved,
            "save_error": self.save_error,
        }


class Restorer:
    def __init__(self, service: VolumeService):
        self.service = service
        self._restored_iqns: set[str] = set()

    def run(self, refs: Iterable[str] = (), progress: Progress | None = None) -> RestoreReport:
        svc = self.service
        inv = svc.inventory()
        refs = list(dict.fromkeys(refs))
        # Named volumes are looked up before anything is done: a typo exits 3 and changes nothing.
        volumes = [inv.get(ref) for ref in refs] if refs else [v for v in inv.list() if v.provider_location]
        lvs, vg_errors = svc.logical_volumes(v.volume_group for v in volumes)
        restored: list[str] = []
        present: list[str] = []
        failed: list[Failure] = []
        if progress:
            progress(0, len(volumes))
        for done, volume in enumerate(volumes):
            try:
                with svc._working_on(volume):
                    volume = inv.get(volume.id)  # as the operation that held the lock left it
                    if volume.volume_group in vg_errors:
                        raise vg_errors[volume.volume_group]
                    changed = self.ensure(volume, lvs)
                (restored if changed else present).append(volume.name)
                if changed:
                    self._restored_iqns.add(svc._iqn(volume))
            except VolctlError as e:
                failed.append(Failure(volume.name, str(e), int(e.exit_code)))
            if progress:
                progress(done + 1, len(volumes))
        saved, save_error = False, None
        stale = self._save_is_stale()
        if restored or stale:
            # One persist for all (lioadm's rewrites the whole LIO config, and its cost grows with
            # every target on the host: BENCHMARKS.md); a saved config that differs from the
            # running one beyond what was restored is written whole.
            try:
                if stale:
                    svc.target.save()
                else:
                    svc.target.persist()
                saved = True
            except VolctlError as e:
                save_error = str(e)
        return RestoreReport(tuple(restored), tuple(present), tuple(failed), str(svc.target.save_file), saved, save_error)

    def _save_is_stale(self) -> bool:
        """Whether the saved config differs from the running one for a volctl target that this run
        did not restore, e.g. after lio_save_file was pointed at the file the host's unit restores:
        the next unit restart would lose it."""
        svc = self.service
        try:
            differ = svc.target.unsaved(svc.settings.target_prefix)
        except (VolctlError, OSError):
            return True
        return bool(set(differ) - self._restored_iqns)

    def ensure(self, volume: Volume, lvs: dict | None = None) -> bool:
        """Make one volume's recorded export live: LV active, target with LUN 0, and the ACL of
        every recorded connection with the volume's CHAP. Returns whether anything changed.
        The caller holds the volume's lock and saves the LIO config afterwards."""
        svc = self.service
        if not volume.provider_location:
            raise NotRestorable(f"volume {volume.name} has no recorded export (volctl export {volume.name} makes one)")
        if volume.status not in EXPORTABLE:
            raise NotRestorable(f"volume {volume.name} is '{volume.status}': its LV may be gone, so its export is not "
                                f"restored (volctl doctor; then delete or reset-state settles it)")
        lvm = svc.lvm(volume.volume_group)
        lv = lvs.get((volume.volume_group, volume.lv_name)) if lvs is not None else lvm.get(volume.lv_name)
        if lv is None:
            raise RestoreFailed(f"volume {volume.name}: LV {volume.volume_group}/{volume.lv_name} is missing; "
                                f"its export cannot be restored")
        changes: list[str] = []
        if not lv.is_active:
            lvm.activate(volume.lv_name)
            changes.append(f"activated LV {volume.volume_group}/{volume.lv_name}")
        iqn = svc._iqn(volume)
        with svc.locks.lio.held():
            live = svc.target.is_live(iqn)
            replaced = live and not svc.target.has_lun(iqn)
            if replaced:
                # What a boot restore leaves when it ran before the LV was active, or from a file
                # its rtslib could not fully read: a target that carries no data. Replacing it
                # takes away nothing an initiator could be using; cinder-rtstool cannot add a LUN.
                svc.target.delete(iqn)
            if replaced or not live:
                volume, created = svc._ensure_export(volume, save=False)
                if created:
                    changes.append(f"target {iqn}" + (" (it was live without LUN 0)" if replaced else ""))
            chap = formats.parse_provider_auth(volume.provider_auth)
            live = {acl.lower() for acl in svc.target.acls(iqn)}
            for connection in volume.connections:
                if connection.initiator.lower() not in live:
                    svc.target.add_initiator(iqn, chap, connection.initiator)
                    changes.append(f"ACL for {connection.initiator}")
        if changes:
            svc._note(volume, "restore", "re-created " + ", ".join(changes))
        return bool(changes)
