"""Exports: a volume's target and the hosts allowed on it (Cinder's create_export,
initialize_connection, terminate_connection, remove_export), through the target helper that
drives the volume's export (volctl/targets/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from volctl import validate
from volctl.errors import InvalidState, VolctlError
from volctl.inventory import now
from volctl.model import AttachStatus, Connection, Volume
from volctl.service.core import Outcome, ServiceCore

if TYPE_CHECKING:
    from volctl.targets.driver import TargetDriver


class Exports(ServiceCore):
    # -- export / connect --------------------------------------------------------------------

    def export(self, ref: str, *, protocol: str | None = None) -> Outcome:
        with self._locked(ref, "export") as volume:
            volume, created = self._ensure_export(volume, protocol=protocol)
        return Outcome(volume, changed=created, notes=() if created else (f"{volume.name} is already exported",))

    def _exporter(self, volume: Volume, action: str, protocol: str | None) -> tuple[TargetDriver, Volume]:
        """The helper for the volume's export and the volume as it sees it: a recorded export's
        protocol and helper, else the protocol asked for (else target_protocol). Asking for
        another protocol than a recorded export's is refused (exit 5) before anything changes."""
        chosen = self.targets.protocol_for(volume, protocol)
        if protocol is not None and protocol != chosen:
            raise InvalidState(volume.name, action, [], volume.status,
                               f"it is exported over {chosen}, not {protocol}: volctl unexport {volume.name} first")
        return self.targets.owner(volume, chosen), volume.but(export_protocol=chosen)

    def _ensure_export(self, volume: Volume, *, protocol: str | None = None, save: bool = True) -> tuple[Volume, bool]:
        """Cinder's create_export. Returns (volume, whether this call created the target).
        save=False leaves the persist to the caller, so a change set pays one: a helper may
        rewrite its whole configuration on each, a cost that grows with every target on the host
        (BENCHMARKS.md)."""
        inv = self.inventory()
        recorded = volume
        driver, volume = self._exporter(volume, "export", protocol)
        target = driver.target_name(volume)
        with driver.locked():
            # Asked once: nothing changes the host's targets before create, and the helper's lock
            # keeps other volctl out. A failure below may remove the target only if this call made it.
            existed = driver.is_live(target)
            if volume.provider_location and existed:
                return volume, False
            secrets = driver.new_secrets(volume)
            if secrets is not None:
                with inv.write():
                    inv.update(volume.id, **secrets.fields)
                    inv.record(volume, "note", "export", detail=secrets.note)
                volume = inv.get(volume.id).but(export_protocol=volume.export_protocol)
            try:
                if not existed:
                    driver.create_export(volume)
                else:
                    driver.touch(target)  # live but unrecorded: maybe never persisted either
                if save:
                    driver.persist()
            except VolctlError:
                if not existed:
                    self._undo(volume, f"target {target}", lambda: self._remove_target(driver, target))
                raise
            location = driver.location(volume)
            if secrets is None and (recorded.provider_location, recorded.target_helper, recorded.export_protocol) == \
                    (location, driver.name, volume.export_protocol):
                return recorded, not existed  # re-made as recorded (restore, whose note says so): one write less each
            with inv.write():
                inv.update(volume.id, provider_location=location, target_helper=driver.name,
                           export_protocol=volume.export_protocol)
                inv.record(volume, "note", "export", detail=f"exported as {location}")
        return inv.get(volume.id), not existed

    @staticmethod
    def _remove_target(driver: TargetDriver, target: str) -> None:
        with driver.changes():
            driver.remove_export(target)

    @staticmethod
    def _removed_then_saved(driver: TargetDriver, remove: Callable[[], object]) -> tuple[object, VolctlError | None]:
        """A removal that worked is a fact on the host even when the persist after it fails: the
        caller records it, so the inventory never claims a target or an allowed host that is gone,
        and then raises the persist's error (exit 6; doctor reports the stale saved config until a
        save succeeds)."""
        with driver.locked():
            result = remove()
            try:
                driver.persist()
            except VolctlError as e:
                return result, e
        return result, None

    def _stale_save(self, volume: Volume, driver: TargetDriver, action: str, removed: str,
                    error: VolctlError | None) -> None:
        if error is not None:
            self._note(volume, action, f"{removed}, but the {driver.what} could not be saved: the saved config still "
                                       f"has it until a save succeeds (volctl doctor --repair saves)")
            raise error

    def _host(self, driver: TargetDriver, connector: dict | None, initiator: str | None) -> tuple[dict, str]:
        """(the connector, the host it names) for this helper's protocol: `--initiator` stands for
        a connector with the protocol's key; a connector is validated as it entered."""
        connector = validate.connector_dict(connector) if connector is not None else driver.connector_for(initiator)
        return connector, driver.host_of(connector)

    def _host_credentials(self, volume: Volume, driver: TargetDriver, host: str) -> dict | None:
        """The host's own credentials where the helper uses them: stored, or made now and stored
        before any target has them (as a volume's own credentials are, write-ahead)."""
        inv = self.inventory()
        use, new = driver.credentials_for(host, inv.host_credentials(driver.family, host))
        if new is not None:
            with inv.write():
                inv.add_host_credentials(driver.family, host, new.fields, now())
                inv.record(volume, "note", "connect", detail=new.note)
        return use

    def connect(self, ref: str, connector: dict | None = None, *, initiator: str | None = None,
                protocol: str | None = None, multipath: bool = False) -> Outcome:
        inv = self.inventory()
        # A host named for another protocol is bad input: refused before the volume's lock is
        # waited for (and asked again under it, where the export may have changed meanwhile).
        self._host(self._exporter(inv.get(ref), "connect", protocol)[0], connector, initiator)
        with self._locked(ref, "connect") as volume:
            driver, _ = self._exporter(volume, "connect", protocol)
            connector, host = self._host(driver, connector, initiator)
            credentials = self._host_credentials(volume, driver, host)
            # one persist below covers target and host
            volume, created = self._ensure_export(volume, protocol=protocol, save=False)
            target = driver.target_name(volume)
            allowed = False
            try:
                with driver.locked():
                    driver.allow(volume, host, credentials)
                    allowed = True
                    driver.persist()
            except VolctlError:
                if created:
                    self._undo(volume, f"export {target}", lambda: self._drop_export(volume, driver, target))
                elif allowed and all(c.initiator != host for c in volume.connections):
                    # an ACL the inventory does not record must not outlive the failed call
                    self._undo(volume, f"ACL for {host}", lambda: self._remove_host(driver, target, host))
                raise
            auth = driver.auth_method if credentials else None
            with inv.write():
                inv.add_connection(Connection(volume.id, host, connector, now(), auth))
                inv.record(volume, "note", "connect", detail=f"ACL for {host}" + (f" ({auth})" if auth else ""))
            volume = inv.get(volume.id)
        mode = connector.get("mode") if connector.get("mode") in ("rw", "ro") else "rw"
        for attachment in volume.live_attachments:
            if self._rides_on(driver, attachment, host):
                mode = attachment.attach_mode
        info = driver.connection_info(volume, connector, mode, force_multipath=multipath, host_secrets=credentials)
        if driver.advertises_discard(volume):
            # As Cinder's manager does with report_discard_supported: set where the helper left it out.
            info["data"].setdefault("discard", True)
        return Outcome(volume, data=info)

    @staticmethod
    def _rides_on(driver: TargetDriver, attachment, host: str) -> bool:
        """Whether an attachment is through this host's connection."""
        try:
            return driver.host_of(attachment.connector or {}) == host
        except VolctlError:
            return False

    def _drop_export(self, volume: Volume, driver: TargetDriver, target: str) -> None:
        removed = False
        try:
            self._remove_target(driver, target)
            removed = True
        finally:  # the export was this call's: the inventory goes back to unexported even if save failed
            inv = self.inventory()
            with inv.write():
                inv.update(volume.id, provider_location=None, target_helper=None, export_protocol=None)
                inv.remove_connections(volume.id)
                inv.record(volume, "note", "unexport",
                           detail=f"target {target} removed" if removed else f"export {target} dropped; removing the target failed")

    @staticmethod
    def _remove_host(driver: TargetDriver, target: str, host: str) -> None:
        with driver.changes():
            driver.disallow(target, host)

    def disconnect(self, ref: str, connector: dict | None = None, *, initiator: str | None = None) -> Outcome:
        """Cinder's terminate_connection, with the LVM driver's rule for shared initiators."""
        inv = self.inventory()
        self._host(self.targets.owner(inv.get(ref)), connector, initiator)  # bad input before the lock, as connect
        with self._locked(ref, "disconnect") as volume:
            driver = self.targets.owner(volume)
            connector, host = self._host(driver, connector, initiator)
            if not volume.provider_location:
                with inv.write():
                    inv.remove_connection(volume.id, host)
                    inv.record(volume, "note", "disconnect", detail=f"not exported; no ACL for {host} to remove")
                return Outcome(volume, changed=False, notes=(f"{volume.name} is not exported; nothing to disconnect",))
            sharing = [a for a in volume.live_attachments if self._rides_on(driver, a, host)]
            if volume.multiattach and len(sharing) > 1:
                detail = f"ACL for {host} kept: {len(sharing)} live attachments use it"
                self._note(volume, "disconnect", detail)
                return Outcome(volume, changed=False, notes=(detail,))
            target = driver.target_name(volume)

            found, save_error = self._removed_then_saved(driver, lambda: driver.disallow(target, host))
            with inv.write():
                inv.remove_connection(volume.id, host)
                detail = f"ACL for {host} removed" if found else f"ACL for {host} was not there"
                inv.record(volume, "note", "disconnect", detail=detail)
            self._stale_save(volume, driver, "disconnect", f"ACL for {host} removed", save_error)
            volume = inv.get(volume.id)
        return Outcome(volume, changed=found, notes=() if found else (f"no ACL for {host} on {volume.name}",))

    def unexport(self, ref: str) -> Outcome:
        """Cinder's remove_export. provider_auth stays: the credentials live as long as the volume."""
        inv = self.inventory()
        with self._locked(ref, "unexport") as volume:
            if volume.live_attachments or volume.attach_status == AttachStatus.ATTACHED:
                raise InvalidState(volume.name, "unexport", ["available"], volume.status,
                                   f"{len(volume.live_attachments)} live attachment(s); detach first")
            driver = self.targets.owner(volume)
            target = driver.target_name(volume)
            save_error = None
            with driver.locked():
                present = driver.exists(target)
                if present:
                    _, save_error = self._removed_then_saved(driver, lambda: driver.remove_export(target))
            if not present and not volume.provider_location:
                return Outcome(volume, changed=False, notes=(f"{volume.name} is not exported",))
            with inv.write():
                inv.update(volume.id, provider_location=None, target_helper=None, export_protocol=None)
                inv.remove_connections(volume.id)
                inv.record(volume, "note", "unexport",
                           detail=f"target {target} removed" if present else f"target {target} was already gone")
            self._stale_save(volume, driver, "unexport", f"target {target} removed", save_error)
            volume = inv.get(volume.id)
        return Outcome(volume)

    # -- used by detach and delete ----------------------------------------------------------

    def _remove_export_of(self, volume: Volume) -> tuple[TargetDriver, str, bool, VolctlError | None]:
        """Remove the volume's target when it is recorded or live, and persist: (the helper, the
        target, whether it was removed, the persist's error)."""
        driver = self.targets.owner(volume)
        target = driver.target_name(volume)
        with driver.locked():
            if volume.provider_location or driver.exists(target):
                _, save_error = self._removed_then_saved(driver, lambda: driver.remove_export(target))
                return driver, target, True, save_error
        return driver, target, False, None

    def _remove_live_export_of(self, volume: Volume) -> None:
        """Remove the volume's target if it is live (delete: recorded or not, it goes with the LV)."""
        driver = self.targets.owner(volume)
        target = driver.target_name(volume)
        with driver.locked():
            if driver.exists(target):
                self._remove_target(driver, target)
