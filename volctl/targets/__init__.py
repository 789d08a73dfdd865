"""Target helpers and the registry that hands them out, as Cinder builds one target driver per
backend from `volume/targets/`.

A helper belongs to a family: the host subsystem it drives. `target_helper` picks the LIO
family's helper, `lioadm` (cinder-rtstool, the default) or `rtslib` (in-process); both make the
same objects under the same lock and save to the same file, so whichever is configured drives
every LIO export, whichever made it. The nvmet family has one helper, `nvmet` (NVMe/TCP). Each
export records the helper that made it and its protocol; the registry gives the service the
helper for a protocol (`target_protocol` for new exports), the one that drives a given volume's
export, and all of them, for doctor and restore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from volctl.errors import EnvironmentProblem

if TYPE_CHECKING:
    from pathlib import Path

    from volctl.config import Settings
    from volctl.locks import Locks
    from volctl.model import Volume
    from volctl.runner import Runner
    from volctl.targets.driver import TargetDriver

HELPERS = ("lioadm", "rtslib")  # what `target_helper` may name
FAMILIES = {"lioadm": "lio", "rtslib": "lio", "nvmet": "nvmet"}
PROTOCOL_FAMILIES = {"iscsi": "lio", "iser": "lio", "nvmet_tcp": "nvmet"}
# Before exports recorded their helper (migration m003) every export was LIO's.
LEGACY_FAMILY = "lio"


class Targets:
    """The helpers of one process, one per family, each made when first asked for (a read
    command makes none)."""

    def __init__(self, builders: dict[str, Callable[[], TargetDriver]], families: dict[str, str], default_family: str,
                 default_protocol: str | None = None, protocols: dict[str, str] | None = None):
        """builders: family -> what makes its helper; families: helper name -> family, for every
        helper an inventory may name; default_family: the family new exports go to, with
        default_protocol (None: the helper's first); protocols: protocol -> family."""
        self._builders = builders
        self._families = families
        self._default_family = default_family
        self._protocols = protocols if protocols is not None else PROTOCOL_FAMILIES
        self._built: dict[str, TargetDriver] = {}
        self.default_protocol = default_protocol

    @classmethod
    def from_settings(cls, settings: Settings, runner: Runner, locks: Locks, *, configfs: Path | None = None,
                      save_file: Path | None = None, host_root: Path | None = None, nvmet_root: Path | None = None,
                      nvmet_save_file: Path | None = None) -> Targets:
        """The paths override the host's own (tests run whole processes against a fake host):
        configfs and save_file LIO's, nvmet_root and nvmet_save_file nvmet's."""
        from pathlib import Path

        root = host_root or Path("/")

        def lio() -> TargetDriver:
            from volctl.iscsi import PROTOCOLS, IscsiConfig

            paths = {"save_file": save_file or settings.save_file(root), "host_root": root}
            if configfs is not None:
                paths["configfs"] = configfs
            # the protocol of an LIO export made before exports recorded theirs (m004)
            protocol = settings.target_protocol if settings.target_protocol in PROTOCOLS else "iscsi"
            iscsi = IscsiConfig(settings.target_prefix, settings.portal_ips, settings.target_port, protocol,
                                settings.volume_name_template)
            return _with_discard(lio_helper(settings.target_helper, runner, locks.host("lio"), iscsi=iscsi, **paths))

        def nvmet() -> TargetDriver:
            from volctl.errors import UsageError
            from volctl.nvmeof import NvmeConfig
            from volctl.targets.nvmet import CONFIGFS_NVMET, NvmetTarget

            if len(settings.portal_ips) > 1 and settings.nvmeof_conn_info_version == 1:
                raise UsageError("NVMe/TCP with secondary addresses needs nvmeof_conn_info_version = 2 (as Cinder's)")
            nvme = NvmeConfig(settings.nvmet_target_prefix, settings.portal_ips, settings.nvmet_target_port,
                              settings.nvmet_port_id, settings.nvmet_ns_id, settings.nvmeof_conn_info_version)
            return _with_discard(NvmetTarget(runner, locks.host("nvmet"), nvmet_root or CONFIGFS_NVMET,
                                             nvmet_save_file or Path(settings.nvmet_save_file), nvme, settings.nvmet_auth))

        def _with_discard(helper: TargetDriver) -> TargetDriver:
            from volctl.discard import DiscardPolicy

            helper.discard = DiscardPolicy(settings.report_discard_supported)
            return helper

        return cls({"lio": lio, "nvmet": nvmet}, FAMILIES, PROTOCOL_FAMILIES[settings.target_protocol],
                   settings.target_protocol)

    def _family(self, family: str) -> TargetDriver:
        if family not in self._built:
            self._built[family] = self._builders[family]()
        return self._built[family]

    def for_new_export(self) -> TargetDriver:
        return self._family(self._default_family)

    def for_protocol(self, protocol: str) -> TargetDriver:
        """The helper that exports over this protocol (the one new exports get, when it does)."""
        default = self.for_new_export()
        if protocol in default.protocols:
            return default
        family = self._protocols.get(protocol)
        if family is None or family not in self._builders:
            from volctl.errors import UsageError

            raise UsageError(f"no target helper here exports over {protocol!r}")
        return self._family(family)

    def protocol_for(self, volume: Volume, requested: str | None = None) -> str:
        """The protocol of the volume's export: the recorded one (an export made before exports
        recorded theirs: its helper's default), else the one asked for, else target_protocol."""
        if volume.provider_location:
            return volume.export_protocol or self.owner(volume).default_protocol
        return requested or self.default_protocol or self.for_new_export().default_protocol

    def owner(self, volume: Volume, requested: str | None = None) -> TargetDriver:
        """The helper that drives the volume's export: the family of the helper that made it; a
        volume not exported gets the helper of the protocol asked for, else of target_protocol."""
        if volume.target_helper is None:
            if volume.provider_location:
                return self._family(LEGACY_FAMILY)
            return self.for_protocol(requested) if requested else self.for_new_export()
        family = self._families.get(volume.target_helper)
        if family is None or family not in self._builders:
            raise EnvironmentProblem(f"volume {volume.name} was exported by target helper {volume.target_helper!r}, "
                                     f"which this volctl does not have (one of: {', '.join(sorted(self._families))})")
        return self._family(family)

    def all(self) -> Iterator[TargetDriver]:
        """Every family's helper: what doctor and restore compare the inventory with."""
        for family in self._builders:
            yield self._family(family)


def lio_helper(name: str, runner: Runner, lock, **options: object) -> TargetDriver:
    """options: iscsi (an IscsiConfig), host_root, and configfs and save_file when not the host's own."""
    if name == "rtslib":
        from volctl.targets.rtslib import RtslibTarget

        return RtslibTarget(lock, **options)
    if name == "lioadm":
        from volctl.targets.lioadm import LioAdm

        return LioAdm(runner, lock, **options)
    raise ValueError(f"unknown target helper {name!r}")  # config.py admits only HELPERS
