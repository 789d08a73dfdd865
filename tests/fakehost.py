"""A stand-in host for unit tests: answers the exact command lines volctl runs (lvcreate, lvs,
cinder-rtstool ...) from in-memory LVM and LIO state, the way the real tools do. The VM tier
(tests/vm) runs the same flows against the real programs."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from fakeargs import Refused, canonical_ip, rtstool_args, rtstool_create_options, traceback, valid_wwn
from fakelvm import GIB, FakeLvm

from volctl.errors import ToolMissing
from volctl.runner import Runner



# A block storage object's attributes as LIO makes it (a few of its many): no UNMAP until set.
SO_ATTRIBUTES = {"block_size": 512, "emulate_tpu": 0, "emulate_tpws": 0}

@dataclass
class FakeTarget:
    device: str
    acls: dict[str, tuple[str, str]] = field(default_factory=dict)  # initiator -> (user, password)
    portals: tuple[str, ...] = ()
    iser: bool = False
    lun: bool = True  # False: LUN 0 missing, as a boot restore leaves a target whose LV was not active
    hba: int = 0  # its storage object's HBA directory, core/iblock_<hba>/<iqn>
    attributes: dict[str, int] = field(default_factory=dict)  # the storage object's, as saved (restore applies them)


@dataclass
class Failure:
    matches: Callable[[Sequence[str]], bool]
    exit_code: int
    stderr: str
    times: int  # how many more calls fail; -1 for always
    effect: bool = False  # the command does its work before failing


class FakeHost(FakeLvm, Runner):
    """configfs and save_file, when given, are kept as LIO keeps them: the ACL directories under
    <configfs>/<iqn>/tpgt_1/acls/ and rtslib's saveconfig.json, so code reading them sees the truth."""

    def __init__(self, vg: str = "cinder-volumes", vg_size_gib: int = 100, configfs: Path | None = None,
                 save_file: Path | None = None):
        super().__init__()
        self.configfs = configfs
        self.save_file = save_file
        self.vgs: dict[str, int] = {vg: vg_size_gib * GIB}
        self.lvs: dict[tuple[str, str], dict] = {}
        self.targets: dict[str, FakeTarget] = {}
        self.saved: dict[str, FakeTarget] | None = None
        self.calls: list[list[str]] = []
        self.missing: set[str] = set()
        self.failures: list[Failure] = []
        self.before_call: Callable[[list[str]], None] | None = None
        self.envs: list[dict[str, str]] = []  # the extra environment of each call in `calls`
        # "ip:port" another service holds: `cinder-rtstool create` fails binding it, leaving a half-made target
        self.busy_portals: set[str] = set()

    # -- test controls -------------------------------------------------------------------

    def fail(self, prefix: Sequence[str] | Callable[[Sequence[str]], bool], exit_code: int = 5,
             stderr: str = "simulated failure", times: int = -1, effect: bool = False) -> None:
        """Make matching commands fail; prefix is the first words of argv. With effect, the command
        does its work first (a tool that fails after changing the host)."""
        matches = prefix if callable(prefix) else (lambda argv, p=list(prefix): list(argv[: len(p)]) == p)
        self.failures.append(Failure(matches, exit_code, stderr, times, effect))

    def commands(self, program: str | None = None) -> list[list[str]]:
        return [c for c in self.calls if program is None or c[0] == program]

    def add_lv(self, vg: str, name: str, size_gib: int, attr: str = "-wi-a-----") -> None:
        self.lvs[(vg, name)] = {"size": size_gib * GIB, "attr": attr, "pool": ""}

    # -- serialization (tests/fakebin.py shares one host between processes) ------------

    def to_state(self) -> dict:
        """The host's LVM and LIO state as JSON-able data (not the calls, failures or hooks)."""
        def targets(found: dict[str, FakeTarget]) -> dict:
            return {iqn: {"device": t.device, "acls": {i: list(c) for i, c in t.acls.items()}, "portals": list(t.portals),
                          "iser": t.iser, "hba": t.hba, "attributes": t.attributes} for iqn, t in found.items()}

        return {
            "vgs": dict(self.vgs),
            "lvs": [[vg, name, dict(lv)] for (vg, name), lv in sorted(self.lvs.items())],
            "targets": targets(self.targets),
            "saved": None if self.saved is None else targets(self.saved),
            "busy_portals": sorted(self.busy_portals),
            "configfs": str(self.configfs) if self.configfs is not None else None,
            "save_file": str(self.save_file) if self.save_file is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict) -> "FakeHost":
        """The inverse of to_state; keys it does not know (e.g. fakebin's "_seq") are ignored."""
        def targets(found: dict) -> dict[str, FakeTarget]:
            return {iqn: FakeTarget(t["device"], {i: tuple(c) for i, c in t["acls"].items()}, tuple(t["portals"]), t["iser"],
                                    hba=t.get("hba", 0), attributes=dict(t.get("attributes", {})))
                    for iqn, t in found.items()}

        host = cls(configfs=Path(state["configfs"]) if state.get("configfs") else None,
                   save_file=Path(state["save_file"]) if state.get("save_file") else None)
        host.vgs = {vg: int(size) for vg, size in state["vgs"].items()}
        host.lvs = {(vg, name): dict(lv) for vg, name, lv in state["lvs"]}
        host.targets = targets(state["targets"])
        host.saved = None if state.get("saved") is None else targets(state["saved"])
        host.busy_portals = set(state.get("busy_portals", ()))
        return host

    # -- the Runner interface ------------------------------------------------------------

    def _start(self, argv: list[str], timeout: float, on_stderr, env: dict[str, str]) -> tuple[int | None, str, str]:
        """Only the program is fake: Runner.run masks, logs and reports as in production.
        env (LVM's udev mode) is kept per call for tests that check it."""
        self.calls.append(argv)
        self.envs.append(env)
        if self.before_call:
            self.before_call(argv)
        if argv[0] in self.missing:
            raise ToolMissing(argv[0])
        for failure in self.failures:
            if failure.times != 0 and failure.matches(argv):
                failure.times -= 1 if failure.times > 0 else 0
                if failure.effect:  # the command gets part of the way, then fails
                    self.answer(argv)
                return failure.exit_code, "", failure.stderr
        code, out, err = self.answer(argv)
        if on_stderr and err:
            on_stderr(err)
        return code, out, err

    def answer(self, argv: Sequence[str]) -> tuple[int, str, str]:
        """What the fake program does with argv (shared with tests/fakebin.py)."""
        handler = getattr(self, "_" + argv[0].replace("-", "_"), None)
        if handler is None:
            raise AssertionError(f"FakeHost does not know {list(argv)!r}")
        try:
            code, out, err = handler(list(argv[1:]))
        except Refused as refused:
            return refused.exit_code, refused.stdout, refused.stderr
        if argv[0] == "cinder-rtstool":
            self._mirror_configfs()
        return code, out, err

    # -- cinder-rtstool ------------------------------------------------------------------

    def _cinder_rtstool(self, args: list[str]):
        """cinder/cmd/rtstool.py main(): its argument counts, its usage() on stdout with exit 1,
        and an uncaught RtstoolError or RTSLibError as a traceback with exit 1."""
        sub, rest = rtstool_args(args)
        if sub == "create":
            return self._rtstool_create(rest[:5], rtstool_create_options(rest[5:]))
        if sub == "get-targets":
            return 0, "".join(f"{iqn}\n" for iqn in self.targets), ""
        if sub in ("add-initiator", "delete-initiator"):
            iqn, initiator = rest[0], rest[-1]
            if iqn not in self.targets:
                return 1, "", traceback(f"cinder.cmd.rtstool.RtstoolError: Could not find target {iqn}")
            acls = self.targets[iqn].acls
            if sub == "delete-initiator":
                if acls.pop(initiator.lower(), None) is None:
                    return 0, f"delete_initiator: {initiator} ACL not found. Continuing.\n", ""
                return 0, "", ""
            if initiator.lower() not in acls:
                if not valid_wwn(initiator):
                    return 1, "", traceback("rtslib_fb.utils.RTSLibError: WWN not valid as: iqn, naa, eui")
                acls[initiator.lower()] = (rest[1], rest[2])
            return 0, "", ""
        if sub == "delete":
            self.targets.pop(rest[0], None)
            return 0, "", ""
        if sub == "verify":
            return 0, "", ""
        if sub == "restore":
            assert not rest, "FakeHost restores only the default save file"
            self.targets = {iqn: FakeTarget(t.device, dict(t.acls), t.portals, t.iser, hba=n, attributes=dict(t.attributes))
                            for n, (iqn, t) in enumerate((self.saved or {}).items())}
            if self.configfs is not None:
                shutil.rmtree(self._core, ignore_errors=True)  # a restore starts from nothing live
            return 0, "", ""
        path = Path(rest[0]) if rest else self.save_file
        if rest and not path.parent.is_dir():  # rtslib makes the directory only for its default file
            return 1, "", traceback(f"cinder.cmd.rtstool.RtstoolError: Could not save configuration to {path}")
        self.saved = {iqn: FakeTarget(t.device, dict(t.acls), t.portals, t.iser, attributes=self._so_attributes(iqn, t))
                      for iqn, t in self.targets.items()}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self._saveconfig(), indent=2))
        return 0, "", ""

    def _rtstool_create(self, positional: list[str], options: dict):
        device, iqn, user, password, iser = positional
        if iqn in self.targets:  # its storage object exists: rtstool returns without looking further
            return 0, "", ""
        match = re.fullmatch(r"/dev/([^/]+)/([^/]+)", device)
        lv = self.lvs.get((match.group(1), match.group(2))) if match else None
        if lv is None or lv["attr"].startswith("t"):
            return 1, "", traceback(f"rtslib_fb.utils.RTSLibError: Device {device} does not exist")
        if not valid_wwn(iqn):
            return 1, "", traceback("rtslib_fb.utils.RTSLibError: WWN not valid as: iqn, naa, eui")
        initiators = [i for i in options.get("initiators", "").strip(" ").split(",") if i]
        if any(not valid_wwn(i) for i in initiators):
            return 1, "", traceback("rtslib_fb.utils.RTSLibError: WWN not valid as: iqn, naa, eui")
        port = options.get("port", 3260)
        # Target, TPG, LUN and ACLs exist from here on; a portal that cannot bind leaves them behind.
        target = FakeTarget(device, {i.lower(): (user, password) for i in initiators}, iser=iser == "True",
                            hba=min(set(range(len(self.targets) + 1)) - {t.hba for t in self.targets.values()}))
        self.targets[iqn] = target
        ips, allowed_to_fail = (options["ips"], ()) if "ips" in options else (["0.0.0.0", "[::0]"], ("[::0]",))
        out = ""
        for ip in ips:
            portal = f"{canonical_ip(ip)}:{port}"
            if portal in self.busy_portals or not _valid_ip(canonical_ip(ip)) or not 0 < port < 65536:
                out += (f"{'Warning' if ip in allowed_to_fail else 'Error'}: creating NetworkPortal: ensure port {port} "
                        f"on ip {ip} is not in use by another service.\n")
                if ip not in allowed_to_fail:
                    return 1, out, traceback("rtslib_fb.utils.RTSLibError: Could not create NetworkPortal in configFS")
                continue
            target.portals += (portal,)
        return 0, out, ""

    def _saveconfig(self) -> dict:
        """The shape rtslib's RTSRoot.save_to_file writes (only the parts volctl reads)."""
        return {
            "fabric_modules": [],
            "storage_objects": [{"name": iqn, "plugin": "block", "dev": t.device, "attributes": t.attributes}
                                for iqn, t in self.saved.items()],
            "targets": [
                {
                    "fabric": "iscsi",
                    "wwn": iqn,
                    "tpgs": [{
                        "tag": 1, "enable": True, "attributes": {"authentication": 1},
                        "luns": [{"index": 0, "storage_object": f"/backstores/block/{iqn}"}],
                        "node_acls": [
                            {"node_wwn": initiator, "chap_userid": user, "chap_password": password,
                             "mapped_luns": [{"index": 0, "tpg_lun": 0, "write_protect": False}]}
                            for initiator, (user, password) in t.acls.items()
                        ],
                        "portals": [{"ip_address": p.rsplit(":", 1)[0], "port": int(p.rsplit(":", 1)[1])} for p in t.portals],
                    }],
                }
                for iqn, t in self.saved.items()
            ],
        }

    @property
    def _core(self) -> Path:
        return self.configfs.parent / "core"

    def _so_dir(self, iqn: str, target: FakeTarget) -> Path:
        return self._core / f"iblock_{target.hba}" / iqn

    def _so_attributes(self, iqn: str, target: FakeTarget) -> dict[str, int]:
        """As rtslib's save reads them: every attribute file of the storage object in configfs."""
        attrib = self._so_dir(iqn, target) / "attrib" if self.configfs is not None else None
        if attrib is None or not attrib.is_dir():
            return dict(target.attributes)
        return {a.name: int(a.read_text()) for a in sorted(attrib.iterdir())}

    def _mirror_configfs(self) -> None:
        if self.configfs is None:
            return
        for existing in list(self.configfs.iterdir()):
            if existing.name not in self.targets:
                shutil.rmtree(existing)
        live = {self._so_dir(iqn, t) for iqn, t in self.targets.items()}
        for so in list(self._core.glob("iblock_*/*")):
            if so not in live:
                shutil.rmtree(so.parent)  # rtslib removes the HBA with its storage object
        for iqn, target in self.targets.items():
            so = self._so_dir(iqn, target)
            if not so.is_dir():  # made now: LIO's defaults, then what a restore applies
                (so / "attrib").mkdir(parents=True)
                for name, value in {**SO_ATTRIBUTES, **target.attributes}.items():
                    (so / "attrib" / name).write_text(f"{value}\n")
            acls = self.configfs / iqn / "tpgt_1" / "acls"
            acls.mkdir(parents=True, exist_ok=True)
            if target.lun:
                lun = self.configfs / iqn / "tpgt_1" / "lun" / "lun_0"
                lun.mkdir(parents=True, exist_ok=True)
                if not (lun / "a1b2c3d4e5").is_symlink():  # configfs: the LUN links to its storage object
                    (lun / "a1b2c3d4e5").symlink_to(so)
            else:
                shutil.rmtree(self.configfs / iqn / "tpgt_1" / "lun", ignore_errors=True)
            for existing in list(acls.iterdir()):
                if existing.name not in target.acls:
                    shutil.rmtree(existing)
            for initiator in target.acls:
                (acls / initiator).mkdir(exist_ok=True)


def _valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip.strip("[]"))
    except ValueError:
        return False
    return True
