"""The iSCSI target template, as Cinder's `volume/targets/iscsi.py` is for its LIO and tgt
helpers: a target named prefix + LV name, one-way CHAP made once per volume and reused on every
export, the portals with the iSER flag, Cinder's provider_location and connection info. The
names and formats themselves are volctl/iscsi.py's.

A helper below it makes, on its host, a target with LUN 0 on the volume's device and the
portals (`_create`), removes one (`_delete`), and adds or removes an initiator's ACL with the
volume's CHAP (`_add_initiator`, `_delete_initiator`); the template's public `create`, `delete`,
`add_initiator` and `delete_initiator` run them under the lock, as the driver's steps do.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Sequence

from volctl import iscsi
from volctl.errors import UsageError
from volctl.iscsi import Chap, IscsiConfig
from volctl.locks import FileLock
from volctl.targets.driver import Secrets, TargetDriver

if TYPE_CHECKING:
    from volctl.model import Volume


class IscsiTarget(TargetDriver):
    protocols = iscsi.PROTOCOLS
    data_unit = "LUN 0"

    def __init__(self, lock: FileLock, iscsi_config: IscsiConfig = IscsiConfig()):
        super().__init__(lock)
        self.iscsi = iscsi_config

    # -- names, credentials and formats ------------------------------------------------------

    def target_name(self, volume: Volume) -> str:
        """The recorded target, else prefix + LV name (Cinder's iscsi_target_prefix + name)."""
        return iscsi.recorded_iqn(volume.provider_location) or self.iscsi.iqn(volume.lv_name)

    def volume_id_of(self, target: str) -> str | None:
        return self.iscsi.volume_id_of(target)

    def new_secrets(self, volume: Volume) -> Secrets | None:
        chap, new = iscsi.credentials(volume.provider_auth)
        if not new:
            return None
        return Secrets({"provider_auth": iscsi.provider_auth(chap)},
                       f"generated credentials for initiators: user {chap.username}, password not shown")

    def location(self, volume: Volume) -> str:
        return iscsi.provider_location(self.iscsi.ips, self.iscsi.port, self.target_name(volume))

    def host_of(self, connector: dict) -> str:
        """The connector's `initiator` (validated where the connector entered)."""
        host = connector.get("initiator")
        if not isinstance(host, str):
            raise UsageError("the connector has no 'initiator': an iSCSI export needs the initiator name")
        return host

    @property
    def default_protocol(self) -> str:
        return self.iscsi.protocol

    def connector_for(self, host: str) -> dict:
        from volctl.nvmeof import looks_like_nqn

        if looks_like_nqn(host):
            raise UsageError(f"{host} is a host NQN, and this export is iSCSI: give the initiator's IQN "
                             "(or export over nvmet_tcp)")
        return {"initiator": host}

    def protocol_of(self, volume: Volume) -> str:
        return volume.export_protocol or self.iscsi.protocol

    def same_host(self, a: str, b: str) -> bool:
        """iSCSI names are case-insensitive (RFC 3722), and LIO stores them lower-case."""
        return a.lower() == b.lower()

    def rescan_hint(self, volume: Volume, host: str) -> str:
        """The session's rescan (os-brick's extend_volume rescans each path's SCSI device)."""
        return f"iscsiadm -m node -T {self.target_name(volume)} -R"

    def connection_info(self, volume: Volume, connector: dict, access_mode: str,
                        force_multipath: bool = False, host_secrets: dict | None = None) -> dict:
        return iscsi.connection_info(
            volume_id=volume.id, location=volume.provider_location, auth=volume.provider_auth,
            protocol=self.protocol_of(volume), connector=connector, access_mode=access_mode, force_multipath=force_multipath,
        )

    @staticmethod
    def chap(volume: Volume) -> Chap:
        chap = iscsi.parse_provider_auth(volume.provider_auth)
        if chap is None:  # the service stores new_secrets() before any export
            raise ValueError(f"volume {volume.name} has no CHAP credentials")
        return chap

    # -- the driver's steps, in iSCSI terms --------------------------------------------------

    def _create_export(self, volume: Volume, target: str) -> None:
        self.create(volume.lv_path, target, self.chap(volume), iser=self.protocol_of(volume) == "iser",
                    ips=self.iscsi.ips, port=self.iscsi.port, unmap=self.advertises_discard(volume))

    def _remove_export(self, target: str) -> None:
        self.delete(target)

    def _allow(self, volume: Volume, target: str, host: str, host_secrets: dict | None) -> None:
        self.add_initiator(target, self.chap(volume), host)  # the volume's CHAP: iSCSI hosts have none of their own

    def _disallow(self, target: str, host: str) -> bool:
        return self.delete_initiator(target, host)

    # -- the template's own operations (Cinder's create_iscsi_target and the rest): each under
    # -- the lock, its target pending for the next persist --------------------------------------

    def create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int,
               unmap: bool = False) -> None:
        """unmap: the LUN advertises UNMAP, set before the change set's persist, so the saved config
        (and every restore of it) carries it."""
        with self.changing(iqn):
            self._create(device, iqn, chap, iser=iser, ips=ips, port=port)
            if unmap:
                self._advertise_unmap(iqn)

    def delete(self, iqn: str) -> None:
        with self.changing(iqn):
            self._delete(iqn)

    def add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        """An ACL with the volume's CHAP and LUN 0 mapped; an ACL already there is left as it is."""
        with self.changing(iqn):
            self._add_initiator(iqn, chap, initiator)

    def delete_initiator(self, iqn: str, initiator: str) -> bool:
        """False when the ACL (or its whole target) was already gone."""
        with self.changing(iqn):
            return self._delete_initiator(iqn, initiator)

    # -- what each iSCSI helper implements ---------------------------------------------------

    @abstractmethod
    def _create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None: ...

    @abstractmethod
    def _advertise_unmap(self, iqn: str) -> None:
        """The target's LUN advertises UNMAP and WRITE SAME with unmap (LIO: emulate_tpu, emulate_tpws)."""

    @abstractmethod
    def _delete(self, iqn: str) -> None: ...

    @abstractmethod
    def _add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None: ...

    @abstractmethod
    def _delete_initiator(self, iqn: str, initiator: str) -> bool: ...
