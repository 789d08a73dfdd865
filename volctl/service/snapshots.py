"""Snapshots, volumes made from them, clones and revert, with the command lines of Cinder's LVM
driver (cinder/volume/drivers/lvm.py; section 2 of the LVM facts in ../shared/reference/).

Locks: a snapshot's own lock keeps its delete away from a copy that reads it; the volume's lock
keeps a snapshot, an extend, a delete or a revert of one volume from interleaving. Where both are
held, the volume's is taken first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from volctl import validate
from volctl.errors import EnvironmentProblem, InvalidState, UsageError, VolctlError
from volctl.inventory import now
from volctl.model import (DONE, FAILED, GIB, ROLLED_BACK, GUARD_REASONS, SNAPSHOT_TRANSITIONS, TRANSITIONS, Guard, Snapshot, Status,
                          Volume)
from volctl.service.core import Outcome, Progress, new_id
from volctl.service.space import Space

if TYPE_CHECKING:  # lvm.py is imported when first used: read commands need none of it
    from volctl.lvm import Lvm, LogicalVolume


class Snapshots(Space):
    # -- snapshot create / delete ------------------------------------------------------------

    def snapshot_create(self, ref: str, *, name: str | None = None, force: bool = False,
                        snapshot_id: str | None = None) -> Outcome:
        snapshot_id = validate.uuid_str(snapshot_id, "snapshot id") if snapshot_id is not None else new_id()
        name = validate.snapshot_name(name) if name is not None else snapshot_id
        inv = self.inventory()
        volume = inv.get(ref)
        inv.refuse_taken("snapshot", snapshot_id, name)  # exit 4 before the admission asks LVM
        with self._working_on(volume):  # no extend, delete or revert of the volume meanwhile
            volume = inv.get(volume.id)
            self._snapshot_allowed(volume, force)  # a state that refuses it is said before any space is asked
            with self._admitted(volume.volume_group, volume.size, f"snapshot of {volume.name} ({volume.size} GiB)"):
                snapshot = self._new_snapshot(volume, snapshot_id, name, force)
            volume = inv.get(volume.id)
            lvm = self.lvm(volume.volume_group)

            def take() -> None:
                lv = self._lv_of(lvm, volume.lv_name, f"volume {volume.name}")
                # thick: a COW store as large as the origin; thin: no -L makes a thin snapshot
                lvm.snapshot(snapshot.lv_name, volume.lv_name, None if lv.is_thin_volume else volume.size)

            with self._working_on(snapshot):
                snapshot = self._settle(snapshot, "create", take)
            self._note(volume, "snapshot", f"snapshot {snapshot.name} ({snapshot.id}) created")
        return Outcome(volume, snapshot=snapshot)

    def _new_snapshot(self, volume: Volume, snapshot_id: str, name: str, force: bool) -> Snapshot:
        """The row in 'creating', in the transaction that checks the volume may be snapshotted:
        a delete of the volume claims through the same table, so it sees the row or wins first."""
        inv = self.inventory()
        stamp = now()
        with inv.write():
            current = inv.get(volume.id)
            self._snapshot_allowed(current, force)
            inv.add_snapshot(
                id=snapshot_id, name=name, volume_id=current.id, volume_size=current.size,
                status=SNAPSHOT_TRANSITIONS["create"].busy, volume_group=current.volume_group,
                lv_name=validate.lv_name(self.settings.snapshot_lv_name(snapshot_id)), created_at=stamp, updated_at=stamp,
            )
            snapshot = inv.get_snapshot(snapshot_id)
            inv.record(snapshot, "transition", "create", to_status=snapshot.status,
                       detail=f"of volume {current.name} ({current.size} GiB, {current.status})")
        return snapshot

    @staticmethod
    def _snapshot_allowed(volume: Volume, force: bool) -> None:
        transition = TRANSITIONS["snapshot"]
        allowed = transition.expected(force=force)
        if volume.status not in allowed:
            why = "--force snapshots an in-use volume" if volume.status in transition.force_also else ""
            raise InvalidState(volume.name, "snapshot create", sorted(allowed), volume.status, why)

    def snapshot_delete(self, ref: str, progress: Progress | None = None) -> Outcome:
        inv = self.inventory()
        snapshot = inv.get_snapshot(ref)
        with self._working_on(snapshot):
            snapshot = inv.get_snapshot(snapshot.id)
            snapshot = self._claim_snapshot(snapshot, "delete", previous_status=snapshot.status)
            lvm = self.lvm(snapshot.volume_group)
            try:
                lv = lvm.get(snapshot.lv_name)
                if lv is None:
                    self._note(snapshot, "delete", f"LV {snapshot.lv_path} was already gone")
                else:
                    self._remove_snapshot_lv(lvm, lv, snapshot.volume_size, progress)
            except VolctlError as e:
                self._finish(snapshot, "delete", FAILED, detail=str(e))
                raise
            self._finish(snapshot, "delete", DONE)
            parent = inv.find(snapshot.volume_id)
            if parent is not None:
                self._note(parent, "snapshot", f"snapshot {snapshot.name} ({snapshot.id}) deleted")
        return Outcome(None, snapshot=snapshot, data={"id": snapshot.id, "name": snapshot.name, "deleted": True})

    def _remove_snapshot_lv(self, lvm: Lvm, lv: LogicalVolume, size_gib: int, progress: Progress | None = None) -> None:
        """Cinder's delete_snapshot: a thick snapshot's exception store holds the origin's old
        blocks, so with volume_clear = "zero" it is zeroed first (lp1191812); then lvremove with
        Cinder's flags and retry."""
        if self.settings.volume_clear == "zero" and lv.is_thick_snapshot:
            total = size_gib * GIB
            report = (lambda done: progress(done, total)) if progress else None
            lvm.zero(lvm.mapper_path(lv.name, "-cow"), total, report)
        lvm.remove(lv.name)

    # -- volumes from snapshots, clones ------------------------------------------------------

    def create_from_snapshot(self, ref: str, *, size: int | None, name: str, multiattach: bool, volume_id: str,
                             progress: Progress | None = None) -> Outcome:
        inv = self.inventory()
        snapshot = inv.get_snapshot(ref)
        size = self._at_least(size, snapshot.volume_size, f"snapshot {snapshot.name}")
        with self._working_on(snapshot):  # its delete waits until the copy is done
            snapshot = inv.get_snapshot(snapshot.id)
            allowed = SNAPSHOT_TRANSITIONS["use"].allowed_from
            if snapshot.status not in allowed:
                raise InvalidState(snapshot.name, "create --snapshot", sorted(allowed), snapshot.status, kind="snapshot")
            with self._admitted(snapshot.volume_group, size, f"create of {size} GiB from snapshot {snapshot.name}"):
                volume = self._new_volume("create", volume_id, name, size, multiattach, snapshot.volume_group,
                                          f"{size} GiB from snapshot {snapshot.name} ({snapshot.id})")
            lvm = self.lvm(snapshot.volume_group)

            def make() -> None:
                source = self._lv_of(lvm, snapshot.lv_name, f"snapshot {snapshot.name}")
                if source.is_thin_volume:
                    self._thin_copy(lvm, volume.lv_name, snapshot.lv_name, snapshot.volume_size, size,
                                    activate_source=True)
                else:
                    self._make_lv(lvm, volume.lv_name, size)
                    lvm.activate(snapshot.lv_name)
                    self._copy(lvm, snapshot.lv_name, volume.lv_name, snapshot.volume_size, progress)

            with self._working_on(volume):
                volume = self._settle(volume, "create", make)
        return Outcome(volume)

    def clone(self, ref: str, *, size: int | None, name: str, multiattach: bool, volume_id: str,
              progress: Progress | None = None) -> Outcome:
        inv = self.inventory()
        source = inv.get(ref)
        size = self._at_least(size, source.size, f"volume {source.name}")
        with self._working_on(source):  # no delete, extend or revert of the source while it is read
            source = inv.get(source.id)
            self._require(source, "clone")
            # thick: the new LV and the temporary snapshot of the source it copies from
            with self._admitted(source.volume_group, size, f"clone of {source.name} ({size} GiB)",
                                thick_gib=size + source.size):
                volume = self._new_volume("create", volume_id, name, size, multiattach, source.volume_group,
                                          f"{size} GiB, a clone of volume {source.name} ({source.id})")
            lvm = self.lvm(source.volume_group)

            def make() -> None:
                lv = self._lv_of(lvm, source.lv_name, f"volume {source.name}")
                if lv.is_thin_volume:
                    self._thin_copy(lvm, volume.lv_name, source.lv_name, source.size, size)
                    return
                temporary = self.settings.clone_snapshot_lv_name(volume.id)
                lvm.snapshot(temporary, source.lv_name, source.size)
                # Cinder's finally: the temporary snapshot never outlives the clone; when the copy
                # failed, a failed removal goes to history and the copy's error is the one raised
                try:
                    self._make_lv(lvm, volume.lv_name, size)
                    lvm.activate(temporary)
                    self._copy(lvm, temporary, volume.lv_name, source.size, progress)
                except VolctlError:
                    self._undo(volume, f"temporary snapshot {temporary}",
                               lambda: self._drop_temporary(lvm, temporary, source.size))
                    raise
                self._drop_temporary(lvm, temporary, source.size)

            with self._working_on(volume):
                volume = self._settle(volume, "create", make)
        return Outcome(volume)

    @staticmethod
    def _thin_copy(lvm: Lvm, lv_name: str, source: str, source_size: int, size: int, *,
                   activate_source: bool = False) -> None:
        """Cinder's thin copy: a thin snapshot of the source is the new volume, extended when
        larger, its activation-skip flag cleared so it comes up at boot; a source snapshot is
        activated first, as Cinder's create_volume_from_snapshot does."""
        lvm.snapshot(lv_name, source)
        if size > source_size:
            lvm.extend(lv_name, size)
        if activate_source:
            lvm.activate(source)
        lvm.activate(lv_name, permanent=True)

    def _drop_temporary(self, lvm: Lvm, name: str, size_gib: int) -> None:
        lv = lvm.get(name)
        if lv is not None:
            self._remove_snapshot_lv(lvm, lv, size_gib)

    @staticmethod
    def _at_least(size: int | None, floor: int, what: str) -> int:
        if size is None:
            return floor
        if size < floor:
            raise UsageError(f"--size {size} GiB is smaller than {what} ({floor} GiB)")
        return size

    @staticmethod
    def _copy(lvm: Lvm, source: str, dest: str, size_gib: int, progress: Progress | None) -> None:
        total = size_gib * GIB
        lvm.copy(source, dest, total, (lambda done: progress(done, total)) if progress else None)

    @staticmethod
    def _lv_of(lvm: Lvm, name: str, what: str) -> LogicalVolume:
        lv = lvm.get(name)
        if lv is None:
            raise EnvironmentProblem(f"the LV of {what} ({lvm.vg}/{name}) is not there (volctl doctor reports it)")
        return lv

    # -- revert ------------------------------------------------------------------------------

    def revert(self, ref: str, snapshot_ref: str) -> Outcome:
        """Cinder's revert_to_snapshot for thick LVM: merge the snapshot into its volume, then make
        the snapshot again, as the merge consumed it."""
        inv = self.inventory()
        volume = inv.get(ref)
        snapshot = inv.get_snapshot(snapshot_ref)
        if snapshot.volume_id != volume.id:
            raise UsageError(f"snapshot {snapshot.name} is not of volume {volume.name} "
                             f"(it is of {snapshot.volume_name or snapshot.volume_id})")
        # The volume is the subject: the merge and the activations act on its LV, so their
        # commands are in `history VOL`; the snapshot's history has its transitions.
        with self._working_on(volume), self.locks.snapshot(snapshot.id).held():
            volume, snapshot = inv.get(volume.id), inv.get_snapshot(snapshot.id)
            if snapshot.volume_size != volume.size:
                raise InvalidState(volume.name, "revert", [Status.AVAILABLE], volume.status,
                                   f"the volume is {volume.size} GiB and snapshot {snapshot.name} {snapshot.volume_size} "
                                   "GiB: only a snapshot of the volume's current size reverts (Cinder's rule)")
            self._refuse_early(volume, snapshot)
            lvm = self.lvm(volume.volume_group)
            lv = lvm.get(volume.lv_name)
            if lv is not None and lv.is_thin_volume:
                raise InvalidState(volume.name, "revert", [Status.AVAILABLE], volume.status,
                                   "it is a thin volume, and only thick snapshots merge (Cinder's LVM driver does "
                                   f"not revert thin either): volctl create --snapshot {snapshot.name} makes a new volume of it")
            before, snapshot_before = volume.status, snapshot.status
            volume = self._claim(volume, "revert", previous_status=volume.status,
                                 detail=f"to snapshot {snapshot.name} ({snapshot.id})")
            try:
                snapshot = self._claim_snapshot(snapshot, "revert", detail=f"into volume {volume.name}")
            except VolctlError as e:
                self._finish(volume, "revert", FAILED, rollback=before, detail=f"rolled back: {e}")
                raise
            try:
                lvm.merge(snapshot.lv_name)
            except VolctlError as e:  # the merge did not run: nothing changed
                self._finish(snapshot, "revert", ROLLED_BACK, rollback=snapshot_before, detail=f"rolled back: {e}")
                self._finish(volume, "revert", FAILED, rollback=before, detail=f"rolled back: {e}")
                raise
            outcome = "reverted"
            try:
                def again() -> None:
                    lvm.deactivate(volume.lv_name)
                    lvm.activate(volume.lv_name)
                    lvm.snapshot(snapshot.lv_name, volume.lv_name, snapshot.volume_size)

                snapshot = self._settle(snapshot, "revert", again)
            except VolctlError:
                outcome = f"reverted, but snapshot {snapshot.name} could not be made again (it is 'error')"
                raise
            finally:  # the data is the snapshot's from the merge on, whatever came after it
                volume = self._finish(volume, "revert", DONE, detail=f"{outcome} to snapshot {snapshot.name}")
        return Outcome(volume, snapshot=snapshot)

    def _refuse_early(self, volume: Volume, snapshot: Snapshot) -> None:
        """The claims' checks, first from the inventory alone, so that a refused revert leaves no
        history (no lvs filed, no claim rolled back); the claims still decide a race."""
        self._require(volume, "revert")
        if volume.provider_location:
            raise InvalidState(volume.name, "revert", [Status.AVAILABLE], volume.status, GUARD_REASONS[Guard.NOT_EXPORTED])
        allowed = SNAPSHOT_TRANSITIONS["revert"].allowed_from
        if snapshot.status not in allowed or self.inventory().latest_snapshot(volume.id).id != snapshot.id:
            why = GUARD_REASONS[Guard.LATEST_SNAPSHOT] if snapshot.status in allowed else ""
            raise InvalidState(snapshot.name, "revert", sorted(allowed), snapshot.status, why, kind="snapshot")

    # -- reads -------------------------------------------------------------------------------

    def snapshots(self, volume_ref: str | None = None) -> list[Snapshot]:
        inv = self.inventory(write=False)
        return inv.snapshots(inv.get(volume_ref).id if volume_ref is not None else None)

    def snapshot_show(self, ref: str) -> Snapshot:
        return self.inventory(write=False).get_snapshot(ref)
