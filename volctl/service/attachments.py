"""Attachments: Cinder's reserve, unreserve, attach and detach."""

from __future__ import annotations

import uuid as uuidlib

from volctl import validate
from volctl.errors import InvalidState, NotFound, UsageError, VolctlError
from volctl.inventory import now
from volctl.model import TRANSITIONS, AttachStatus, Attachment, Guard, Status, Volume, status_from_attachments
from volctl.service.core import Outcome, ServiceCore


class Attachments(ServiceCore):
    # -- reserve / unreserve -----------------------------------------------------------------

    def reserve(self, ref: str) -> Outcome:
        """Cinder's reserve_volume: the multiattach flag is part of what must still hold."""
        volume = self.inventory().get(ref)
        volume = self._claim(
            volume, "reserve", Status.ATTACHING, values={Guard.MULTIATTACH_IS: volume.multiattach},
            previous_status=volume.status,
        )
        return Outcome(volume)

    def unreserve(self, ref: str) -> Outcome:
        inv = self.inventory()
        volume = inv.get(ref)
        status, attach_status = status_from_attachments(a.attach_status for a in volume.live_attachments)
        volume = self._claim(volume, "unreserve", status, attach_status=attach_status)
        return Outcome(volume)

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
            volume = self._claim(volume, "detach", Status.DETACHING, detail=f"attachment {attachment.id}")
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

