"""What every domain of the service shares: the plumbing, the claim (a compare-and-swap and its
history row in one transaction), the volume lock, and the undo of a half-done step."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from volctl.config import Settings
from volctl.errors import InvalidState, VolctlError
from volctl.inventory import Inventory, now
from volctl.locks import Locks
from volctl import validate
from volctl.model import (DONE, FAILED, GONE, GUARD_REASONS, SNAPSHOT_TRANSITIONS, TRANSITIONS, AttachStatus, Snapshot,
                          Volume, outcome_status)
from volctl.record import Record
from volctl.runner import CommandResult, Runner

if TYPE_CHECKING:  # imported when first used: read commands need neither (start-up, BENCHMARKS.md)
    from volctl.lvm import Lvm
    from volctl.targets import Targets

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


def new_id() -> str:
    """A new volume, snapshot or attachment id (Cinder's uuid4)."""
    import uuid  # deferred: with `platform` it costs every command's start-up, and only creating needs it

    return str(uuid.uuid4())


class Outcome(Record):
    """What a command did: the volume as it is now, whether anything changed, and notes for a person."""

    volume: Volume | None
    changed: bool
    notes: tuple[str, ...]
    data: dict
    snapshot: Snapshot | None

    def __init__(self, volume: Volume | None, changed: bool = True, notes: tuple[str, ...] = (),
                 data: dict | None = None, snapshot: Snapshot | None = None):
        data = {} if data is None else data
        self._init(locals())


class ServiceCore:
    """The plumbing every domain of the service shares: the inventory, the locks, the runner, the
    LVM and target helpers, and the claim (compare-and-swap plus its history row)."""

    def __init__(self, db_path: str | Path, settings: Settings, runner: Runner | None = None, locks: Locks | None = None,
                 configfs: Path | None = None, save_file: Path | None = None, host_root: Path | None = None,
                 nvmet_root: Path | None = None, nvmet_save_file: Path | None = None):
        self.db_path = Path(db_path)
        self.settings = settings
        self.runner = runner or Runner()
        self.runner.on_command = self._on_command
        self.locks = locks or Locks(Path(f"{self.db_path}.locks"))
        # the host's paths the target helpers use, when not the host's own (tests, fake hosts)
        self._host_paths = {"configfs": configfs, "save_file": save_file, "host_root": host_root,
                            "nvmet_root": nvmet_root, "nvmet_save_file": nvmet_save_file}
        self._inventory: Inventory | None = None
        self._writable = False
        self._subject: Volume | None = None

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def host_root(self) -> Path:
        """The root the host's own files are read under: / but for a fake host."""
        return self._host_paths["host_root"] or Path("/")

    def inventory(self, write: bool = True) -> Inventory:
        if self._inventory is None or (write and not self._writable):
            if self._inventory is not None:
                self._inventory.close()
            self._inventory = Inventory.open(self.db_path, create=write)
            self._writable = write
            if write:
                self.locks.ensure_directory()
        return self._inventory

    @property
    def warnings(self) -> list[str]:
        return self._inventory.warnings if self._inventory else []

    @cached_property
    def targets(self) -> Targets:
        """The target helpers (volctl/targets/): for new exports, for a volume's export, all."""
        from volctl.targets import Targets

        return Targets.from_settings(self.settings, self.runner, self.locks, **self._host_paths)

    def lvm(self, vg: str | None = None) -> Lvm:
        from volctl.lvm import Lvm, host_for

        host = host_for(self.settings.lvm_udev, self.settings.lvm_conf_file)
        return Lvm(self.runner, vg or self.settings.volume_group, host)

    def logical_volumes(self, vgs: Iterable[str]) -> tuple[dict, dict[str, VolctlError]]:
        """Every LV of these volume groups by (vg, name), with one `lvs` per group rather than one
        per volume; a group that cannot be listed is in the second dict with its error."""
        found: dict = {}
        errors: dict[str, VolctlError] = {}
        for vg in sorted(set(vgs)):
            try:
                found.update({(lv.vg, lv.name): lv for lv in self.lvm(vg).list()})
            except VolctlError as e:
                errors[vg] = e
        return found, errors

    def _on_command(self, result: CommandResult) -> None:
        if self._subject is not None:
            self.inventory().record(
                self._subject, "command", result.argv[0], argv=result.argv, exit_code=result.exit_code,
                duration=round(result.duration, 6), detail=result.stderr.strip()[-2000:] or None,
            )

    @contextmanager
    def _working_on(self, volume: Volume | Snapshot, lock: bool = True) -> Iterator[None]:
        """Hold the volume's lock (external steps for one volume never interleave) and file
        every external command in its history."""
        previous = self._subject
        self._subject = volume
        try:
            if lock:
                held = self.locks.snapshot(volume.id) if isinstance(volume, Snapshot) else self.locks.volume(volume.id)
                with held.held():
                    yield
            else:
                yield
        finally:
            self._subject = previous

    def _note(self, volume: Volume | Snapshot, action: str, detail: str) -> None:
        self.inventory().record(volume, "note", action, detail=detail)

    def _claim(self, volume: Volume, action: str, *, values: dict | None = None, force: bool = False,
               detail: str | None = None, also: Callable[[Inventory], None] | None = None, **fields: object) -> Volume:
        """Compare-and-swap from the states the table allows, with its guards (`values` gives those
        that take one), to the action's busy state, or its done state when it has none, and file
        the transition, in one transaction (with `also`'s writes, when the swap wins)."""
        transition = TRANSITIONS[action]
        wanted = transition.expected(volume.multiattach, force)
        guards = {g: (values or {}).get(g) for g in transition.guards}
        if transition.busy:
            status, derived = transition.busy, {}
        else:
            status, derived = outcome_status(transition, DONE, volume.live_attachments)
        self._swap(volume, action, status, wanted, guards, detail, {**derived, **fields}, also)
        return self.inventory().get(volume.id)

    def _claim_snapshot(self, snapshot: Snapshot, action: str, *, detail: str | None = None,
                        **fields: object) -> Snapshot:
        """_claim for a snapshot, by SNAPSHOT_TRANSITIONS."""
        transition = SNAPSHOT_TRANSITIONS[action]
        guards = {g: None for g in transition.guards}
        self._swap(snapshot, action, transition.busy or transition.done, transition.allowed_from, guards, detail, fields)
        return self.inventory().get_snapshot(snapshot.id)

    def _finish(self, subject: Volume | Snapshot, action: str, outcome: str, *, rollback: str | None = None,
                attachments: Iterable | None = None, detail: str | None = None,
                also: Callable[[Inventory], None] | None = None, filed_as: str | None = None,
                **fields: object) -> Volume | Snapshot | None:
        """The second half of a transition, from its busy state (or, for one without, from where
        it is allowed) to the table's done or failed state (a transition without a failed state
        rolls back to `rollback`, the status before the claim; one whose done state is recomputed
        from the live attachments takes `attachments`, the ones that remain). `also` writes in the
        same transaction, when the swap wins; `filed_as` names the history row's action when
        another than the transition's settles it (doctor). A row whose done state is gone (deleted,
        unmanaged) is removed, from whatever status it is in by then."""
        snapshot = isinstance(subject, Snapshot)
        transition = (SNAPSHOT_TRANSITIONS if snapshot else TRANSITIONS)[action]
        if attachments is None:
            attachments = () if snapshot else subject.live_attachments
        status, derived = outcome_status(transition, outcome, attachments, rollback)
        if status in GONE:
            self._forget(subject, action, status, detail)
            return None
        wanted = frozenset({transition.busy}) if transition.busy else transition.allowed_from
        self._swap(subject, action, status, wanted, {}, detail, {**derived, **fields}, also, filed_as)
        inv = self.inventory()
        return inv.get_snapshot(subject.id) if snapshot else inv.get(subject.id)

    def _forget(self, subject: Volume | Snapshot, action: str, gone: str, detail: str | None = None) -> None:
        """Remove the row (the LV is gone, or no longer volctl's) and file its last transition; the
        history stays readable."""
        inv = self.inventory()
        snapshot = isinstance(subject, Snapshot)
        with inv.write():
            current = inv.find_snapshot(subject.id) if snapshot else inv.find(subject.id)
            (inv.remove_snapshot if snapshot else inv.remove_volume)(subject.id)
            busy = (SNAPSHOT_TRANSITIONS if snapshot else TRANSITIONS)[action].busy
            inv.record(subject, "transition", action, from_status=current.status if current else busy,
                       to_status=gone, detail=detail)

    def _swap(self, subject: Volume | Snapshot, action: str, status: str, wanted: frozenset[str], guards: dict,
              detail: str | None, fields: dict, also: Callable[[Inventory], None] | None = None,
              filed_as: str | None = None) -> None:
        """The compare-and-swap of either entity and its history row, in one transaction; when it
        loses, the error names the status found, and the guard that failed when the status was right."""
        inv = self.inventory()
        snapshot = isinstance(subject, Snapshot)
        find, cas, table = (inv.find_snapshot, inv.cas_snapshot, "snapshots") if snapshot else (inv.find, inv.cas, "volumes")
        with inv.write():
            current = find(subject.id)
            won = current is not None and cas(subject.id, wanted, status, guards=guards, **fields)
            if won:
                inv.record(subject, "transition", filed_as or action, from_status=current.status, to_status=status,
                           detail=detail)
                if also is not None:
                    also(inv)
            why = "" if won or current is None or current.status not in wanted else self._why(inv, table, subject.id, guards)
        if not won:
            raise InvalidState(subject.name, action, sorted(wanted), current.status if current else "deleted", why,
                               kind="snapshot" if snapshot else "volume")

    def _settle(self, subject: Volume | Snapshot, action: str, work: Callable[[], dict | None], *,
                rollback: str | None = None) -> Volume | Snapshot:
        """Run the work of a claimed transition, then move to the table's done state (with the
        fields the work returns), or to its failed state when the work fails; a transition with
        no failed state rolls back to `rollback`."""
        try:
            fields = work() or {}
        except VolctlError as e:
            transition = (SNAPSHOT_TRANSITIONS if isinstance(subject, Snapshot) else TRANSITIONS)[action]
            self._finish(subject, action, FAILED, rollback=rollback,
                         detail=str(e) if transition.failed else f"rolled back: {e}")
            raise
        return self._finish(subject, action, DONE, **fields)

    @staticmethod
    def _why(inv: Inventory, table: str, row_id: str, guards: dict) -> str:
        return "; ".join(GUARD_REASONS[g] for g in inv.failed_guards(table, row_id, guards)) or "it changed meanwhile"

    @contextmanager
    def _locked(self, ref: str, action: str) -> Iterator[Volume]:
        """The volume under its lock, read again once the lock is held, in a state `action` allows."""
        volume = self.inventory().get(ref)
        with self._working_on(volume):
            volume = self.inventory().get(volume.id)
            self._require(volume, action)
            yield volume

    def _require(self, volume: Volume, action: str) -> None:
        allowed = TRANSITIONS[action].expected(volume.multiattach)
        if volume.status not in allowed:
            raise InvalidState(volume.name, action, sorted(allowed), volume.status)

    def _undo(self, volume: Volume, what: str, step: Callable[[], None]) -> str | None:
        """Best effort: a failed undo must not hide the error that caused it; it goes to history."""
        try:
            step()
        except VolctlError as e:
            self._note(volume, "undo", f"could not undo {what}: {e}")
            return f"could not undo {what}: {e}"
        self._note(volume, "undo", f"undid {what}")
        return None

    def _new_volume(self, action: str, volume_id: str, name: str, size: int, multiattach: bool, vg: str, detail: str,
                    lv_name: str | None = None) -> Volume:
        """The row in the action's busy state, filed in history: the claim of a new volume."""
        lv_name = validate.lv_name(lv_name or self.settings.lv_name(volume_id))
        status = TRANSITIONS[action].busy
        inv = self.inventory()
        stamp = now()
        with inv.write():
            inv.add_volume(
                id=volume_id, name=name, size=size, status=status, attach_status=AttachStatus.DETACHED,
                multiattach=int(multiattach), volume_group=vg, lv_name=lv_name, created_at=stamp, updated_at=stamp,
            )
            inv.record((volume_id, name), "transition", action, to_status=status, detail=detail)
        return inv.get(volume_id)

    def _make_lv(self, lvm: Lvm, lv_name: str, size: int) -> None:
        """A thick LV, or a thin one in the pool (made on first use, as Cinder does)."""
        pool = None
        if self.settings.lvm_type == "thin":
            pool = self.settings.thin_pool
            if lvm.get(pool) is None:
                lvm.create_thin_pool(pool)
        lvm.create(lv_name, size, thin_pool=pool)
