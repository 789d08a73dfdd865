"""Attachments: Cinder's reserve, unreserve, attach and detach."""

from __future__ import annotations

from volctl import validate
from volctl.errors import InvalidState, NotFound, UsageError, VolctlError
from volctl.inventory import now
from volctl.model import DONE, FAILED, TRANSITIONS, AttachStatus, Attachment, Guard, Status, Volume
from volctl.service.core import Outcome, new_id
from volctl.service.exports import Exports


class Attachments(Exports):
    # -- reserve / unreserve -----------------------------------------------------------------

    def reserve(self, ref: str) -> Outcome:
        """Cinder's reserve_volume: the multiattach flag is part of what must still hold."""
        volume = self.inventory().get(ref)
        volume = self._claim(volume, "reserve", values={Guard.MULTIATTACH_IS: volume.multiattach},
                             previous_status=volume.status)
        return Outcome(volume)

    def unreserve(self, ref: str) -> Outcome:
        return Outcome(self._claim(self.inventory().get(ref), "unreserve"))

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
            initiator = validate.host_id(initiator)
        inv = self.inventory()
        volume = inv.get(ref)
        with inv.write():
            volume = inv.get(volume.id)
            for attachment in volume.live_attachments:
                if attachment.instance_uuid == instance:
                    if volume.status != Status.IN_USE and volume.status in TRANSITIONS["attach"].expected(volume.multiattach):
                        self._claim(volume, "attach", detail=f"instance {instance} was already attached ({attachment.id})",
                                    attach_status=AttachStatus.ATTACHED)
                    return Outcome(inv.get(volume.id), changed=False,
                                   notes=(f"instance {instance} is already attached as {attachment.id}",),
                                   data={"attachment_id": attachment.id})
            if volume.status == Status.IN_USE and not volume.multiattach:
                raise InvalidState(volume.name, "attach", [Status.ATTACHING], volume.status,
                                   "it is already attached and multiple attachments are not enabled")
            attachment = Attachment(
                id=new_id(), volume_id=volume.id, instance_uuid=instance, attached_host=host,
                mountpoint=mountpoint, attach_mode=mode, attach_status=AttachStatus.ATTACHED, attach_time=now(),
                connector=self._connector_for(volume, host, initiator),
            )
            volume = self._claim(volume, "attach", attach_status=AttachStatus.ATTACHED,
                                 detail=f"attachment {attachment.id}: instance {instance} on {host or '-'} at "
                                        f"{mountpoint or '-'} ({mode})",
                                 also=lambda inv: inv.add_attachment(attachment))
        return Outcome(inv.get(volume.id), data={"attachment_id": attachment.id})

    def _connector_for(self, volume: Volume, host: str | None, initiator: str | None) -> dict | None:
        """Which connection the attachment rides on, so disconnect can tell shared ACLs apart."""
        if initiator:
            for connection in volume.connections:
                if connection.initiator == initiator:
                    return connection.connector
            return self.targets.owner(volume).connector_for(initiator)
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
            before = volume.status
            volume = self._claim(volume, "detach", detail=f"attachment {attachment.id}")
            remaining = [a for a in volume.live_attachments if a.id != attachment.id]
            removed, save_error, driver, target = False, None, None, None
            if not remaining:
                try:
                    driver, target, removed, save_error = self._remove_export_of(volume)
                except VolctlError as e:
                    self._finish(volume, "detach", FAILED, rollback=before,
                                 detail=f"rolled back: removing the export failed: {e}")
                    raise
            fields: dict = {}
            if removed or not remaining:
                fields.update(provider_location=None, target_helper=None, export_protocol=None)

            def detached(inv) -> None:
                inv.detach_attachment(attachment.id, now())
                if fields:
                    inv.remove_connections(volume.id)

            try:
                # Settle only from detaching: a reset-state that came in meanwhile has the last word.
                self._finish(volume, "detach", DONE, attachments=remaining, also=detached,
                             detail=f"attachment {attachment.id} detached" + ("; export removed" if removed else ""),
                             **fields)
            except InvalidState as e:
                self._note(volume, "detach", f"attachment {attachment.id} left live: the status changed while detaching"
                           + ("; its export was removed" if removed else ""))
                raise InvalidState(volume.name, "detach", [Status.DETACHING], e.current,
                                   "the status was changed while detaching") from None
            if removed:
                self._stale_save(volume, driver, "detach",
                                 f"target {target} removed and attachment {attachment.id} detached", save_error)
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

