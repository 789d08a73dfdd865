"""`volctl doctor`: compare the inventory with the host (LVs, LIO targets and ACLs, the saved LIO
config) and report every drift; with repair, bring back consistency where that loses nothing.

Repairs never remove an LV and never take away an ACL an initiator may be using; what they
cannot safely decide is reported for the operator, with the command that would settle it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from volctl.errors import CommandFailed, EnvironmentProblem, VolctlError
from volctl.lvm import GIB, LogicalVolume
from volctl.model import (EXPORTABLE, SNAPSHOT_TRANSIENT, TRANSIENT, Connection, Snapshot, SnapshotStatus, Status, Volume,
                          status_from_attachments)
from volctl.service import VolumeService

DEFAULT_STALE_AFTER = 300.0
# A missing LV is expected while it is being made or removed, and after a failed create.
_LV_EXPECTED_FROM = frozenset(Status) - {Status.CREATING, Status.DELETING, Status.ERROR, Status.ERROR_DELETING}


@dataclass(frozen=True)
class Drift:
    kind: str
    subject: str
    detail: str
    volume_id: str | None = None
    volume_name: str | None = None
    repair: str | None = None  # what --repair does about it; None: left to the operator
    repaired: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Report:
    drift: tuple[Drift, ...]
    notes: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return all(d.repaired for d in self.drift)


def _age_seconds(stamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


class Doctor:
    def __init__(self, service: VolumeService, stale_after: float = DEFAULT_STALE_AFTER):
        self.service = service
        self.settings = service.settings
        self.stale_after = stale_after
        template = re.escape(self.settings.volume_name_template).replace("%s", "[0-9a-f-]{36}")
        self._ours = re.compile(template)
        uuid = "([0-9a-f-]{36})"
        self._snapshot_lv = re.compile(re.escape(self.settings.snapshot_lv_name("@")).replace("@", uuid))
        self._clone_lv = re.compile(re.escape(self.settings.clone_snapshot_lv_name("@")).replace("@", uuid))

    # -- looking -----------------------------------------------------------------------------

    def examine(self) -> Report:
        svc, inv = self.service, self.service.inventory(write=False)
        volumes = [inv.get(v.id) for v in inv.list()]
        notes: list[str] = [*svc.lvm().host.describe()]  # which udev mode LVM runs in here, and why
        drift: list[Drift] = []
        lvs = self._logical_volumes({self.settings.volume_group, *(v.volume_group for v in volumes)}, notes)
        targets = set(svc.target.targets())
        for volume in volumes:
            holder = svc.locks.volume(volume.id).holder()
            if holder is not None:
                notes.append(f"{volume.name}: an operation is in progress (pid {holder}); not checked")
                continue
            drift += self._stuck(volume)
            drift += self._lv(volume, lvs)
            drift += self._export(volume, targets, notes)
        drift += self._orphans(volumes, lvs, targets)
        drift += self._snapshots(inv.snapshots(), volumes, lvs, notes)
        drift += self._saved_config()
        drift += self._restore_unit()
        return Report(tuple(drift), tuple(notes))

    def _restore_unit(self) -> list[Drift]:
        """The host's LIO unit clears every live target and restores its own file, at boot and on
        each upgrade of Debian's python3-rtslib-fb: a save anywhere else is lost then."""
        from volctl.savefile import restore_unit

        unit = restore_unit(self.service.host_root)
        ours = str(self.service.target.save_file)
        if unit is None or unit.save_file == ours:
            return []
        return [Drift("restore_unit", str(unit.path),
                      f"{unit.name} clears every live target and restores {unit.save_file} (at boot and on package "
                      f"upgrades), but volctl saves to {ours}: set lio_save_file = \"{unit.save_file}\" or leave it unset")]

    def _logical_volumes(self, vgs: set[str], notes: list[str]) -> dict[tuple[str, str], LogicalVolume]:
        found, errors = self.service.logical_volumes(vgs)
        for vg, error in errors.items():
            if not isinstance(error, CommandFailed):
                raise error  # no lvs at all, or no permission: nothing here can be checked
            notes.append(f"volume group {vg}: cannot list its LVs: {error}")
        return found

    def _stuck(self, volume: Volume) -> list[Drift]:
        if volume.status not in TRANSIENT:
            return []
        age = _age_seconds(volume.updated_at)
        if age < self.stale_after:
            return []
        target = self._stuck_target(volume)
        return [Drift(
            "stuck", volume.status, f"'{volume.status}' for {age:.0f} s with no volctl working on it",
            volume.id, volume.name,
            repair=f"set status {target}" + (", activating its LV if it is inactive" if volume.status == Status.REVERTING else ""),
        )]

    @staticmethod
    def _stuck_target(volume: Volume) -> Status:
        """Where a volume left mid-operation goes: Cinder's restart cleanup where it has one."""
        if volume.status == Status.CREATING:
            return Status.ERROR
        if volume.status == Status.DELETING:
            return Status.ERROR_DELETING
        if volume.status in (Status.ATTACHING, Status.DETACHING):
            return status_from_attachments(a.attach_status for a in volume.live_attachments)[0]
        return Status.AVAILABLE  # extending: the LV's real size is recorded by the repair

    def _lv(self, volume: Volume, lvs: dict) -> list[Drift]:
        lv = lvs.get((volume.volume_group, volume.lv_name))
        if lv is None:
            if volume.status in _LV_EXPECTED_FROM:
                return [Drift("lv_missing", volume.lv_path, f"the LV of {volume.status} volume {volume.name} is not there",
                              volume.id, volume.name)]
            return []
        if lv.size_bytes != volume.size * GIB and volume.status != Status.EXTENDING:
            return [Drift("lv_size", volume.lv_path, f"LV is {lv.size_bytes} bytes; the inventory says {volume.size} GiB",
                          volume.id, volume.name)]
        return []

    def _export(self, volume: Volume, targets: set[str], notes: list[str]) -> list[Drift]:
        iqn = self.service._iqn(volume)
        exportable = volume.status in EXPORTABLE
        if volume.provider_location and iqn not in targets:
            detail = f"{volume.name} is recorded as exported but has no target"
            if not exportable:
                detail += f" ('{volume.status}': volctl delete {volume.name} or reset-state settles it)"
            return [Drift("target_missing", iqn, detail, volume.id, volume.name,
                          repair="export it again with its ACLs" if exportable else None)]
        if iqn not in targets:
            return []
        found: list[Drift] = []
        if not volume.provider_location:
            found.append(Drift("target_unrecorded", iqn, f"a target exists for {volume.name} but no export is recorded",
                               volume.id, volume.name, repair="record the export" if exportable else None))
        elif not self.service.target.has_lun(iqn):
            found.append(Drift("lun_missing", iqn, f"the target of {volume.name} has no LUN 0: it carries no data "
                               f"(restored before the LV was active?)", volume.id, volume.name,
                               repair="replace the target, with its ACLs" if exportable else None))
        try:
            acls = set(self.service.target.acls(iqn))
        except OSError as e:
            notes.append(f"cannot read the ACLs of {iqn}: {e}")
            return found
        recorded = {c.initiator for c in volume.connections}
        for initiator in sorted(acls - recorded):
            found.append(Drift("acl_unrecorded", initiator, f"ACL on {iqn} that volctl did not record",
                               volume.id, volume.name, repair="record the connection"))
        for initiator in sorted(recorded - acls):
            found.append(Drift("acl_missing", initiator, f"recorded connection without an ACL on {iqn}",
                               volume.id, volume.name, repair="add the ACL again" if exportable else None))
        return found

    def _orphans(self, volumes: list[Volume], lvs: dict, targets: set[str]) -> list[Drift]:
        known_lvs = {(v.volume_group, v.lv_name) for v in volumes}
        known_iqns = {self.service._iqn(v) for v in volumes}
        found = [
            Drift("lv_orphaned", lv.path, f"LV named like a volctl volume, unknown to the inventory; "
                  f"left in place (lvremove {lv.vg}/{lv.name} if nobody wants it)")
            for key, lv in sorted(lvs.items())
            if key not in known_lvs and self._ours.fullmatch(lv.name)
        ]
        prefix = self.settings.target_prefix
        for iqn in sorted(targets - known_iqns):
            if iqn.startswith(prefix) and self._ours.fullmatch(iqn[len(prefix):]):
                acls = self.service.target.acls(iqn)
                repair = None if acls else "delete the target (it has no ACL, so nobody can log in)"
                detail = "target with volctl's prefix, unknown to the inventory"
                found.append(Drift("target_orphaned", iqn, detail + (f"; ACLs: {', '.join(acls)}" if acls else ""),
                                   repair=repair))
        return found

    def _snapshots(self, snapshots: list[Snapshot], volumes: list[Volume], lvs: dict, notes: list[str]) -> list[Drift]:
        found: list[Drift] = []
        for snapshot in snapshots:
            holder = self.service.locks.snapshot(snapshot.id).holder()
            if holder is not None:
                notes.append(f"snapshot {snapshot.name}: an operation is in progress (pid {holder}); not checked")
                continue
            present = (snapshot.volume_group, snapshot.lv_name) in lvs
            age = _age_seconds(snapshot.updated_at)
            if snapshot.status in SNAPSHOT_TRANSIENT and age >= self.stale_after:
                to = self._stuck_snapshot_target(snapshot, present)
                found.append(Drift("snapshot_stuck", snapshot.status, f"snapshot {snapshot.name} '{snapshot.status}' for "
                                   f"{age:.0f} s with no volctl working on it", snapshot.id, snapshot.name,
                                   repair=f"set status {to}"))
            elif not present and snapshot.status in (SnapshotStatus.AVAILABLE, SnapshotStatus.RESTORING):
                found.append(Drift("snapshot_lv_missing", snapshot.lv_path,
                                   f"the LV of {snapshot.status} snapshot {snapshot.name} is not there "
                                   f"(volctl snapshot delete {snapshot.name} drops the record)", snapshot.id, snapshot.name))
        known = {(s.volume_group, s.lv_name) for s in snapshots}
        by_id = {v.id: v for v in volumes}
        for key, lv in sorted(lvs.items()):
            if key in known:
                continue
            if self._snapshot_lv.fullmatch(lv.name):
                found.append(Drift("lv_orphaned", lv.path, "LV named like a volctl snapshot, unknown to the inventory; "
                                   f"left in place (lvremove {lv.vg}/{lv.name} if nobody wants it)"))
            elif match := self._clone_lv.fullmatch(lv.name):
                clone = by_id.get(match.group(1))
                if clone is not None and self.service.locks.volume(clone.id).holder() is not None:
                    continue  # the clone that made it is still copying from it
                found.append(Drift("clone_snapshot_left", lv.path, "temporary snapshot of a clone that did not finish "
                                   f"({clone.name + ' is ' + repr(clone.status) if clone else 'its volume is gone'})",
                                   clone.id if clone else None, clone.name if clone else None,
                                   repair="remove it (zeroing its COW store first with volume_clear = \"zero\")"))
        return found

    @staticmethod
    def _stuck_snapshot_target(snapshot: Snapshot, present: bool) -> SnapshotStatus:
        """creating and deleting go where a failure would have put them; a restoring one is
        available again if the revert left its LV (killed before the merge), else error."""
        if snapshot.status == SnapshotStatus.CREATING:
            return SnapshotStatus.ERROR
        if snapshot.status == SnapshotStatus.DELETING:
            return SnapshotStatus.ERROR_DELETING
        return SnapshotStatus.AVAILABLE if present else SnapshotStatus.ERROR

    def _saved_config(self) -> list[Drift]:
        target = self.service.target
        try:
            differ = target.unsaved(self.settings.target_prefix)
        except EnvironmentProblem as e:
            return [Drift("saved_config", str(target.save_file), str(e), repair="save it")]
        if not differ:
            return []
        if not target.save_file.exists():
            return [Drift("saved_config", str(target.save_file),
                          "no saved LIO config: the targets would not come back after a reboot", repair="save it")]
        return [Drift("saved_config", str(target.save_file),
                      f"the saved LIO config differs from the running one for: {', '.join(differ)}", repair="save it")]

    # -- repairing ---------------------------------------------------------------------------

    def repair(self, report: Report) -> Report:
        done: list[Drift] = []
        lio_changed = False
        for item in report.drift:
            if item.repair is None or item.kind == "saved_config":
                done.append(item)
                continue
            try:
                lio_changed |= self._repair(item)
                done.append(replace(item, repaired=True))
            except VolctlError as e:
                done.append(replace(item, error=str(e)))
        saved = [d for d in report.drift if d.kind == "saved_config"]
        if saved or lio_changed:
            try:
                if saved:
                    self.service.target.save()  # the whole running config: it differs beyond this run's changes
                else:
                    self.service.target.persist()
                done = [replace(d, repaired=True) if d.kind == "saved_config" else d for d in done]
            except VolctlError as e:
                done = [replace(d, error=str(e)) if d.kind == "saved_config" else d for d in done]
        return Report(tuple(done), report.notes)

    def _repair(self, item: Drift) -> bool:
        """Returns whether the running LIO config changed (so it must be saved)."""
        svc = self.service
        inv = svc.inventory()
        if item.kind == "target_orphaned":
            svc.target.delete(item.subject)
            return True
        if item.kind == "snapshot_stuck":
            self._unstick_snapshot(inv.get_snapshot(item.volume_id))
            return False
        if item.kind == "clone_snapshot_left":
            self._remove_clone_snapshot(item.subject)
            return False
        volume = inv.get(item.volume_id)
        with svc._working_on(volume):
            volume = inv.get(volume.id)
            if item.kind == "stuck":
                self._unstick(volume)
                return False
            if item.kind in ("target_missing", "lun_missing", "acl_missing"):
                from volctl.restore import Restorer  # the same code as `volctl restore`

                return Restorer(svc).ensure(volume)
            if item.kind == "target_unrecorded":
                svc._ensure_export(volume)
                return False
            if item.kind == "acl_unrecorded":
                with inv.write():
                    inv.add_connection(Connection(volume.id, item.subject, {"initiator": item.subject}, volume.updated_at))
                    inv.record(volume, "note", "doctor", detail=f"recorded the ACL of {item.subject} found on the host")
                return False
        raise VolctlError(f"no repair for {item.kind}")

    def _unstick(self, volume: Volume) -> None:
        target = self._stuck_target(volume)
        fields: dict = {}
        if volume.status == Status.EXTENDING:
            lv = self.service.lvm(volume.volume_group).get(volume.lv_name)
            if lv is not None and lv.size_bytes // GIB > volume.size:
                fields["size"] = lv.size_bytes // GIB
        if volume.status in (Status.ATTACHING, Status.DETACHING):
            fields["attach_status"] = status_from_attachments(a.attach_status for a in volume.live_attachments)[1]
        if volume.status == Status.REVERTING:
            # a revert killed between `lvchange -a n` and `-a y` left the LV inactive: no export,
            # no dd of it would find its device (and a merge still pending starts on activation)
            lvm = self.service.lvm(volume.volume_group)
            lv = lvm.get(volume.lv_name)
            if lv is not None and not lv.is_active:
                lvm.activate(volume.lv_name)
        inv = self.service.inventory()
        with inv.write():
            moved = inv.cas(volume.id, [volume.status], target, **fields)
            if moved:
                inv.record(volume, "transition", "doctor", from_status=volume.status, to_status=target,
                           detail="repaired: the operation that left it here is gone" +
                                  (f"; size {fields['size']} GiB as the LV is" if "size" in fields else ""))
        if not moved:  # someone else moved it first: theirs is the last word, and this repair did nothing
            current = inv.find(volume.id)
            raise VolctlError(f"{volume.name} changed meanwhile (now '{current.status if current else 'deleted'}'); run doctor again")

    def _unstick_snapshot(self, snapshot: Snapshot) -> None:
        svc = self.service
        with svc._working_on(snapshot):
            inv = svc.inventory()
            snapshot = inv.get_snapshot(snapshot.id)
            present = svc.lvm(snapshot.volume_group).get(snapshot.lv_name) is not None
            target = self._stuck_snapshot_target(snapshot, present)
            with inv.write():
                moved = inv.cas_snapshot(snapshot.id, [snapshot.status], target)
                if moved:
                    inv.record(snapshot, "transition", "doctor", from_status=snapshot.status, to_status=target,
                               detail="repaired: the operation that left it here is gone"
                                      + ("" if present else "; its LV is not there"))
            if not moved:
                current = inv.find_snapshot(snapshot.id)
                raise VolctlError(f"snapshot {snapshot.name} changed meanwhile (now "
                                  f"'{current.status if current else 'deleted'}'); run doctor again")

    def _remove_clone_snapshot(self, path: str) -> None:
        vg, name = path.removeprefix("/dev/").split("/", 1)
        lvm = self.service.lvm(vg)
        lv = lvm.get(name)
        if lv is not None:
            self.service._remove_snapshot_lv(lvm, lv, lv.size_bytes // GIB)
