"""Target helpers and the registry that hands them out, as Cinder builds one target driver per
backend from `volume/targets/`.

A helper belongs to a family: the host subsystem it drives. `target_helper` picks the LIO
family's helper, `lioadm` (cinder-rtstool, the default) or `rtslib` (in-process); both make the
same objects under the same lock and save to the same file, so whichever is configured drives
every LIO export, whichever made it. Each export records the helper that made it; the registry
gives the service the helper for new exports, the one that drives a given volume's export, and
all of them, for doctor and restore.
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
FAMILIES = {"lioadm": "lio", "rtslib": "lio"}
# Before exports recorded their helper (migration m003) every export was LIO's.
LEGACY_FAMILY = "lio"


class Targets:
    """The helpers of one process, one per family, each made when first asked for (a read
    command makes none)."""

    def __init__(self, builders: dict[str, Callable[[], TargetDriver]], families: dict[str, str], default_family: str):
        """builders: family -> what makes its helper; families: helper name -> family, for every
        helper an inventory may name; default_family: the family new exports go to."""
        self._builders = builders
        self._families = families
        self._default_family = default_family
        self._built: dict[str, TargetDriver] = {}

    @classmethod
    def from_settings(cls, settings: Settings, runner: Runner, locks: Locks, *, configfs: Path | None = None,
                      save_file: Path | None = None, host_root: Path | None = None) -> Targets:
        """configfs and save_file override the host's own (tests run whole processes against a fake host)."""
        from pathlib import Path

        root = host_root or Path("/")

        def lio() -> TargetDriver:
            from volctl.iscsi import IscsiConfig

            paths = {"save_file": save_file or settings.save_file(root), "host_root": root}
            if configfs is not None:
                paths["configfs"] = configfs
            iscsi = IscsiConfig(settings.target_prefix, settings.portal_ips, settings.target_port, settings.target_protocol,
                                settings.volume_name_template)
            return lio_helper(settings.target_helper, runner, locks.host("lio"), iscsi=iscsi, **paths)

        return cls({"lio": lio}, FAMILIES, "lio")

    def _family(self, family: str) -> TargetDriver:
        if family not in self._built:
            self._built[family] = self._builders[family]()
        return self._built[family]

    def for_new_export(self) -> TargetDriver:
        return self._family(self._default_family)

    def owner(self, volume: Volume) -> TargetDriver:
        """The helper that drives the volume's export: the family of the helper that made it; a
        volume not exported gets the helper new exports get."""
        if volume.target_helper is None:
            return self._family(LEGACY_FAMILY) if volume.provider_location else self.for_new_export()
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
