"""`volctl restore`: bring back, from the inventory, every recorded export the host has lost (a
reboot, `targetctl clear`, the restart Debian's postinst does on an upgrade of python3-rtslib-fb).

The inventory is the source of truth: it knows every export, allowed host and credential. Unlike
Cinder's ensure_export, which restores the whole saved file only when no target exists at all,
each volume is looked at on its own (VolumeService.restore_export): what is missing is
re-created, what is there and right is left alone, nothing live is ever deleted, and targets
volctl does not know are never touched. Then each target helper persists once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from volctl.errors import ExitCode, VolctlError

if TYPE_CHECKING:
    from volctl.service import VolumeService
    from volctl.targets.driver import TargetDriver

Progress = Callable[[int, int], None]  # (volumes done, volumes in all)
# At boot an export's portal address may come up after volctl restore starts (an RDMA target dead
# after every reboot for exactly that, nvme-facts.md §8, waits up to 45 s per address): so long.
ADDRESS_WAIT = 45.0


@dataclass(frozen=True)
class Failure:
    volume: str
    error: str
    exit_code: int


@dataclass(frozen=True)
class Save:
    """One helper's persist at the end of a restore."""

    what: str  # what the helper persists, for a person
    path: str
    saved: bool
    error: str | None = None


@dataclass(frozen=True)
class RestoreReport:
    restored: tuple[str, ...]
    present: tuple[str, ...]
    failed: tuple[Failure, ...]
    saves: tuple[Save, ...]

    @property
    def save_file(self) -> str:
        return ", ".join(s.path for s in self.saves)

    @property
    def saved(self) -> bool:
        return any(s.saved for s in self.saves)

    @property
    def save_error(self) -> str | None:
        return "; ".join(s.error for s in self.saves if s.error) or None

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
        restored_targets: dict[str, set[str]] = {}  # helper family -> targets this run re-created
        for driver in svc.targets.all():
            driver.address_wait = ADDRESS_WAIT
        if progress:
            progress(0, len(volumes))
        for done, volume in enumerate(volumes):
            try:
                if volume.volume_group in vg_errors:
                    raise vg_errors[volume.volume_group]
                volume, changed = svc.restore_export(volume, lvs)
                (restored if changed else present).append(volume.name)
                if changed:
                    driver = svc.targets.owner(volume)
                    restored_targets.setdefault(driver.family, set()).add(driver.target_name(volume))
            except VolctlError as e:
                failed.append(Failure(volume.name, str(e), int(e.exit_code)))
            if progress:
                progress(done + 1, len(volumes))
        # A helper that owns none of these exports has nothing of volctl's to persist: asking it
        # what is unsaved may cost a process that lists every target (seconds, in BENCHMARKS.md).
        owning = {svc.targets.owner(v).family for v in volumes if v.provider_location}
        ever_known = inv.ever_known("volume") if owning else {}
        saves = tuple(self._persist(driver, restored_targets.get(driver.family, set()), driver.ours_by(ever_known))
                      if driver.family in owning
                      else Save(driver.what, driver.persisted_to, False) for driver in svc.targets.all())
        return RestoreReport(tuple(restored), tuple(present), tuple(failed), saves)

    @staticmethod
    def _persist(driver: TargetDriver, restored: set[str], ours: Callable[[str], bool]) -> Save:
        """One persist for all (a helper may rewrite its whole configuration on each, a cost that
        grows with every target on the host: BENCHMARKS.md); a persisted configuration that
        differs from the running one for a volctl target this run did not restore (e.g. after the
        save file was pointed at the one the host's restore unit reads: the next restart of that
        unit would lose it) is written whole."""
        # Only the targets this run did not restore are compared: the persist rewrites the others
        # anyway, and each comparison dumps a target from the kernel (slow at 1,000 under TCG).
        unrestored = lambda target: target not in restored and ours(target)  # noqa: E731
        try:
            stale = bool(driver.unsaved(unrestored))  # a foreign target (Cinder's) is not ours to save
        except (VolctlError, OSError):
            stale = True
        if not restored and not stale:
            return Save(driver.what, driver.persisted_to, False)
        try:
            if stale:
                driver.save()
            else:
                driver.persist()
        except VolctlError as e:
            return Save(driver.what, driver.persisted_to, False, str(e))
        return Save(driver.what, driver.persisted_to, True)
