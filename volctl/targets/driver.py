"""The protocol-neutral target driver, as Cinder's `volume/targets/driver.py` is the base of
its helpers: what the service, doctor and restore may ask of a target helper, whatever protocol
it serves and however it reaches the kernel.

A helper exports one volume as one target, named by the helper from the volume. Hosts (an
initiator, by whatever name its protocol gives it) are allowed on a target one by one. What a
change set touched is made to survive a reboot once, when its outermost `changes()` ends; a
change set that raised leaves its targets pending, so the next persist in this process writes
them too. Every step holds the helper's own host-wide lock, which the service also takes around
a read-then-change of the host.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator

from volctl.discard import DiscardPolicy
from volctl.locks import FileLock

if TYPE_CHECKING:
    from volctl.model import Volume


@dataclass(frozen=True)
class Secrets:
    """Credentials made for an export before anything on the host has them: the fields the
    service stores first (a crash cannot then leave a target whose credentials nobody knows),
    and the line for history, which never holds a secret."""

    fields: dict
    note: str


@dataclass(frozen=True)
class Defect:
    """What a live export lacks or has wrong (doctor's drift kind, what it is about, why), and
    what a repair does about it; None: left to the operator (it would take access away)."""

    kind: str
    subject: str
    detail: str
    repair: str | None


@dataclass(frozen=True)
class PersistenceProblem:
    """Why the exports on the host would not come back as they are after a reboot."""

    kind: str  # doctor's drift kind ("saved_config": a save repairs it)
    subject: str
    detail: str


class TargetDriver(ABC):
    name: ClassVar[str]  # the helper, as the settings and the inventory name it
    # The host subsystem the helper drives. Helpers of one family make the same objects under the
    # same lock and persist to the same place, so an export made by one can be driven by another.
    family: ClassVar[str]
    protocols: ClassVar[tuple[str, ...]]  # what `target_protocol` values it serves
    what: ClassVar[str]  # how a person calls what it persists ("LIO config"), in messages
    auth_method: ClassVar[str | None] = None  # how hosts prove themselves with credentials of their own
    data_unit: ClassVar[str]  # what carries a target's data ("LUN 0"), in messages

    def __init__(self, lock: FileLock):
        self.lock = lock
        self._pending: set[str] = set()
        self._depth = 0
        # How long an export may wait for a portal address that is not up yet (restore at boot
        # sets it; elsewhere a wrong address fails at once). Helpers that bind no address ignore it.
        self.address_wait = 0.0
        self.discard = DiscardPolicy()  # report_discard_supported; the registry sets the configured one

    # -- names, credentials and formats ------------------------------------------------------

    @abstractmethod
    def target_name(self, volume: Volume) -> str:
        """The volume's target: the recorded one, else the one this helper would make."""

    @abstractmethod
    def volume_id_of(self, target: str) -> str | None:
        """The volume id a target named the way volctl names them was made for; None for a
        target named otherwise (not volctl's to judge)."""

    def ours_by(self, ever_known: dict[str, str | None]) -> Callable[[str], bool]:
        """Which of the helper's targets are volctl's, by their volumes' history (ever_known:
        Inventory.ever_known): `unsaved` and `persistence_problems` leave the others out."""
        from volctl.model import still_volctls

        def ours(target: str) -> bool:
            volume_id = self.volume_id_of(target)
            return volume_id is not None and still_volctls(ever_known.get(volume_id))
        return ours

    @abstractmethod
    def new_secrets(self, volume: Volume) -> Secrets | None:
        """Credentials to store before the volume's first export; None when it has them."""

    @property
    def default_protocol(self) -> str:
        """The protocol an export gets when none is asked for."""
        return self.protocols[0]

    def credentials_for(self, host: str, stored: dict | None) -> tuple[dict | None, Secrets | None]:
        """The host's own credentials to allow it with (NVMe's per-host DH-HMAC-CHAP keys), and
        those among them that are new and must be stored before any target has them; (None,
        None) where the helper, or this host's kernel, uses none."""
        return None, None

    def live_host_secrets(self, host: str) -> dict | None:
        """The host's credentials as the target holds them now (doctor compares them)."""
        return None

    @abstractmethod
    def location(self, volume: Volume) -> str:
        """provider_location of the volume's export, in Cinder's format for this protocol."""

    @abstractmethod
    def host_of(self, connector: dict) -> str:
        """The host a connector names, in the form the target stores it (the connector was
        validated where it entered)."""

    def connector_for(self, host: str) -> dict:
        """The connector `--initiator HOST` stands for, for this helper's protocol (os-brick's key);
        a host named for another protocol is a usage error."""
        return {"initiator": host}

    def same_host(self, a: str, b: str) -> bool:
        """Whether two names are one host, as the target compares them."""
        return a == b

    @abstractmethod
    def connection_info(self, volume: Volume, connector: dict, access_mode: str,
                        force_multipath: bool = False, host_secrets: dict | None = None) -> dict:
        """Cinder's initialize_connection result for the volume's export (with the host's own
        credentials, when it has them)."""

    def advertises_discard(self, volume: Volume) -> bool:
        """Whether the volume's export advertises UNMAP (discard) to its hosts, and its connection
        info says `discard: true` (report_discard_supported, volctl/discard.py)."""
        return self.discard.advertised(volume.lv_path)

    # -- change sets -------------------------------------------------------------------------

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The helper's own host-wide lock (re-entrant): what the caller reads of the host stays
        true until it has acted on it."""
        with self.lock.held():
            yield

    @contextmanager
    def changes(self) -> Iterator[None]:
        with self.lock.held():
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.persist()

    def touch(self, target: str) -> None:
        """Have the next persist write this target as it is live, though nothing here changed it
        (a target found live but maybe never saved)."""
        self._pending.add(target)

    def persist(self) -> None:
        """Make what is pending survive a reboot."""
        with self.lock.held():
            self._persist(frozenset(self._pending))
            self._pending.clear()

    def save(self) -> None:
        """Make the whole running configuration survive a reboot (doctor's repair of a saved
        configuration that differs)."""
        with self.lock.held():
            self._save_all()
            self._pending.clear()

    # -- making and removing -----------------------------------------------------------------

    @contextmanager
    def changing(self, target: str) -> Iterator[None]:
        """A step that changes a target: under the lock, the target pending for the next persist
        (also when the step fails half-way)."""
        with self.lock.held():
            self._pending.add(target)
            yield

    def create_export(self, volume: Volume) -> None:
        """The volume's target, with its device, ready for hosts to be allowed."""
        target = self.target_name(volume)
        with self.changing(target):
            self._create_export(volume, target)

    def remove_export(self, target: str) -> None:
        with self.changing(target):
            self._remove_export(target)

    def allow(self, volume: Volume, host: str, host_secrets: dict | None = None) -> None:
        """Let a host reach the volume's target, with its own credentials when it has them; a
        host already allowed keeps its access."""
        target = self.target_name(volume)
        with self.changing(target):
            self._allow(volume, target, host, host_secrets)

    def disallow(self, target: str, host: str) -> bool:
        """False when the host (or the whole target) was already gone."""
        with self.changing(target):
            return self._disallow(target, host)

    # -- looking -----------------------------------------------------------------------------

    def exists(self, target: str) -> bool:
        return target in self.targets()

    def targets(self) -> list[str]:
        """Every live target, as the helper itself sees the host."""
        with self.lock.held():
            return self._targets()

    @abstractmethod
    def is_live(self, target: str) -> bool:
        """exists(), from the kernel's own view when the helper has one (cheaper)."""

    @abstractmethod
    def is_whole(self, target: str) -> bool:
        """Whether the live target carries the volume's data (a boot restore that ran before the
        LV was active leaves one without it)."""

    def defects(self, volume: Volume) -> list[Defect]:
        """What the volume's live export lacks or has wrong."""
        target = self.target_name(volume)
        if self.is_whole(target):
            return []
        return [Defect("lun_missing", target, f"the target of {volume.name} has no {self.data_unit}: it carries no "
                       "data (restored before the LV was active?)", "replace the target, with its ACLs")]

    def grown(self, volume: Volume) -> str | None:
        """After the volume's LV grew under its live export: tell the target, where it needs
        telling; returns what was done, for history."""
        return None

    def rescan_hint(self, volume: Volume, host: str) -> str:
        """What a host runs to see the volume's new size."""
        return "rescan the device"

    def mend(self, volume: Volume) -> list[str] | None:
        """Put right in place what defects() finds, taking no host's access away; returns what was
        done, or None when this helper cannot (the caller replaces a target that carries no data)."""
        return None

    @abstractmethod
    def hosts(self, target: str) -> list[str]:
        """The hosts allowed on a live target."""

    @abstractmethod
    def unsaved(self, ours: Callable[[str], bool] | None = None) -> list[str]:
        """The volctl-named targets, live or persisted, whose persisted form differs from the live
        one; with `ours`, only those it accepts (doctor leaves out foreign ones: Cinder's, after a
        hand-off, which Cinder saves elsewhere). A persisted configuration that cannot be read
        raises EnvironmentProblem."""

    @abstractmethod
    def persistence_problems(self, ours: Callable[[str], bool] | None = None) -> list[PersistenceProblem]:
        """What would keep the live exports (those `ours` accepts, with it) from coming back after a reboot."""

    @property
    @abstractmethod
    def persisted_to(self) -> str:
        """Where the helper persists (a path), for messages and reports."""

    # -- what each helper implements ---------------------------------------------------------

    @abstractmethod
    def _create_export(self, volume: Volume, target: str) -> None: ...

    @abstractmethod
    def _remove_export(self, target: str) -> None: ...

    @abstractmethod
    def _allow(self, volume: Volume, target: str, host: str, host_secrets: dict | None) -> None: ...

    @abstractmethod
    def _disallow(self, target: str, host: str) -> bool: ...

    @abstractmethod
    def _targets(self) -> list[str]: ...

    @abstractmethod
    def _persist(self, targets: frozenset[str]) -> None:
        """Make the persisted configuration hold these targets as they are live (and everything
        else as before)."""

    @abstractmethod
    def _save_all(self) -> None: ...
