"""Exports: the LIO target and its ACLs (Cinder's create_export, initialize_connection,
terminate_connection, remove_export)."""

from __future__ import annotations

from typing import Callable

from volctl import formats, validate
from volctl.errors import InvalidState, VolctlError
from volctl.inventory import now
from volctl.model import AttachStatus, Connection, Volume
from volctl.service.core import Outcome, ServiceCore


class Exports(ServiceCore):
    # -- export / connect --------------------------------------------------------------------

    def export(self, ref: str) -> Outcome:
        with self._locked(ref, "export") as volume:
            volume, created = self._ensure_export(volume)
        return Outcome(volume, changed=created, notes=() if created else (f"{volume.name} is already exported",))

    def _ensure_export(self, volume: Volume, *, save: bool = True) -> tuple[Volume, bool]:
        """Cinder's create_export for LIO. Returns (volume, whether this call created the target).
        save=False leaves the persist to the caller, so a change set pays one: lioadm's rewrites
        the whole LIO configuration, and its cost grows with every target on the host (BENCHMARKS.md)."""
        inv = self.inventory()
        iqn = self._iqn(volume)
        with self.locks.lio.held():
            # Asked once: nothing changes LIO before create, and the LIO lock keeps other volctl out.
            # A failure below may remove the target only if this call made it.
            existed = self.target.is_live(iqn)
            if volume.provider_location and existed:
                return volume, False
            chap, new = self.target.credentials(volume.provider_auth)
            if new:
                with inv.write():
                    inv.update(volume.id, provider_auth=formats.provider_auth(chap))
                    inv.record(volume, "note", "export", detail=f"generated credentials for initiators: user {chap.username}, password not shown")
            try:
                if not existed:
                    self.target.export(volume.lv_path, iqn, chap)
                else:
                    self.target.touch(iqn)  # live but unrecorded: maybe never saved either
                if save:
                    self.target.persist()
            except VolctlError:
                if not existed:
                    self._undo(volume, f"target {iqn}", lambda: self._remove_target(iqn))
                raise
            location = self.target.location(iqn)
            with inv.write():
                inv.update(volume.id, provider_location=location)
                inv.record(volume, "note", "export", detail=f"exported as {location}")
        return inv.get(volume.id), not existed

    def _remove_target(self, iqn: str) -> None:
        with self.target.changes():
            self.target.delete(iqn)

    def _removed_then_saved(self, remove: Callable[[], object]) -> tuple[object, VolctlError | None]:
        """A removal that worked is a fact on the host even when the save after it fails: the caller
        records it, so the inventory never claims a target or ACL that is gone, and then raises the
        save's error (exit 6; doctor reports the stale saved config until a save succeeds)."""
        with self.locks.lio.held():
            result = remove()
            try:
                self.target.persist()
            except VolctlError as e:
                return result, e
        return result, None

    def _stale_save(self, volume: Volume, action: str, removed: str, error: VolctlError | None) -> None:
        if error is not None:
            self._note(volume, action, f"{removed}, but the LIO config could not be saved: the saved config still "
                                       f"has it until a save succeeds (volctl doctor --repair saves)")
            raise error

    def connect(self, ref: str, connector: dict, *, multipath: bool = False) -> Outcome:
        connector = validate.connector_dict(connector)
        initiator = connector["initiator"]
        inv = self.inventory()
        with self._locked(ref, "connect") as volume:
            volume, created = self._ensure_export(volume, save=False)  # one save below covers target and ACL
            chap = formats.parse_provider_auth(volume.provider_auth)
            iqn = self._iqn(volume)
            acl_added = False
            try:
                with self.locks.lio.held():
                    self.target.add_initiator(iqn, chap, initiator)
                    acl_added = True
                    self.target.persist()
            except VolctlError:
                if created:
                    self._undo(volume, f"export {iqn}", lambda: self._drop_export(volume, iqn))
                elif acl_added and all(c.initiator != initiator for c in volume.connections):
                    # an ACL the inventory does not record must not outlive the failed call
                    self._undo(volume, f"ACL for {initiator}", lambda: self._remove_acl(iqn, initiator))
                raise
            with inv.write():
                inv.add_connection(Connection(volume.id, initiator, connector, now()))
                inv.record(volume, "note", "connect", detail=f"ACL for {initiator}")
            volume = inv.get(volume.id)
        mode = connector.get("mode") if connector.get("mode") in ("rw", "ro") else "rw"
        for attachment in volume.live_attachments:
            if attachment.initiator == initiator:
                mode = attachment.attach_mode
        info = self.target.connection_info(volume, connector, mode, force_multipath=multipath)
        return Outcome(volume, data=info)

    def _drop_export(self, volume: Volume, iqn: str) -> None:
        removed = False
        try:
            self._remove_target(iqn)
            removed = True
        finally:  # the export was this call's: the inventory goes back to unexported even if save failed
            inv = self.inventory()
            with inv.write():
                inv.update(volume.id, provider_location=None)
                inv.remove_connections(volume.id)
                inv.record(volume, "note", "unexport",
                           detail=f"target {iqn} removed" if removed else f"export {iqn} dropped; removing the target failed")

    def _remove_acl(self, iqn: str, initiator: str) -> None:
        with self.target.changes():
            self.target.delete_initiator(iqn, initiator)

    def disconnect(self, ref: str, connector: dict) -> Outcome:
        """Cinder's terminate_connection for LIO, with the LVM driver's rule for shared initiators."""
        connector = validate.connector_dict(connector)
        initiator = connector["initiator"]
        inv = self.inventory()
        with self._locked(ref, "disconnect") as volume:
            if not volume.provider_location:
                with inv.write():
                    inv.remove_connection(volume.id, initiator)
                    inv.record(volume, "note", "disconnect", detail=f"not exported; no ACL for {initiator} to remove")
                return Outcome(volume, changed=False, notes=(f"{volume.name} is not exported; nothing to disconnect",))
            sharing = [a for a in volume.live_attachments if a.initiator == initiator]
            if volume.multiattach and len(sharing) > 1:
                detail = f"ACL for {initiator} kept: {len(sharing)} live attachments use it"
                self._note(volume, "disconnect", detail)
                return Outcome(volume, changed=False, notes=(detail,))
            iqn = self._iqn(volume)

            found, save_error = self._removed_then_saved(lambda: self.target.delete_initiator(iqn, initiator))
            with inv.write():
                inv.remove_connection(volume.id, initiator)
                detail = f"ACL for {initiator} removed" if found else f"ACL for {initiator} was not there"
                inv.record(volume, "note", "disconnect", detail=detail)
            self._stale_save(volume, "disconnect", f"ACL for {initiator} removed", save_error)
            volume = inv.get(volume.id)
        return Outcome(volume, changed=found, notes=() if found else (f"no ACL for {initiator} on {volume.name}",))

    def unexport(self, ref: str) -> Outcome:
        """Cinder's remove_export. provider_auth stays: the credentials live as long as the volume."""
        inv = self.inventory()
        with self._locked(ref, "unexport") as volume:
            if volume.live_attachments or volume.attach_status == AttachStatus.ATTACHED:
                raise InvalidState(volume.name, "unexport", ["available"], volume.status,
                                   f"{len(volume.live_attachments)} live attachment(s); detach first")
            iqn = self._iqn(volume)
            save_error = None
            with self.locks.lio.held():
                present = self.target.exists(iqn)
                if present:
                    _, save_error = self._removed_then_saved(lambda: self.target.delete(iqn))
            if not present and not volume.provider_location:
                return Outcome(volume, changed=False, notes=(f"{volume.name} is not exported",))
            with inv.write():
                inv.update(volume.id, provider_location=None)
                inv.remove_connections(volume.id)
                inv.record(volume, "note", "unexport", detail=f"target {iqn} removed" if present else f"target {iqn} was already gone")
            self._stale_save(volume, "unexport", f"target {iqn} removed", save_error)
            volume = inv.get(volume.id)
        return Outcome(volume)

