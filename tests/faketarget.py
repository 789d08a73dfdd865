"""An in-memory LIO behind volctl's LIO helper seam (volctl/targets/lio.py), for tests about
what the service, doctor and restore do rather than which command lines a helper runs (only
tests/test_target_*.py assert those).

`FakeLio` is the host's LIO: the live targets, a configfs-like tree kept as the kernel lays out
what lio.py reads (<configfs>/<iqn>/tpgt_1/lun/lun_0, <configfs>/<iqn>/tpgt_1/acls/<initiator>),
every primitive call with whether the host-wide LIO lock was held at that moment, and every
write of the saved config. `FakeLioTarget` is one helper instance (one volctl process) on it: each
service gets its own, as each process has its own pending change set, while all share the LIO.

The saved config is written in rtslib's shape, and a persist rewrites only the targets it is
given: a caller that forgot to have a target persisted leaves it stale in the file, where
`unsaved()` and doctor see it, as with the rtslib helper.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from volctl.errors import EnvironmentProblem, TargetFailed, VolctlError
from volctl.iscsi import Chap
from volctl.locks import FileLock
from volctl.targets.lio import LioTarget

_WWN_PREFIXES = ("iqn.", "eui.", "naa.")


@dataclass
class LiveTarget:
    device: str
    acls: dict[str, Chap] = field(default_factory=dict)  # initiator as LIO stores it (lower-case) -> CHAP
    portals: tuple[str, ...] = ()
    iser: bool = False
    lun: bool = True  # False: LUN 0 missing, as a boot restore leaves a target whose LV was not active

    def copy(self) -> LiveTarget:
        return replace(self, acls=dict(self.acls))


@dataclass(frozen=True)
class Call:
    primitive: str
    args: tuple
    locked: bool  # the host-wide LIO lock was held by someone when the primitive ran


@dataclass
class _Failure:
    primitive: str
    error: VolctlError
    times: int  # how many more calls fail; -1 for always
    effect: bool  # the primitive does its work, then fails


def lock_is_held(path: Path) -> bool:
    """True when a holder has the flock: a second FileLock (its own open file) with wait=0 cannot take it."""
    try:
        with FileLock(path, wait=0).held():
            return False
    except EnvironmentProblem:
        return True


class FakeLio:
    def __init__(self, configfs: Path | None):
        self.configfs = configfs
        self.live: dict[str, LiveTarget] = {}
        self.saved: dict[str, LiveTarget] | None = None  # what the saved config holds; None: never written
        self.calls: list[Call] = []
        # every write of the saved config: ("persist", the IQNs it was given) or ("save", every live IQN)
        self.saves: list[tuple[str, frozenset[str]]] = []
        self.failures: list[_Failure] = []
        self.mirror()

    # -- test controls -----------------------------------------------------------------------

    def fail(self, primitive: str, error: VolctlError | None = None, times: int = -1, effect: bool = False) -> None:
        """Make a primitive (create, delete, add_initiator, delete_initiator, targets, persist,
        save_all) raise; with effect, after doing its work."""
        self.failures.append(_Failure(primitive, error or TargetFailed(f"fake LIO: {primitive} failed"), times, effect))

    def primitives(self) -> list[str]:
        return [c.primitive for c in self.calls]

    def make(self, iqn: str, device: str, *initiators: str, chap: Chap = Chap("behindtheback", "behindthebackpw"),
             lun: bool = True) -> None:
        """A target made behind volctl's back (by hand, by another tool, by a boot restore)."""
        self.live[iqn] = LiveTarget(device, {i.lower(): chap for i in initiators}, ("127.0.0.1:3260",), lun=lun)
        self.mirror()

    def reboot(self) -> None:
        """What a reboot or `targetctl clear` leaves: no live target; the saved config stays."""
        self.live.clear()
        self.mirror()

    def mirror(self) -> None:
        """configfs as the kernel shows the live targets (only what volctl reads)."""
        if self.configfs is None or not self.configfs.is_dir():
            return
        (self.configfs / "discovery_auth").mkdir(exist_ok=True)  # in every real iscsi dir; not a target
        for entry in list(self.configfs.iterdir()):
            if entry.name.startswith(_WWN_PREFIXES) and entry.name not in self.live:
                shutil.rmtree(entry)
        for iqn, target in self.live.items():
            tpg = self.configfs / iqn / "tpgt_1"
            (tpg / "acls").mkdir(parents=True, exist_ok=True)
            if target.lun:
                (tpg / "lun" / "lun_0").mkdir(parents=True, exist_ok=True)
            else:
                shutil.rmtree(tpg / "lun", ignore_errors=True)
            for entry in list((tpg / "acls").iterdir()):
                if entry.name not in target.acls:
                    shutil.rmtree(entry)
            for initiator in target.acls:
                (tpg / "acls" / initiator / "lun_0").mkdir(parents=True, exist_ok=True)

    # -- what the helper calls ---------------------------------------------------------------

    def enter(self, primitive: str, args: tuple, lock_path: Path) -> _Failure | None:
        self.calls.append(Call(primitive, args, lock_is_held(lock_path)))
        for failure in self.failures:
            if failure.primitive == primitive and failure.times != 0:
                failure.times -= 1 if failure.times > 0 else 0
                if not failure.effect:
                    raise failure.error
                return failure
        return None

    @staticmethod
    def leave(failure: _Failure | None) -> None:
        if failure is not None:
            raise failure.error

    def write(self, save_file: Path, saved: dict[str, LiveTarget]) -> None:
        self.saved = saved
        save_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = save_file.with_name(save_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(saveconfig(saved), f, indent=2, sort_keys=True)
        os.replace(tmp, save_file)


def saveconfig(targets: dict[str, LiveTarget]) -> dict:
    """A saved config in the shape rtslib's save_to_file writes (the parts volctl reads, and CHAP)."""
    return {
        "fabric_modules": [],
        "storage_objects": [{"name": iqn, "plugin": "block", "dev": t.device} for iqn, t in targets.items()],
        "targets": [
            {
                "fabric": "iscsi",
                "wwn": iqn,
                "tpgs": [{
                    "tag": 1, "enable": True, "attributes": {"authentication": 1},
                    "luns": [{"index": 0, "storage_object": f"/backstores/block/{iqn}"}] if t.lun else [],
                    "node_acls": [{"node_wwn": initiator, "auth": {"userid": chap.username, "password": chap.password},
                                   "mapped_luns": [{"index": 0, "tpg_lun": 0, "write_protect": False}]}
                                  for initiator, chap in t.acls.items()],
                    "portals": [{"ip_address": p.rsplit(":", 1)[0], "port": int(p.rsplit(":", 1)[1])} for p in t.portals],
                }],
            }
            for iqn, t in targets.items()
        ],
    }


class FakeLioTarget(LioTarget):
    name = "fake-lio"

    def __init__(self, lock: FileLock, configfs: Path, save_file: Path, lio: FakeLio | None = None, **options):
        """options: what else the base class takes (the iSCSI settings)."""
        super().__init__(lock, configfs, save_file, **options)
        self.lio = lio if lio is not None else FakeLio(configfs)

    # shorthands for tests
    @property
    def live(self) -> dict[str, LiveTarget]:
        return self.lio.live

    @property
    def saves(self) -> list[tuple[str, frozenset[str]]]:
        return self.lio.saves

    @property
    def calls(self) -> list[Call]:
        return self.lio.calls

    def _enter(self, primitive: str, *args) -> _Failure | None:
        return self.lio.enter(primitive, args, self.lock.path)

    # -- the primitives ----------------------------------------------------------------------

    def _create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None:
        failure = self._enter("create", device, iqn, iser, tuple(ips), port)
        if iqn not in self.live:  # as both helpers: a live target is left as it is
            portals = tuple(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in ips)
            self.live[iqn] = LiveTarget(device, portals=portals, iser=iser)
            self.lio.mirror()
        self.lio.leave(failure)

    def _delete(self, iqn: str) -> None:
        failure = self._enter("delete", iqn)
        self.live.pop(iqn, None)
        self.lio.mirror()
        self.lio.leave(failure)

    def _add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        failure = self._enter("add_initiator", iqn, initiator)
        if iqn not in self.live:
            raise TargetFailed(f"fake LIO: add ACL for {initiator}: target {iqn} is not live")
        self.live[iqn].acls.setdefault(initiator.lower(), chap)  # an existing ACL keeps its CHAP
        self.lio.mirror()
        self.lio.leave(failure)

    def _delete_initiator(self, iqn: str, initiator: str) -> bool:
        failure = self._enter("delete_initiator", iqn, initiator)
        target = self.live.get(iqn)
        found = target is not None and target.acls.pop(initiator.lower(), None) is not None
        self.lio.mirror()
        self.lio.leave(failure)
        return found

    def _targets(self) -> list[str]:
        failure = self._enter("targets")
        self.lio.leave(failure)
        return sorted(self.live)

    def _persist(self, iqns: frozenset[str]) -> None:
        failure = self._enter("persist", iqns)
        self.lio.saves.append(("persist", iqns))
        saved = {iqn: t.copy() for iqn, t in (self.lio.saved or {}).items()}
        for iqn in iqns:
            if iqn in self.live:
                saved[iqn] = self.live[iqn].copy()
            else:
                saved.pop(iqn, None)
        self.lio.write(self.save_file, saved)
        self.lio.leave(failure)

    def _save_all(self) -> None:
        failure = self._enter("save_all")
        self.lio.saves.append(("save", frozenset(self.live)))
        self.lio.write(self.save_file, {iqn: t.copy() for iqn, t in self.live.items()})
        self.lio.leave(failure)
