"""A target helper with no kernel behind it, as Cinder ships `volume/targets/fake.py`: for tests of
what the service, doctor and restore do, whatever protocol a helper serves.

A directory stands in for the host: `live/<target>/device` names the volume's device and
`live/<target>/hosts/<host>` each allowed host, so any number of processes share one fake host
as they share a kernel; `saved.json` is what survives a "reboot" (`reboot()` empties `live/`).
Its targets are `fake-<volume id>`; its credentials, one secret a volume made on the first export,
are kept in provider_auth in Cinder's shape ("<method> <user> <secret>"), so the code that keeps
a volume's secret out of every output keeps this one out too.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from volctl.errors import EnvironmentProblem, UsageError
from volctl.locks import FileLock
from volctl.targets.driver import PersistenceProblem, Secrets, TargetDriver

if TYPE_CHECKING:
    from volctl.model import Volume

PREFIX = "fake-"


class FakeTarget(TargetDriver):
    name = "fake"
    family = "fake"
    protocols = ("fake",)
    what = "fake target config"
    data_unit = "device"

    def __init__(self, lock: FileLock, root: Path):
        super().__init__(lock)
        self.root = root
        self.live = root / "live"
        self.saved = root / "saved.json"

    # -- names, credentials and formats ------------------------------------------------------

    def target_name(self, volume: Volume) -> str:
        recorded = (volume.provider_location or "").partition(" ")[0]
        return recorded or PREFIX + volume.id

    def volume_id_of(self, target: str) -> str | None:
        return target[len(PREFIX):] if target.startswith(PREFIX) else None

    def new_secrets(self, volume: Volume) -> Secrets | None:
        if volume.provider_auth:
            return None
        user = f"user{secrets.randbelow(10**6):06d}"
        return Secrets({"provider_auth": f"CHAP {user} {secrets.token_urlsafe(12)}"},
                       f"generated credentials for hosts: user {user}, secret not shown")

    def location(self, volume: Volume) -> str:
        return f"{self.target_name(volume)} fake"

    def host_of(self, connector: dict) -> str:
        host = connector.get("initiator")
        if not isinstance(host, str):
            raise UsageError("the connector has no 'initiator'")
        return host

    def connection_info(self, volume: Volume, connector: dict, access_mode: str,
                        force_multipath: bool = False, host_secrets: dict | None = None) -> dict:
        _method, user, secret = (volume.provider_auth or "- - -").split(" ", 2)
        return {"driver_volume_type": "fake", "data": {
            "target": self.target_name(volume), "volume_id": volume.id, "device": volume.lv_path,
            "auth_username": user, "auth_password": secret, "access_mode": access_mode,
            "multipath": bool(force_multipath or connector.get("multipath")),
        }}

    # -- the host ----------------------------------------------------------------------------

    def reboot(self) -> None:
        """What a reboot leaves: no live target; the persisted config stays."""
        shutil.rmtree(self.live, ignore_errors=True)

    def _create_export(self, volume: Volume, target: str) -> None:
        directory = self.live / target
        if directory.is_dir():
            return  # as every helper: a live target is left as it is
        (directory / "hosts").mkdir(parents=True)
        (directory / "device").write_text(volume.lv_path)

    def _remove_export(self, target: str) -> None:
        shutil.rmtree(self.live / target, ignore_errors=True)

    def _allow(self, volume: Volume, target: str, host: str, host_secrets: dict | None) -> None:
        if not (self.live / target).is_dir():
            raise EnvironmentProblem(f"fake target: allow {host}: target {target} is not live")
        (self.live / target / "hosts" / host).touch()

    def _disallow(self, target: str, host: str) -> bool:
        try:
            (self.live / target / "hosts" / host).unlink()
        except FileNotFoundError:
            return False
        return True

    def _targets(self) -> list[str]:
        return sorted(p.name for p in self.live.iterdir()) if self.live.is_dir() else []

    def is_live(self, target: str) -> bool:
        return (self.live / target).is_dir()

    def is_whole(self, target: str) -> bool:
        return (self.live / target / "device").is_file()

    def hosts(self, target: str) -> list[str]:
        directory = self.live / target / "hosts"
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    # -- persistence -------------------------------------------------------------------------

    def _running(self, target: str) -> dict | None:
        if not self.is_live(target):
            return None
        device = self.live / target / "device"
        return {"device": device.read_text() if device.is_file() else None, "hosts": self.hosts(target)}

    def _read_saved(self) -> dict:
        try:
            document = json.loads(self.saved.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise EnvironmentProblem(f"fake target config {self.saved} is unreadable: {e}") from None
        if not isinstance(document, dict):
            raise EnvironmentProblem(f"fake target config {self.saved} is unreadable: not a JSON object")
        return document

    def _write_saved(self, document: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.saved.with_name(self.saved.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(document, f, sort_keys=True)
        os.replace(tmp, self.saved)

    def _persist(self, targets: frozenset[str]) -> None:
        try:
            document = self._read_saved()
        except EnvironmentProblem:
            document = {}
        for target in targets:
            running = self._running(target)
            if running is None:
                document.pop(target, None)
            else:
                document[target] = running
        self._write_saved(document)

    def _save_all(self) -> None:
        self._write_saved({target: self._running(target) for target in self._targets()})

    def saved_targets(self) -> dict:
        return self._read_saved()

    def unsaved(self, ours: Callable[[str], bool] | None = None) -> list[str]:
        wanted = lambda t: t.startswith(PREFIX) and (ours is None or ours(t))  # noqa: E731
        stored = {t: v for t, v in self._read_saved().items() if wanted(t)}
        running = {t: self._running(t) for t in self._targets() if wanted(t)}
        return sorted(t for t in set(stored) | set(running) if stored.get(t) != running.get(t))

    def persistence_problems(self, ours: Callable[[str], bool] | None = None) -> list[PersistenceProblem]:
        try:
            differ = self.unsaved(ours)
        except EnvironmentProblem as e:
            return [PersistenceProblem("saved_config", str(self.saved), str(e))]
        if not differ:
            return []
        return [PersistenceProblem("saved_config", str(self.saved),
                                   f"the persisted fake config differs from the running one for: {', '.join(differ)}")]

    @property
    def persisted_to(self) -> str:
        return str(self.saved)
