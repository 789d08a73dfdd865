"""`volctl doctor`: compare the inventory with the host (LVs; each target helper's targets,
allowed hosts and persisted configuration) and report every drift; with repair, bring back
consistency where that loses nothing.

Repairs never remove an LV and never take away an ACL an initiator may be using; what they
cannot safely decide is reported for the operator, with the command that would settle it. Each
repair is a public method of the service (service/repairs.py), under the volume's lock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from typing import TYPE_CHECKING

from volctl.errors import CommandFailed, VolctlError
from volctl.lvm import GIB, LogicalVolume
from volctl.model import (EXPORTABLE, SNAPSHOT_TRANSIENT, TRANSIENT, UNMANAGED, Snapshot, SnapshotStatus, Status, Volume,
                          abandoned_snapshot_status, abandoned_status, still_volctls)
from volctl.service import VolumeService

if TYPE_CHECKING:
    from volctl.targets.driver import TargetDriver

DEFAULT_STALE_AFTER = 300.0
# A missing LV is expected while it is being made or removed, and after a failed create.
# A managing one's LV may still have its old name.
_LV_EXPECTED_FROM = frozenset(Status) - {Status.CREATING, Status.DELETING, Status.ERROR, Status.ERROR_DELETING,
                                         Status.MANAGING, Status.ERROR_MANAGING}


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
    family: str | None = None  # the target helper family a target's drift is in
    numbers: dict | None = None  # a thin pool's: size, data and metadata use, provisioned, the limits


@dataclass(frozen=True)
class Report:
    drift: tuple[Drift, ...]
    notes: tuple[str, ...]
    pools: tuple[dict, ...] = ()  # each thin pool's numbers (volctl/space.py limits), for --json

    @property
    def clean(self) -> bool:
        return all(d.repaired for d in self.drift)


def _age_seconds(stamp: str) -> float:
    return (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds()


def booted_at(stat: str = "/proc/stat") -> datetime | None:
    """When this host booted (the kernel's btime), None if unknown: nothing that set a busy status
    before then can still be working on it (a power cut, a crash of the host)."""
    try:
        with open(stat) as f:
            for line in f:
                if line.startswith("btime "):
                    return datetime.fromtimestamp(int(line.split()[1]), timezone.utc)
    except (OSError, ValueError):
        pass
    return None


# Busy while a command runs, never a resting state: stuck at once when set before the host booted.
# `attaching` is a reservation that waits for its attach (nova's reserve, then attach) across a
# storage host's reboot too: only its age makes it stale.
_RESTING_TRANSIENT = frozenset({Status.ATTACHING})


def stale(status: str, updated_at: str, booted: datetime | None, stale_after: float,
          now: datetime | None = None) -> tuple[float, bool] | None:
    """(its age in seconds, whether it was set before the host booted) for a volume stuck in a busy
    status with no volctl working on it; None when it is not (doctor's `stuck`, and the metrics)."""
    if status not in TRANSIENT:
        return None
    since = datetime.fromisoformat(updated_at)
    age = ((now or datetime.now(timezone.utc)) - since).total_seconds()
    before_boot = status not in _RESTING_TRANSIENT and booted is not None and since < booted
    return (age, before_boot) if age >= stale_after or before_boot else None


class Doctor:
    def __init__(self, service: VolumeService, stale_after: float = DEFAULT_STALE_AFTER):
        self.service = service
        self.settings = service.settings
        self.stale_after = stale_after
        self.booted_at = booted_at(str(service.host_root / "proc" / "stat"))
        uuid = "([0-9a-f-]{36})"
        self._ours = re.compile(re.escape(self.settings.volume_name_template).replace("%s", uuid))
        self._snapshot_lv = re.compile(re.escape(self.settings.snapshot_lv_name("@")).replace("@", uuid))
        self._clone_lv = re.compile(re.escape(self.settings.clone_snapshot_lv_name("@")).replace("@", uuid))

    # -- looking -----------------------------------------------------------------------------

    def examine(self) -> Report:
        svc, inv = self.service, self.service.inventory(write=False)
        volumes = [inv.get(v.id) for v in inv.list()]
        notes: list[str] = [*svc.lvm().host.describe()]  # which udev mode LVM runs in here, and why
        drift: list[Drift] = []
        # Whose is an LV or a target named as volctl names them: an id that is or was in the
        # inventory (and not let go by unmanage) is volctl's, any other is foreign (Cinder's,
        # after a hand-off): a note, never drift, never repaired.
        self._ever = {"volume": inv.ever_known("volume"), "snapshot": inv.ever_known("snapshot")}
        lvs = self._logical_volumes({self.settings.volume_group, *(v.volume_group for v in volumes)}, notes)
        drivers = list(svc.targets.all())
        live = {driver.family: set(driver.targets()) for driver in drivers}
        for volume in volumes:
            holder = svc.locks.volume(volume.id).holder()
            if holder is not None:
                notes.append(f"{volume.name}: an operation is in progress (pid {holder}); not checked")
                continue
            drift += self._stuck(volume)
            drift += self._lv(volume, lvs)
            drift += self._export(volume, live, notes)
        for driver in drivers:
            drift += self._orphans(driver, volumes, live[driver.family], notes)
        drift += self._lv_orphans(volumes, lvs, notes)
        drift += self._snapshots(inv.snapshots(), volumes, lvs, notes)
        for driver in drivers:
            drift += self._persistence(driver)
        pools = self._pool(inv.provisioned_gib(self.settings.volume_group), drift, notes)
        return Report(tuple(drift), tuple(notes), pools)

    def _pool(self, provisioned: int, drift: list[Drift], notes: list[str]) -> tuple[dict, ...]:
        """The thin pool's health and use against the limits (issue 23): each finding with the
        command that would help; none is repaired, as growing a pool spends the group's free space."""
        if self.settings.lvm_type != "thin":
            return ()
        from volctl import space

        vg, name = self.settings.volume_group, self.settings.thin_pool
        try:
            pool = self.service.lvm(vg).thin_pool(name)
        except CommandFailed as e:
            notes.append(f"thin pool {vg}/{name}: cannot read it: {e}")
            return ()
        if pool is None:
            if not provisioned:
                notes.append(f"thin pool {vg}/{name}: not made yet (the first create makes it)")
                return ()
            numbers = {"volume_group": vg, "pool": name, "missing": True, "provisioned_gib": provisioned}
            drift.append(Drift("pool_missing", f"{vg}/{name}", f"thin pool {vg}/{name} is not there, and the inventory "
                               f"has {provisioned} GiB provisioned in {vg}: its thin volumes went with it (vgcfgrestore "
                               f"--list {vg} shows LVM's metadata archives)", numbers=numbers))
            return (numbers,)
        numbers = space.limits(self.settings, pool, provisioned)
        drift += [Drift(f.kind, f"{vg}/{name}", f.detail, numbers=numbers)
                  for f in space.pool_findings(self.settings, pool, provisioned)]
        shown = lambda p: "?" if p is None else f"{p:g}"  # noqa: E731  (an inactive pool shows none)
        notes.append(f"thin pool {vg}/{name}: {pool.size_bytes / GIB:.2f} GiB, data {shown(pool.data_percent)} %, "
                     f"metadata {shown(pool.metadata_percent)} %, {provisioned} GiB provisioned of "
                     f"{numbers['max_provisioned_gib']:g} GiB allowed")
        return (numbers,)

    def _logical_volumes(self, vgs: set[str], notes: list[str]) -> dict[tuple[str, str], LogicalVolume]:
        found, errors = self.service.logical_volumes(vgs)
        for vg, error in errors.items():
            if not isinstance(error, CommandFailed):
                raise error  # no lvs at all, or no permission: nothing here can be checked
            notes.append(f"volume group {vg}: cannot list its LVs: {error}")
        return found

    def _stuck(self, volume: Volume) -> list[Drift]:
        found = stale(volume.status, volume.updated_at, self.booted_at, self.stale_after)
        if found is None:
            return []
        age, before_boot = found
        target = abandoned_status(volume)
        return [Drift(
            "stuck", volume.status, f"'{volume.status}' for {age:.0f} s with no volctl working on it"
                                    + (" (set before the host booted)" if before_boot else ""),
            volume.id, volume.name,
            repair=f"set status {target}" + (", activating its LV if it is inactive" if volume.status == Status.REVERTING else ""),
        )]

    def _before_boot(self, stamp: str) -> bool:
        return self.booted_at is not None and datetime.fromisoformat(stamp) < self.booted_at

    def _lv(self, volume: Volume, lvs: dict) -> list[Drift]:
        lv = lvs.get((volume.volume_group, volume.lv_name))
        if lv is None:
            if volume.status in _LV_EXPECTED_FROM:
                return [Drift("lv_missing", volume.lv_path, f"the LV of {volume.status} volume {volume.name} is not there",
                              volume.id, volume.name)]
            return []
        size = math.ceil(lv.size_bytes / GIB)  # an LV taken in is recorded rounded up, as Cinder's manage does
        if size != volume.size and volume.status != Status.EXTENDING:
            # An LV larger is an extend whose record was lost (a power cut after lvextend): recorded
            # as the LV is, as a stuck extending is. Smaller is not volctl's doing.
            outran = size > volume.size and volume.status not in TRANSIENT
            return [Drift("lv_size", volume.lv_path, f"LV is {lv.size_bytes} bytes; the inventory says {volume.size} GiB",
                          volume.id, volume.name, repair=f"record {size} GiB" if outran else None)]
        return []

    def _export(self, volume: Volume, live: dict[str, set[str]], notes: list[str]) -> list[Drift]:
        driver = self.service.targets.owner(volume)
        target = driver.target_name(volume)
        exportable = volume.status in EXPORTABLE
        is_live = target in live[driver.family]
        if volume.provider_location and not is_live:
            detail = f"{volume.name} is recorded as exported but has no target"
            if not exportable:
                detail += f" ('{volume.status}': volctl delete {volume.name} or reset-state settles it)"
            return [Drift("target_missing", target, detail, volume.id, volume.name,
                          repair="export it again with its ACLs" if exportable else None, family=driver.family)]
        if not is_live:
            return []
        found: list[Drift] = []
        if not volume.provider_location:
            found.append(Drift("target_unrecorded", target, f"a target exists for {volume.name} but no export is recorded",
                               volume.id, volume.name, repair="record the export" if exportable else None,
                               family=driver.family))
        else:
            found += [Drift(d.kind, d.subject, d.detail, volume.id, volume.name,
                            repair=d.repair if exportable else None, family=driver.family)
                      for d in driver.defects(volume)]
        try:
            hosts = set(driver.hosts(target))
        except OSError as e:
            notes.append(f"cannot read the ACLs of {target}: {e}")
            return found
        recorded = {c.initiator for c in volume.connections}
        for host in sorted(hosts - recorded):
            found.append(Drift("acl_unrecorded", host, f"ACL on {target} that volctl did not record",
                               volume.id, volume.name, repair="record the connection", family=driver.family))
        for host in sorted(recorded - hosts):
            found.append(Drift("acl_missing", host, f"recorded connection without an ACL on {target}",
                               volume.id, volume.name, repair="add the ACL again" if exportable else None,
                               family=driver.family))
        for connection in volume.connections:
            if connection.auth and connection.initiator in hosts and \
                    driver.live_host_secrets(connection.initiator) != self.service.host_secrets_of(volume).get(connection.initiator):
                found.append(Drift("host_keys", connection.initiator, f"the {connection.auth} keys of host "
                                   f"{connection.initiator} on the host are not the inventory's",
                                   volume.id, volume.name, repair="write the inventory's keys" if exportable else None,
                                   family=driver.family))
        return found

    def _volctls(self, entity: str, object_id: str, what: str, notes: list[str]) -> bool:
        """Whether an object named for this id is volctl's to report; a foreign one gets a note."""
        last = self._ever[entity].get(object_id)
        if still_volctls(last):
            return True
        why = "let go by volctl unmanage" if last == UNMANAGED else f"{entity} {object_id} was never volctl's"
        notes.append(f"foreign: {what} ({why}); not volctl's to report or repair")
        return False

    def _lv_orphans(self, volumes: list[Volume], lvs: dict, notes: list[str]) -> list[Drift]:
        known_lvs = {(v.volume_group, v.lv_name) for v in volumes}
        found = []
        for key, lv in sorted(lvs.items()):
            match = self._ours.fullmatch(lv.name)
            if key in known_lvs or not match or not self._volctls("volume", match.group(1), f"LV {lv.path}", notes):
                continue
            found.append(Drift("lv_orphaned", lv.path, "LV of a volume the inventory no longer has; left in place "
                               f"(lvremove {lv.vg}/{lv.name} if nobody wants it)"))
        return found

    def _orphans(self, driver: TargetDriver, volumes: list[Volume], live: set[str], notes: list[str]) -> list[Drift]:
        known = {driver.target_name(v) for v in volumes}
        found = []
        for target in sorted(live - known):
            volume_id = driver.volume_id_of(target)
            if volume_id is not None and self._volctls("volume", volume_id, f"target {target}", notes):
                hosts = driver.hosts(target)
                repair = None if hosts else "delete the target (it has no ACL, so nobody can log in)"
                detail = "target of a volume the inventory no longer has"
                found.append(Drift("target_orphaned", target, detail + (f"; ACLs: {', '.join(hosts)}" if hosts else ""),
                                   repair=repair, family=driver.family))
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
            if snapshot.status in SNAPSHOT_TRANSIENT and (age >= self.stale_after
                                                         or self._before_boot(snapshot.updated_at)):
                to = abandoned_snapshot_status(snapshot, present)
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
            if match := self._snapshot_lv.fullmatch(lv.name):
                if self._volctls("snapshot", match.group(1), f"LV {lv.path}", notes):
                    found.append(Drift("lv_orphaned", lv.path, "LV of a snapshot the inventory no longer has; left in "
                                       f"place (lvremove {lv.vg}/{lv.name} if nobody wants it)"))
            elif (match := self._clone_lv.fullmatch(lv.name)) and self._volctls("volume", match.group(1),
                                                                                 f"LV {lv.path}", notes):
                clone = by_id.get(match.group(1))
                if clone is not None and self.service.locks.volume(clone.id).holder() is not None:
                    continue  # the clone that made it is still copying from it
                found.append(Drift("clone_snapshot_left", lv.path, "temporary snapshot of a clone that did not finish "
                                   f"({clone.name + ' is ' + repr(clone.status) if clone else 'its volume is gone'})",
                                   clone.id if clone else None, clone.name if clone else None,
                                   repair="remove it (zeroing its COW store first with volume_clear = \"zero\")"))
        return found

    def _persistence(self, driver: TargetDriver) -> list[Drift]:
        """Whether volctl's exports would come back after a reboot. A foreign target (Cinder's,
        saved by Cinder to its own file) is not compared: its absence from volctl's saved config is
        no drift, and a repair would write it there (a whole save) for the host's restore unit."""
        return [Drift(p.kind, p.subject, p.detail, repair="save it" if p.kind == "saved_config" else None,
                      family=driver.family)
                for p in driver.persistence_problems(driver.ours_by(self._ever["volume"]))]

    # -- repairing ---------------------------------------------------------------------------

    def repair(self, report: Report) -> Report:
        done: list[Drift] = []
        changed: set[str] = set()  # families whose running configuration a repair changed
        for item in report.drift:
            if item.repair is None or item.kind == "saved_config":
                done.append(item)
                continue
            try:
                if self._repair(item):
                    changed.add(item.family)
                done.append(replace(item, repaired=True))
            except VolctlError as e:
                done.append(replace(item, error=str(e)))
        for driver in self.service.targets.all():
            stale = any(d.kind == "saved_config" and d.family == driver.family for d in report.drift)
            if not stale and driver.family not in changed:
                continue
            mine = lambda d: d.kind == "saved_config" and d.family == driver.family  # noqa: E731
            try:
                if stale:
                    driver.save()  # the whole running configuration: it differs beyond this run's changes
                else:
                    driver.persist()
                done = [replace(d, repaired=True) if mine(d) else d for d in done]
            except VolctlError as e:
                done = [replace(d, error=str(e)) if mine(d) else d for d in done]
        return Report(tuple(done), report.notes, report.pools)

    def _repair(self, item: Drift) -> bool:
        """Returns whether the running configuration of the item's target family changed (so it
        must be persisted)."""
        svc = self.service
        if item.kind == "target_orphaned":
            self._driver(item.family).remove_export(item.subject)
            return True
        if item.kind == "snapshot_stuck":
            svc.settle_abandoned_snapshot(item.volume_id)
            return False
        if item.kind == "clone_snapshot_left":
            vg, name = item.subject.removeprefix("/dev/").split("/", 1)
            svc.remove_leftover_snapshot(vg, name)
            return False
        if item.kind == "stuck":
            svc.settle_abandoned(item.volume_id)
            return False
        if item.kind == "lv_size":
            svc.record_lv_size(item.volume_id)
            return False
        if item.kind in ("target_missing", "lun_missing", "acl_missing", "namespace", "port_unlinked", "host_keys", "unmap_off"):
            return svc.restore_export(item.volume_id)[1]  # the same code as `volctl restore`
        if item.kind == "target_unrecorded":
            svc.record_live_export(item.volume_id)
            return False
        if item.kind == "acl_unrecorded":
            svc.record_connection(item.volume_id, item.subject)
            return False
        raise VolctlError(f"no repair for {item.kind}")

    def _driver(self, family: str | None) -> TargetDriver:
        return next(d for d in self.service.targets.all() if d.family == family)
