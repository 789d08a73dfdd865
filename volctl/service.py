"""One method per use case: claim a state (compare-and-swap), act on the host, then settle or
roll back. Knows nothing of click, rich or sh; every host effect goes through lvm.py and the target helper (volctl/targets/)."""

from __future__ import annotations

import uuid as uuidlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from volctl import formats, validate
from volctl.config import Settings
from volctl.errors import InvalidState, NotFound, UsageError, VolctlError, quoted
from volctl.formats import Chap
from volctl.inventory import Inventory, now
from volctl.locks import Locks
from volctl.model import TRANSITIONS, AttachStatus, Attachment, Connection, Event, Status, Volume, status_from_attachments
from volctl.runner import CommandResult, Runner

if TYPE_CHECKING:  # imported when first used: read commands need neither (start-up, BENCHMARKS.md)
    from volctl.lvm import Lvm
    from volctl.targets.base import TargetHelper

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class Outcome:
    """What a command did: the volume as it is now, whether anything changed, and notes for a person."""

    volume: Volume | None
    changed: bool = True
    notes: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)


class VolumeService:
    def __init__(self, db_path: str | Path, settings: Settings, runner: Runner | None = None, locks: Locks | None = None,
                 configfs: Path | None = None, save_file: Path | None = None, host_root: Path | None = None):
        self.db_path = Path(db_path)
        self.settings = settings
        self.runner = runner or Runner()
        self.runner.on_command = self._on_command
        self.locks = locks or Locks(Path(f"{self.db_path}.locks"))
        self._lio_args = {key: value for key, value in (("configfs", configfs), ("save_file", save_file)) if value}
        self.host_root = host_root or Path("/")  # where the host's LIO restore unit is looked for (savefile.py)
        self._inventory: Inventory | None = None
        self._writable = False
        self._subject: Volume | None = None

    # -- plumbing ----------------------------------------------------------------------------

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
    def target(self) -> TargetHelper:
        from volctl.targets import target_helper
        from volctl.targets.base import IscsiConfig

        s = self.settings
        iscsi = IscsiConfig(s.target_prefix, s.portal_ips, s.target_port, s.target_protocol)
        return target_helper(s.target_helper, self.runner, self.locks.lio, iscsi=iscsi,
                             **{"save_file": s.save_file(self.host_root), **self._lio_args})

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
    def _working_on(self, volume: Volume, lock: bool = True) -> Iterator[None]:
        """Hold the volume's lock (external steps for one volume never interleave) and file
        every external command in its history."""
        previous = self._subject
        self._subject = volume
        try:
            if lock:
                with self.locks.volume(volume.id).held():
                    yield
            else:
                yield
        finally:
            self._subject = previous

    def _note(self, volume: Volume, action: str, detail: str) -> None:
        self.inventory().record(volume, "note", action, detail=detail)

    def _claim(self, volume: Volume, action: str, status: str, *, expected: Iterable[str] | None = None,
               extra_where: str = "", extra_params: Iterable = (), detail: str | None = None, **fields: object) -> Volume:
        """Compare-and-swap to `status` and file the transition, in one transaction."""
        transition = TRANSITIONS[action]
        wanted = frozenset(expected) if expected is not None else transition.expected(volume.multiattach)
        inv = self.inventory()
        with inv.write():
            current = inv.find(volume.id)
            won = current is not None and inv.cas(
                volume.id, wanted, status, extra_where=extra_where, extra_params=extra_params, **fields
            )
            if won:
                inv.record(volume, "transition", action, from_status=current.status, to_status=status, detail=detail)
        if not won:
            raise InvalidState(volume.name, action, sorted(wanted), current.status if current else "deleted")
        return inv.get(volume.id)

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

    def _iqn(self, volume: Volume) -> str:
        return self.target.iqn(volume)

    def _undo(self, volume: Volume, what: str, step: Callable[[], None]) -> str | None:
        """Best effort: a failed undo must not hide the error that caused it; it goes to history."""
        try:
            step()
        except VolctlError as e:
            self._note(volume, "undo", f"could not undo {what}: {e}")
            return f"could not undo {what}: {e}"
        self._note(volume, "undo", f"undid {what}")
        return None

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

    # -- reserve / unreserve -----------------------------------------------------------------

    def reserve(self, ref: str) -> Outcome:
        """Cinder's reserve_volume: the multiattach flag is part of what must still hold."""
        volume = self.inventory().get(ref)
        volume = self._claim(
            volume, "reserve", Status.ATTACHING, extra_where="AND multiattach = ?",
            extra_params=[int(volume.multiattach)], previous_status=volume.status,
        )
        return Outcome(volume)

    def unreserve(self, ref: str) -> Outcome:
        inv = self.inventory()
        volume = inv.get(ref)
        status, attach_status = status_from_attachments(a.attach_status for a in volume.live_attachments)
        volume = self._claim(volume, "unreserve", status, attach_status=attach_status)
        return Outcome(volume)

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

    # -- attach ------------------------------------------------------------------------------

    def attach(self, ref: str, *, instance: str, host: str | None = None, mountpoint: str | None = None,
               mode: str = "rw", initiator: str | None = None) -> Outcome:
        """Cinder's attach_volume: idempotent per instance; a second instance only if multiattach."""
        instance = validate.uuid_str(instance, "instance UUID")
        validate.attach_mode(mode)
        if mountpoint is not None:
            validate.mountpoint(mountpoint)
        host = validate.host_name(host) if host is not None else None
        if initiator is not None:
            initiator = validate.initiator_name(initiator)
        inv = self.inventory()
        volume = inv.get(ref)
        with inv.write():
            volume = inv.get(volume.id)
            for attachment in volume.live_attachments:
                if attachment.instance_uuid == instance:
                    if volume.status != Status.IN_USE:
                        inv.cas(volume.id, [volume.status], Status.IN_USE, attach_status=AttachStatus.ATTACHED)
                        inv.record(volume, "transition", "attach", from_status=volume.status, to_status=Status.IN_USE,
                                   detail=f"instance {instance} was already attached ({attachment.id})")
                    return Outcome(inv.get(volume.id), changed=False,
                                   notes=(f"instance {instance} is already attached as {attachment.id}",),
                                   data={"attachment_id": attachment.id})
            if volume.status == Status.IN_USE and not volume.multiattach:
                raise InvalidState(volume.name, "attach", [Status.ATTACHING], volume.status,
                                   "it is already attached and multiple attachments are not enabled")
            wanted = TRANSITIONS["attach"].expected(volume.multiattach)
            if not inv.cas(volume.id, wanted, Status.IN_USE, attach_status=AttachStatus.ATTACHED):
                raise InvalidState(volume.name, "attach", sorted(wanted), volume.status)
            attachment = Attachment(
                id=str(uuidlib.uuid4()), volume_id=volume.id, instance_uuid=instance, attached_host=host,
                mountpoint=mountpoint, attach_mode=mode, attach_status=AttachStatus.ATTACHED, attach_time=now(),
                connector=self._connector_for(volume, host, initiator),
            )
            inv.add_attachment(attachment)
            inv.record(volume, "transition", "attach", from_status=volume.status, to_status=Status.IN_USE,
                       detail=f"attachment {attachment.id}: instance {instance} on {host or '-'} at {mountpoint or '-'} ({mode})")
        return Outcome(inv.get(volume.id), data={"attachment_id": attachment.id})

    @staticmethod
    def _connector_for(volume: Volume, host: str | None, initiator: str | None) -> dict | None:
        """Which connection the attachment rides on, so disconnect can tell shared ACLs apart."""
        if initiator:
            for connection in volume.connections:
                if connection.initiator == initiator:
                    return connection.connector
            return {"initiator": initiator}
        if host:
            same_host = [c for c in volume.connections if validate.sanitize_hostname(str(c.connector.get("host", ""))) == host]
            if len(same_host) == 1:
                return same_host[0].connector
        if len(volume.connections) == 1:
            return volume.connections[0].connector
        return None

    # -- detach / disconnect / unexport ------------------------------------------------------

    def detach(self, ref: str, *, attachment_id: str | None = None, instance: str | None = None) -> Outcome:
        if attachment_id is not None and instance is not None:
            raise UsageError("--attachment and --instance exclude each other: give one")
        if attachment_id is not None:
            attachment_id = validate.uuid_str(attachment_id, "attachment id")
        if instance is not None:
            instance = validate.uuid_str(instance, "instance UUID")
        inv = self.inventory()
        with self._locked(ref, "detach") as volume:
            attachment = self._pick_attachment(volume, attachment_id, instance)
            volume = self._claim(volume, "detach", Status.DETACHING, extra_where="AND attach_status = 'attached'",
                                 detail=f"attachment {attachment.id}")
            remaining = [a for a in volume.live_attachments if a.id != attachment.id]
            removed = False
            save_error = None
            iqn = self._iqn(volume)
            if not remaining:
                try:
                    with self.locks.lio.held():
                        if volume.provider_location or self.target.exists(iqn):
                            _, save_error = self._removed_then_saved(lambda: self.target.delete(iqn))
                            removed = True
                except VolctlError as e:
                    self._claim(volume, "detach", Status.IN_USE, expected={Status.DETACHING},
                                detail=f"rolled back: removing the export failed: {e}")
                    raise
            status, attach_status = status_from_attachments(a.attach_status for a in remaining)
            fields: dict = {"attach_status": attach_status}
            if removed or not remaining:
                fields["provider_location"] = None
            with inv.write():
                # Settle only from detaching: a reset-state that came in meanwhile has the last word.
                settled = inv.cas(volume.id, [Status.DETACHING], status, **fields)
                if settled:
                    inv.detach_attachment(attachment.id, now())
                    if "provider_location" in fields:
                        inv.remove_connections(volume.id)
                    inv.record(volume, "transition", "detach", from_status=Status.DETACHING, to_status=status,
                               detail=f"attachment {attachment.id} detached" + ("; export removed" if removed else ""))
            if not settled:
                current = inv.find(volume.id)
                self._note(volume, "detach", f"attachment {attachment.id} left live: the status changed while detaching"
                           + ("; its export was removed" if removed else ""))
                raise InvalidState(volume.name, "detach", [Status.DETACHING], current.status if current else "deleted",
                                   "the status was changed while detaching")
            self._stale_save(volume, "detach", f"target {iqn} removed and attachment {attachment.id} detached", save_error)
            volume = inv.get(volume.id)
        return Outcome(volume, data={"attachment_id": attachment.id, "export_removed": removed})

    @staticmethod
    def _pick_attachment(volume: Volume, attachment_id: str | None, instance: str | None) -> Attachment:
        live = volume.live_attachments
        if attachment_id is not None:
            chosen = [a for a in live if a.id == attachment_id]
            if not chosen:
                raise NotFound(f"volume {volume.name} has no live attachment {attachment_id!r}")
            return chosen[0]
        if instance is not None:
            chosen = [a for a in live if a.instance_uuid == instance]
            if not chosen:
                raise NotFound(f"instance {instance} is not attached to volume {volume.name}")
            return chosen[0]
        if len(live) == 1:
            return live[0]
        if not live:
            raise NotFound(f"volume {volume.name} has no live attachment")
        ids = ", ".join(f"{a.id} (instance {a.instance_uuid})" for a in live)
        raise UsageError(f"volume {volume.name} has {len(live)} attachments; name one with --attachment or --instance: {ids}")

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

    # -- delete / extend ---------------------------------------------------------------------

    def delete(self, ref: str, progress: Progress | None = None) -> Outcome:
        inv = self.inventory()
        volume = inv.get(ref)
        with self._working_on(volume):
            volume = inv.get(volume.id)
            if volume.live_attachments:
                raise InvalidState(volume.name, "delete", sorted(TRANSITIONS["delete"].allowed_from), volume.status,
                                   f"{len(volume.live_attachments)} live attachment(s)")
            volume = self._claim(volume, "delete", Status.DELETING, extra_where="AND attach_status != 'attached'",
                                 previous_status=volume.status)
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
            volume = self._claim(volume, "extend", Status.EXTENDING, extra_where="AND size < ?", extra_params=[size],
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
