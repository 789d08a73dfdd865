"""Volumes: create, delete, extend, the admin reset, and the reads."""

from __future__ import annotations

from typing import Iterator

from volctl import validate
from volctl.errors import InvalidState, UsageError, VolctlError, quoted
from volctl.model import DONE, FAILED, TRANSITIONS, AttachStatus, Event, Guard, Status, Volume
from volctl.service.core import Outcome, Progress, new_id
from volctl.service.exports import Exports
from volctl.service.space import Space


class Volumes(Exports, Space):
    # -- create ------------------------------------------------------------------------------

    def create(self, *, size: int | None = None, name: str | None = None, multiattach: bool = False,
               volume_id: str | None = None, snapshot: str | None = None, source_volume: str | None = None,
               progress: Progress | None = None) -> Outcome:
        """A new LV; from a snapshot or a clone of a volume (service/snapshots.py) when asked."""
        if snapshot is not None and source_volume is not None:
            raise UsageError("--snapshot and --source-volume exclude each other: give one")
        if size is not None:
            validate.size_gib(size)
        elif snapshot is None and source_volume is None:
            raise UsageError("--size is required (it may be left out only with --snapshot or --source-volume)")
        volume_id = validate.uuid_str(volume_id, "volume id") if volume_id is not None else new_id()
        name = validate.volume_name(name) if name is not None else volume_id
        self.inventory().refuse_taken("volume", volume_id, name)  # exit 4 before the admission asks LVM
        if snapshot is not None:
            return self.create_from_snapshot(snapshot, size=size, name=name, multiattach=multiattach,
                                             volume_id=volume_id, progress=progress)
        if source_volume is not None:
            return self.clone(source_volume, size=size, name=name, multiattach=multiattach, volume_id=volume_id,
                              progress=progress)
        vg = self.settings.volume_group
        with self._admitted(vg, size, f"create of {size} GiB"):  # until the row counts it
            volume = self._new_volume("create", volume_id, name, size, multiattach, vg, f"{size} GiB")
        with self._working_on(volume):
            volume = self._settle(volume, "create", lambda: self._make_lv(self.lvm(volume.volume_group), volume.lv_name, size))
        return Outcome(volume)

    # -- delete / extend ---------------------------------------------------------------------

    def delete(self, ref: str, progress: Progress | None = None) -> Outcome:
        inv = self.inventory()
        volume = inv.get(ref)
        with self._working_on(volume):
            volume = inv.get(volume.id)
            if volume.live_attachments:
                raise InvalidState(volume.name, "delete", sorted(TRANSITIONS["delete"].allowed_from), volume.status,
                                   f"{len(volume.live_attachments)} live attachment(s)")
            volume = self._claim(volume, "delete", previous_status=volume.status)
            lvm = self.lvm(volume.volume_group)
            try:
                self._remove_live_export_of(volume)
                lv = lvm.get(volume.lv_name)
                if lv is None:
                    self._note(volume, "delete", f"LV {volume.lv_path} was already gone")
                else:
                    if self.settings.volume_clear == "zero" and not lv.is_thin_volume:
                        report = (lambda done: progress(done, lv.size_bytes)) if progress else None
                        lvm.clear(lv.name, lv.size_bytes, report)
                    lvm.remove(lv.name)
            except VolctlError as e:
                self._finish(volume, "delete", FAILED, detail=str(e))
                raise
            # from deleting, or whatever a reset-state meanwhile made it: the LV is gone either way
            self._finish(volume, "delete", DONE)
        return Outcome(None, data={"id": volume.id, "name": volume.name, "deleted": True})

    def extend(self, ref: str, size: int) -> Outcome:
        validate.size_gib(size)
        inv = self.inventory()
        volume = self._growing(inv.get(ref), size)  # before waiting for the lock: bad input fails at once
        with self._working_on(volume):
            volume = self._growing(inv.get(volume.id), size)  # as the operation that held the lock left it
            self._require(volume, "extend")  # a state that refuses it is said before anything of LVM is asked
            lvm = self.lvm(volume.volume_group)
            # the inventory has the new size only once settled: the space lock is held until then
            with self._admitted(volume.volume_group, size - volume.size, f"extend of {volume.name} to {size} GiB"):
                thick_origin = self._thick_origin(volume, lvm)
                volume = self._claim(volume, "extend", values={Guard.SMALLER_THAN: size},
                                     previous_status=volume.status, detail=f"{volume.size} GiB -> {size} GiB")

                def grow() -> dict:
                    lvm.extend(volume.lv_name, size, thick_origin=thick_origin)
                    return {"size": size}

                volume = self._settle(volume, "extend", grow)
            notes = self._tell_hosts(volume)
        rescans = [{"host": c.initiator, "run": self.targets.owner(volume).rescan_hint(volume, c.initiator)}
                   for c in volume.connections]
        return Outcome(volume, notes=notes, data={"size": volume.size, "rescans": rescans})

    def _tell_hosts(self, volume: Volume) -> tuple[str, ...]:
        """A live export's hosts learn the new size where its target must be told (NVMe's namespace
        is revalidated, which sends connected hosts the change event; an iSCSI target answers the
        next capacity read with it by itself). As in Cinder, a failure here is a warning: the LV
        has grown."""
        if not volume.provider_location:
            return ()
        driver = self.targets.owner(volume)
        try:
            told = driver.grown(volume)
        except VolctlError as e:
            self._note(volume, "extend", f"the LV grew, but its export could not tell its hosts: {e}")
            return (f"warning: {volume.name} grew, but its export could not tell its hosts: {e}",)
        if told:
            self._note(volume, "extend", told)
        return ()

    def _thick_origin(self, volume: Volume, lvm) -> bool:
        """Whether the LV is a thick origin, which lvm2 resizes only inactive: then an exported
        volume is refused before anything changes (its target holds the LV open)."""
        if not self.inventory().snapshots(volume.id):
            return False
        lv = lvm.get(volume.lv_name)
        if lv is None or not lv.is_thick_origin:
            return False
        if volume.provider_location:
            raise InvalidState(volume.name, "extend", ["available"], volume.status,
                               "it has thick snapshots, and lvm2 resizes a snapshot origin only while inactive: "
                               f"unexport it first (volctl unexport {volume.name})")
        return True

    @staticmethod
    def _growing(volume: Volume, size: int) -> Volume:
        if size <= volume.size:
            raise UsageError(f"new size {size} GiB must be larger than the current {volume.size} GiB")
        return volume

    # -- admin -------------------------------------------------------------------------------

    def reset_state(self, ref: str, *, status: str, attach_status: str | None = None) -> Outcome:
        try:
            status = Status(status)
            attach_status = AttachStatus(attach_status) if attach_status is not None else None
        except ValueError as e:
            raise UsageError(f"{e}: statuses are {', '.join(Status)}; attach statuses are {', '.join(AttachStatus)}") from None
        inv = self.inventory()
        volume = inv.get(ref)
        with inv.write():
            volume = inv.get(volume.id)  # as it is now, in this transaction: the history must chain
            fields: dict = {"previous_status": volume.status}
            change = f"status {volume.status} -> {status}"
            if attach_status is not None:
                fields["attach_status"] = attach_status
                change += f", attach_status {volume.attach_status} -> {attach_status}"
            inv.update(volume.id, status=status, **fields)
            inv.record(volume, "transition", "reset-state", from_status=volume.status, to_status=status, detail=change)
        notes = tuple(self._host_disagreements(inv.get(volume.id))) if status == Status.AVAILABLE else ()
        return Outcome(inv.get(volume.id), notes=notes)

    def _host_disagreements(self, volume: Volume) -> Iterator[str]:
        if volume.live_attachments:
            yield f"warning: {volume.name} still has {len(volume.live_attachments)} live attachment(s) in the inventory"
        driver = self.targets.owner(volume)
        target = driver.target_name(volume)
        try:
            with self._working_on(volume, lock=False):
                present = driver.exists(target)
                hosts = driver.hosts(target) if present else []
        except (VolctlError, OSError) as e:
            yield f"warning: could not check the host for target {target}: {e}"
            return
        if present:
            yield f"warning: target {target} is still exported on this host (volctl unexport {volume.name} removes it)"
        if hosts:
            yield f"warning: initiators still have ACLs on {target}: {', '.join(hosts)}"

    # -- reads -------------------------------------------------------------------------------

    def list(self, status: str | None = None) -> Iterator[Volume]:
        if status is not None and status not in Status.__members__.values():
            raise UsageError(f"unknown status {quoted(status)}: one of {', '.join(Status)}")
        return self.inventory(write=False).list(status)

    def show(self, ref: str) -> Volume:
        return self.inventory(write=False).get(ref)

    def host_secrets_of(self, volume: Volume) -> dict[str, dict]:
        """The own credentials of the volume's connected hosts, by host (show --show-secrets)."""
        if not any(c.auth for c in volume.connections):
            return {}
        inv = self.inventory(write=False)
        family = self.targets.owner(volume).family
        return {c.initiator: inv.host_credentials(family, c.initiator) or {} for c in volume.connections if c.auth}

    def history(self, ref: str) -> list[Event]:
        """A volume's, or a snapshot's (SNAP), deleted ones included."""
        inv = self.inventory(write=False)
        found = inv.find(ref) or inv.find_snapshot(ref)
        return inv.events(found.id if found else ref)
