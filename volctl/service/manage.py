"""Taking existing LVs in and letting volumes go, as Cinder's manage_existing and unmanage do
(cinder/volume/drivers/lvm.py; ../shared/reference/cinder-manage.md): an LV of the volume group
becomes a volume under volctl's name for it, and a volume leaves the inventory with its LV left
in place, ready for another owner (Cinder's LVM backend: README "When one host is not enough")."""

from __future__ import annotations

import math
import re
import uuid as uuidlib
from typing import TYPE_CHECKING

from volctl import validate
from volctl.errors import AlreadyExists, ExitCode, NotFound, VolctlError
from volctl.model import DONE, FAILED, GIB
from volctl.service.core import Outcome
from volctl.service.exports import Exports

if TYPE_CHECKING:
    from volctl.lvm import LogicalVolume

ALREADY_MANAGED = "already managed"


class NotManageable(VolctlError):
    """An LV that is not safe to take in (open, a snapshot, the thin pool ...): exit 5."""

    exit_code = ExitCode.INVALID_STATE


class Managing(Exports):
    # -- listing -----------------------------------------------------------------------------

    def manageable(self) -> list[dict]:
        """Cinder's get_manageable_volumes entries for the volume group's LVs, from one `lvs` of
        the group (Cinder runs two lvdisplay per LV), by name."""
        vg = self.settings.volume_group
        lvs = self.lvm(vg).list()
        known = self._lv_owners(vg)
        entries = []
        for lv in sorted(lvs, key=lambda lv: lv.name):
            reason = self._not_safe(lv, known)
            entries.append({"reference": {"source-name": lv.name}, "size": math.ceil(lv.size_bytes / GIB),
                            "safe_to_manage": reason is None, "reason_not_safe": reason,
                            "cinder_id": known.get(lv.name) if reason == ALREADY_MANAGED else None, "extra_info": None})
        return entries

    def _lv_owners(self, vg: str) -> dict[str, str | None]:
        """LV name -> the id of the volume that has it (snapshot LVs: None)."""
        inv = self.inventory(write=False)
        owners: dict[str, str | None] = {v.lv_name: v.id for v in inv.list() if v.volume_group == vg}
        owners.update({s.lv_name: None for s in inv.snapshots() if s.volume_group == vg})
        return owners

    def _not_safe(self, lv: LogicalVolume, known: dict[str, str | None]) -> str | None:
        """Why an LV may not be taken in, in Cinder's words where it has them ("already managed",
        "volume in use"); None when it may."""
        if known.get(lv.name) is not None:
            return ALREADY_MANAGED
        if lv.name in known:
            return "a snapshot"  # one of volctl's
        if lv.is_thin_pool:
            return "the thin pool"
        if lv.is_thick_snapshot or re.fullmatch(re.escape(self.settings.snapshot_lv_name("@")).replace("@", ".+"), lv.name):
            return "a snapshot"
        if re.fullmatch(re.escape(self.settings.clone_snapshot_lv_name("@")).replace("@", ".+"), lv.name):
            return "a temporary clone snapshot"
        if lv.is_open:
            return "volume in use"
        return None

    # -- manage ------------------------------------------------------------------------------

    def manage(self, source_name: str, *, name: str | None = None, multiattach: bool = False) -> Outcome:
        """Cinder's manage_existing: an LV of volume_group becomes a volume with a new id, renamed to
        volctl's name for it (managing -> available, or error_managing when the rename fails)."""
        source = validate.lv_name(source_name)
        if name is not None:
            name = validate.volume_name(name)
        vg = self.settings.volume_group
        lvm = self.lvm(vg)
        self.inventory()  # made before any lock file is (its directory holds them)
        with self.locks.lv(vg, source).held():  # two takers of one LV: one renames it, the other finds it gone
            lv = lvm.get(source)
            if lv is None:
                raise NotFound(f"no LV {source!r} in volume group {vg}")
            known = self._lv_owners(vg)
            owner = known.get(source)
            reason = self._not_safe(lv, known)
            if reason == ALREADY_MANAGED:
                raise AlreadyExists(f"LV {vg}/{source} is already managed" + (f" (volume {owner})" if owner else ""))
            if reason is not None:
                raise NotManageable(f"LV {vg}/{source} is not safe to manage: {reason}")
            volume_id = str(uuidlib.uuid4())
            size = math.ceil(lv.size_bytes / GIB)
            new_lv = self.settings.lv_name(volume_id)
            volume = self._new_volume("manage", volume_id, name or volume_id, size, multiattach, vg,
                                      f"LV {vg}/{source} ({lv.size_bytes} bytes, {size} GiB)", lv_name=new_lv)
            with self._working_on(volume):
                volume = self._settle(volume, "manage", lambda: lvm.rename(source, new_lv))
                self._note(volume, "manage", f"took in LV {vg}/{source}, now {vg}/{new_lv}")
        return Outcome(volume)

    # -- unmanage ----------------------------------------------------------------------------

    def unmanage(self, ref: str) -> Outcome:
        """Cinder's unmanage: the export goes first (its target, hosts and saved entry: a live one
        would keep the old device path in the saved config, and the next owner's export would add a
        second target on the LV), then volctl forgets the volume; its history stays, the LV stays."""
        inv = self.inventory()
        volume = inv.get(ref)
        with self._working_on(volume):
            volume = inv.get(volume.id)
            before = volume.status
            volume = self._claim(volume, "unmanage", previous_status=volume.status)
            try:
                driver, target, removed, save_error = self._remove_export_of(volume)
                if save_error is not None:
                    raise save_error
            except VolctlError as e:
                self._finish(volume, "unmanage", FAILED, rollback=before, detail=f"rolled back: {e}")
                raise
            lv = f"{volume.volume_group}/{volume.lv_name}"
            self._finish(volume, "unmanage", DONE, detail=f"LV {lv} left in place" +
                         (f"; export {target} removed" if removed else ""))
        return Outcome(None, notes=(f"{volume.name} is no longer volctl's; its LV {lv} stays",), data={
            "id": volume.id, "name": volume.name, "lv": lv, "unmanaged": True,
            "cinder_manage": f"cinder manage --name {volume.name} <host@backend#pool> {volume.lv_name}",
        })
