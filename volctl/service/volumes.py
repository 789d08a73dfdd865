"""Volumes: create, delete, extend, the admin reset, and the reads."""

from __future__ import annotations

import uuid as uuidlib
from typing import Iterator

from volctl import validate
from volctl.errors import InvalidState, UsageError, VolctlError, quoted
from volctl.inventory import now
from volctl.model import TRANSITIONS, AttachStatus, Event, Guard, Status, Volume
from volctl.service.core import Outcome, Progress, ServiceCore


class Volumes(ServiceCore):
    # -- create ------------------------------------------------------------------------------

    def create(self, *, size: int, name: str | None = None, multiattach: bool = False, volume_id: str | None = None) -> Outcome:
        validate.size_gib(size)
        volume_id = validate.uuid_str(volume_id, "volume id") if volume_id is not None else str(uuidlib.uuid4())
        name = validate.volume_name(name) if name is not None else volume_id
        lv_name = validate.lv_name(self.settings.lv_name(volume_id))
        inv = self.inventory()
        stamp = now()
        record = (volume_id, name)
        with inv.write():
            inv.add_volume(
                id=volume_id, name=name, size=size, status=Status.CREATING, attach_status=AttachStatus.DETACHED,
                multiattach=int(multiattach), volume_group=self.settings.volume_group, lv_name=lv_name,
                created_at=stamp, updated_at=stamp,
            )
            inv.record(record, "transition", "create", to_status=Status.CREATING, detail=f"{size} GiB")
        volume = inv.get(volume_id)
        with self._working_on(volume):
            lvm = self.lvm(volume.volume_group)
            try:
                pool = None
                if self.settings.lvm_type == "thin":
                    pool = self.settings.thin_pool
                    if lvm.get(pool) is None:
                        lvm.create_thin_pool(pool)
                lvm.create(lv_name, size, thin_pool=pool)
            except VolctlError as e:
                self._claim(volume, "create", Status.ERROR, expected={Status.CREATING}, detail=str(e))
                raise
            volume = self._claim(volume, "create", Status.AVAILABLE, expected={Status.CREATING})
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
            volume = self._claim(volume, "delete", Status.DELETING, previous_status=volume.status)
            lvm = self.lvm(volume.volume_group)
            try:
                iqn = self._iqn(volume)
                with self.locks.lio.held():
                    if self.target.exists(iqn):
                        self._remove_target(iqn)
                lv = lvm.get(volume.lv_name)
                if lv is None:
                    self._note(volume, "delete", f"LV {volume.lv_path} was already gone")
                else:
                    if self.settings.volume_clear == "zero" and not lv.is_thin_volume:
                        report = (lambda done: progress(done, lv.size_bytes)) if progress else None
                        lvm.clear(lv.name, lv.size_bytes, report)
                    lvm.remove(lv.name)
            except VolctlError as e:
                self._claim(volume, "delete", Status.ERROR_DELETING, expected={Status.DELETING}, detail=str(e))
                raise
            with inv.write():
                current = inv.find(volume.id)  # deleting, unless a reset-state came in: the LV is gone either way
                inv.remove_volume(volume.id)
                inv.record(volume, "transition", "delete", from_status=current.status if current else Status.DELETING,
                           to_status="deleted")
        return Outcome(None, data={"id": volume.id, "name": volume.name, "deleted": True})

    def extend(self, ref: str, size: int) -> Outcome:
        validate.size_gib(size)
        inv = self.inventory()
        volume = self._growing(inv.get(ref), size)  # before waiting for the lock: bad input fails at once
        with self._working_on(volume):
            volume = self._growing(inv.get(volume.id), size)  # as the operation that held the lock left it
            volume = self._claim(volume, "extend", Status.EXTENDING, values={Guard.SMALLER_THAN: size},
                                 previous_status=volume.status, detail=f"{volume.size} GiB -> {size} GiB")
            try:
                self.lvm(volume.volume_group).extend(volume.lv_name, size)
            except VolctlError as e:
                self._claim(volume, "extend", Status.ERROR_EXTENDING, expected={Status.EXTENDING}, detail=str(e))
                raise
            volume = self._claim(volume, "extend", Status.AVAILABLE, expected={Status.EXTENDING}, size=size)
        return Outcome(volume)

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
        iqn = self._iqn(volume)
        try:
            with self._working_on(volume, lock=False):
                present = self.target.exists(iqn)
                acls = self.target.acls(iqn) if present else []
        except (VolctlError, OSError) as e:
            yield f"warning: could not check the host for target {iqn}: {e}"
            return
        if present:
            yield f"warning: target {iqn} is still exported on this host (volctl unexport {volume.name} removes it)"
        if acls:
            yield f"warning: initiators still have ACLs on {iqn}: {', '.join(acls)}"

    # -- reads -------------------------------------------------------------------------------

    def list(self, status: str | None = None) -> Iterator[Volume]:
        if status is not None and status not in Status.__members__.values():
            raise UsageError(f"unknown status {quoted(status)}: one of {', '.join(Status)}")
        return self.inventory(write=False).list(status)

    def show(self, ref: str) -> Volume:
        return self.inventory(write=False).get(ref)

    def history(self, ref: str) -> list[Event]:
        inv = self.inventory(write=False)
        volume = inv.find(ref)
        return inv.events(volume.id if volume else ref)
