"""What `volctl restore` and `volctl doctor --repair` do to one volume or snapshot: the public
methods they call, each under the volume's (or snapshot's) lock, through the transition table
and the target helper that drives the export."""

from __future__ import annotations

from typing import TYPE_CHECKING

from volctl.errors import InvalidState, NotRestorable, RestoreFailed, VolctlError
from volctl.model import ABANDONED, EXPORTABLE, GIB, Connection, Snapshot, Status, Volume, snapshot_abandoned
from volctl.service.snapshots import Snapshots
from volctl.service.volumes import Volumes

if TYPE_CHECKING:
    from volctl.lvm import LogicalVolume


class Repairs(Volumes, Snapshots):
    # -- restore -----------------------------------------------------------------------------

    def restore_export(self, volume: str | Volume, lvs: dict[tuple[str, str], LogicalVolume] | None = None) -> tuple[Volume, bool]:
        """Make one volume's recorded export live, under the volume's lock: its LV active, its
        target whole, and every recorded connection's host allowed. Nothing live is removed but a
        target that carries no data. Returns the volume and whether anything changed; the caller
        persists afterwards (once for many volumes). volume: its id, or the volume as the caller
        listed it (read again under the lock). lvs: the group's LVs, listed once by the caller."""
        inv = self.inventory()
        if not isinstance(volume, Volume):
            volume = inv.get(volume)
        with self._working_on(volume):
            volume = inv.get(volume.id)  # as the operation that held the lock left it
            return self._restore_export(volume, lvs)

    def _restore_export(self, volume: Volume, lvs: dict | None) -> tuple[Volume, bool]:
        if not volume.provider_location:
            raise NotRestorable(f"volume {volume.name} has no recorded export (volctl export {volume.name} makes one)")
        if volume.status not in EXPORTABLE:
            raise NotRestorable(f"volume {volume.name} is '{volume.status}': its LV may be gone, so its export is not "
                                f"restored (volctl doctor; then delete or reset-state settles it)")
        lvm = self.lvm(volume.volume_group)
        lv = lvs.get((volume.volume_group, volume.lv_name)) if lvs is not None else lvm.get(volume.lv_name)
        if lv is None:
            raise RestoreFailed(f"volume {volume.name}: LV {volume.volume_group}/{volume.lv_name} is missing; "
                                f"its export cannot be restored")
        changes: list[str] = []
        if not lv.is_active:
            lvm.activate(volume.lv_name)
            changes.append(f"activated LV {volume.volume_group}/{volume.lv_name}")
        driver = self.targets.owner(volume)
        target = driver.target_name(volume)
        with driver.locked():
            live = driver.is_live(target)
            mended = driver.mend(volume) if live else []
            replaced = live and mended is None and not driver.is_whole(target)
            changes += mended or []
            if replaced:
                # What a boot restore leaves when it ran before the LV was active, or from a file
                # it could not fully read: a target that carries no data. Replacing it takes away
                # nothing a host could be using (and not every helper can add the data to a live target).
                driver.remove_export(target)
            if replaced or not live:
                volume, created = self._ensure_export(volume, save=False)
                if created:
                    changes.append(f"target {target}" + (f" (it was live without {driver.data_unit})" if replaced else ""))
            allowed = driver.hosts(target)
            for connection in volume.connections:
                credentials = self._credentials_of(driver, connection)
                if not any(driver.same_host(connection.initiator, host) for host in allowed):
                    driver.allow(volume, connection.initiator, credentials)
                    changes.append(f"ACL for {connection.initiator}")
                elif credentials and driver.live_host_secrets(connection.initiator) != credentials:
                    driver.allow(volume, connection.initiator, credentials)  # a new key drops no live session
                    changes.append(f"the keys of {connection.initiator}")
        if changes:
            self._note(volume, "restore", "re-created " + ", ".join(changes))
        return volume, bool(changes)

    def _credentials_of(self, driver, connection: Connection) -> dict | None:
        """The credentials a recorded connection's host was allowed with (None: it had none)."""
        if not connection.auth:
            return None
        stored = self.inventory().host_credentials(driver.family, connection.initiator)
        if stored is None:
            raise RestoreFailed(f"host {connection.initiator} connected with {connection.auth}, but the inventory "
                                "has no credentials for it")
        return stored

    # -- doctor's repairs --------------------------------------------------------------------

    def settle_abandoned(self, volume_id: str) -> Volume:
        """Move a volume that a process left in a transient status (and is gone) where the table
        says: Cinder's restart cleanup. An extend that outran its record gets the LV's size; a
        revert killed between `lvchange -a n` and `-a y` gets its LV active again (an export and
        a copy need the device; a merge still pending starts on activation)."""
        inv = self.inventory()
        volume = inv.get(volume_id)
        with self._working_on(volume):
            volume = inv.get(volume.id)
            action, outcome = ABANDONED[volume.status]
            fields: dict = {}
            if volume.status in (Status.EXTENDING, Status.REVERTING):
                lvm = self.lvm(volume.volume_group)
                lv = lvm.get(volume.lv_name)
                if volume.status == Status.EXTENDING and lv is not None and lv.size_bytes // GIB > volume.size:
                    fields["size"] = lv.size_bytes // GIB
                if volume.status == Status.REVERTING and lv is not None and not lv.is_active:
                    lvm.activate(volume.lv_name)
            detail = "repaired: the operation that left it here is gone"
            if "size" in fields:
                detail += f"; size {fields['size']} GiB as the LV is"
            return self._settle_as(volume, action, outcome, detail, fields)

    def record_lv_size(self, volume_id: str) -> Volume:
        """An LV larger than the inventory records: an extend whose record did not
        reach the disk (its claim and settle lost to a power cut after lvextend). The size is
        recorded as the LV has it; a volume being worked on, or an LV not larger, is left alone."""
        inv = self.inventory()
        volume = inv.get(volume_id)
        with self._working_on(volume):
            volume = inv.get(volume.id)
            lv = self.lvm(volume.volume_group).get(volume.lv_name)
            size = -(-lv.size_bytes // GIB) if lv is not None else 0  # rounded up, as doctor and manage count
            if size <= volume.size or volume.status in ABANDONED:
                raise VolctlError(f"{volume.name}: its LV is not larger than recorded now; run doctor again")
            with inv.write():
                inv.update(volume.id, size=size)
                inv.record(volume, "note", "doctor", detail=f"repaired: the LV is {size} GiB, the inventory said "
                                                              f"{volume.size} GiB (an extend whose record was lost); "
                                                              "size recorded as the LV is")
            return inv.get(volume.id)

    def settle_abandoned_snapshot(self, snapshot_id: str) -> Snapshot:
        """settle_abandoned for a snapshot; a restoring one is failed when the revert consumed its LV."""
        inv = self.inventory()
        snapshot = inv.get_snapshot(snapshot_id)
        with self._working_on(snapshot):
            snapshot = inv.get_snapshot(snapshot.id)
            present = self.lvm(snapshot.volume_group).get(snapshot.lv_name) is not None
            action, outcome = snapshot_abandoned(snapshot, present)
            detail = "repaired: the operation that left it here is gone" + ("" if present else "; its LV is not there")
            return self._settle_as(snapshot, action, outcome, detail, {})

    def _settle_as(self, subject, action: str, outcome: str, detail: str, fields: dict):
        """doctor's settle, filed as doctor's: when someone else moved it first, theirs is the
        last word and this repair did nothing."""
        try:
            return self._finish(subject, action, outcome, detail=detail, filed_as="doctor",
                                rollback=subject.previous_status, **fields)
        except InvalidState:
            kind = "snapshot " if isinstance(subject, Snapshot) else ""
            current = (self.inventory().find_snapshot if kind else self.inventory().find)(subject.id)
            raise VolctlError(f"{kind}{subject.name} changed meanwhile (now "
                              f"'{current.status if current else 'deleted'}'); run doctor again") from None

    def record_live_export(self, volume_id: str) -> Volume:
        """A target found live for a volume with no recorded export: record it (and persist it)."""
        inv = self.inventory()
        volume = inv.get(volume_id)
        with self._working_on(volume):
            volume, _ = self._ensure_export(inv.get(volume.id))
        return volume

    def record_connection(self, volume_id: str, host: str) -> Volume:
        """A host found allowed on a volume's target that volctl did not record: record it."""
        inv = self.inventory()
        volume = inv.get(volume_id)
        with self._working_on(volume):
            with inv.write():
                connector = self.targets.owner(volume).connector_for(host)
                inv.add_connection(Connection(volume.id, host, connector, volume.updated_at))
                inv.record(volume, "note", "doctor", detail=f"recorded the ACL of {host} found on the host")
        return inv.get(volume.id)

    def remove_leftover_snapshot(self, vg: str, name: str) -> None:
        """A clone's temporary snapshot that outlived it: zeroed (with volume_clear = "zero") and removed."""
        lvm = self.lvm(vg)
        lv = lvm.get(name)
        if lv is not None:
            self._remove_snapshot_lv(lvm, lv, lv.size_bytes // GIB)
