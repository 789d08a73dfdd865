"""A stand-in host for unit tests: answers the exact command lines volctl runs (lvcreate, lvs,
cinder-rtstool ...) from in-memory LVM and LIO state, the way the real tools do. The VM tier
(tests/vm) runs the same flows against the real programs."""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from volctl.errors import CommandFailed, ToolMissing
from volctl.redact import mask, mask_argv
from volctl.runner import CommandResult, Runner

GIB = 1024**3


@dataclass
class FakeTarget:
    device: str
    acls: dict[str, tuple[str, str]] = field(default_factory=dict)  # initiator -> (user, password)
    portals: tuple[str, ...] = ()
    iser: bool = False
    lun: bool = True  # False: LUN 0 missing, as a boot restore leaves a target whose LV was not active


@dataclass
class Failure:
    matches: Callable[[Sequence[str]], bool]
    exit_code: int
    stderr: str
    times: int  # how many more calls fail; -1 for always


class FakeHost(Runner):
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

    # -- test controls -------------------------------------------------------------------

    def fail(self, prefix: Sequence[str] | Callable[[Sequence[str]], bool], exit_code: int = 5,
             stderr: str = "simulated failure", times: int = -1) -> None:
        """Make matching commands fail; prefix is the first words of argv."""
        matches = prefix if callable(prefix) else (lambda argv, p=list(prefix): list(argv[: len(p)]) == p)
        self.failures.append(Failure(matches, exit_code, stderr, times))

    def commands(self, program: str | None = None) -> list[list[str]]:
        return [c for c in self.calls if program is None or c[0] == program]

    def add_lv(self, vg: str, name: str, size_gib: int, attr: str = "-wi-a-----") -> None:
        self.lvs[(vg, name)] = {"size": size_gib * GIB, "attr": attr, "pool": ""}

    # -- serialization (tests/fakebin.py shares one host between processes) ------------

    def to_state(self) -> dict:
        """The host's LVM and LIO state as JSON-able data (not the calls, failures or hooks)."""
        def targets(found: dict[str, FakeTarget]) -> dict:
            return {iqn: {"device": t.device, "acls": {i: list(c) for i, c in t.acls.items()}, "portals": list(t.portals),
                          "iser": t.iser} for iqn, t in found.items()}

        return {
            "vgs": dict(self.vgs),
            "lvs": [[vg, name, dict(lv)] for (vg, name), lv in sorted(self.lvs.items())],
            "targets": targets(self.targets),
            "saved": None if self.saved is None else targets(self.saved),
            "configfs": str(self.configfs) if self.configfs is not None else None,
            "save_file": str(self.save_file) if self.save_file is not None else None,
        }

    @classmethod
    def from_state(cls, state: dict) -> "FakeHost":
        """The inverse of to_state; keys it does not know (e.g. fakebin's "_seq") are ignored."""
        def targets(found: dict) -> dict[str, FakeTarget]:
            return {iqn: FakeTarget(t["device"], {i: tuple(c) for i, c in t["acls"].items()}, tuple(t["portals"]), t["iser"])
                    for iqn, t in found.items()}

        host = cls(configfs=Path(state["configfs"]) if state.get("configfs") else None,
                   save_file=Path(state["save_file"]) if state.get("save_file") else None)
        host.vgs = {vg: int(size) for vg, size in state["vgs"].items()}
        host.lvs = {(vg, name): dict(lv) for vg, name, lv in state["lvs"]}
        host.targets = targets(state["targets"])
        host.saved = None if state.get("saved") is None else targets(state["saved"])
        return host

    # -- the Runner interface ------------------------------------------------------------

    def run(self, argv, *, secrets: Iterable[str] = (), ok_codes=(0,), timeout=None, on_stderr=None) -> CommandResult:
        argv = [str(a) for a in argv]
        hidden = [s for s in secrets if s]
        self.calls.append(argv)
        if self.before_call:
            self.before_call(argv)
        if argv[0] in self.missing:
            raise ToolMissing(argv[0])
        started = time.monotonic()
        code, out, err = 0, "", ""
        for failure in self.failures:
            if failure.times != 0 and failure.matches(argv):
                failure.times -= 1 if failure.times > 0 else 0
                code, err = failure.exit_code, failure.stderr
                break
        else:
            handler = getattr(self, "_" + argv[0].replace("-", "_"), None)
            if handler is None:
                raise AssertionError(f"FakeHost does not know {argv!r}")
            code, out, err = handler(argv[1:])
            if argv[0] == "cinder-rtstool":
                self._mirror_configfs()
            if on_stderr and err:
                on_stderr(err)
        shown = tuple(mask_argv(argv, hidden))
        result = CommandResult(shown, code, out, mask(err, hidden), time.monotonic() - started)
        if self.on_command:
            self.on_command(result)
        if code not in ok_codes:
            raise CommandFailed(shown, code, result.stderr)
        return result

    # -- LVM -----------------------------------------------------------------------------

    def _vg_free(self, vg: str) -> int:
        return self.vgs[vg] - sum(lv["size"] for (g, _), lv in self.lvs.items() if g == vg and not lv["attr"].startswith("V"))

    def _lvcreate(self, args: list[str]):
        if args[0] == "-T" and args[1] == "-V":  # thin volume: -T -V Ng -n NAME VG/POOL
            size, name, (vg, pool) = _gib(args[2]), args[4], args[5].split("/")
            if (vg, pool) not in self.lvs:
                return 5, "", f'  Failed to find logical volume "{vg}/{pool}"\n'
            attr = "Vwi-a-tz--"
        elif args[0] == "-T" and args[1] == "-L":  # thin pool: -T -L Ng VG/POOL
            size, (vg, name) = _gib(args[2]), args[3].split("/")
            attr, pool = "twi-a-tz--", ""
        else:  # thick: -n NAME VG -L Ng
            name, vg, size = args[1], args[2], _gib(args[4])
            attr, pool = "-wi-a-----", ""
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        if (vg, name) in self.lvs:
            return 5, "", f'  Logical Volume "{name}" already exists in volume group "{vg}"\n'
        if not attr.startswith("V") and size > self._vg_free(vg):
            return 5, "", f'  Volume group "{vg}" has insufficient free space\n'
        self.lvs[(vg, name)] = {"size": size, "attr": attr, "pool": pool if attr.startswith("V") else ""}
        return 0, f'  Logical volume "{name}" created.\n', ""

    def _lvs(self, args: list[str]):
        target = args[-1]
        vg, _, name = target.partition("/")
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n  Cannot process volume group {vg}\n'
        if name and (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        rows = [
            {"vg_name": g, "lv_name": n, "lv_size": str(lv["size"]), "lv_attr": lv["attr"], "lv_path": f"/dev/{g}/{n}",
             "pool_lv": lv["pool"]}
            for (g, n), lv in sorted(self.lvs.items())
            if g == vg and (not name or n == name)
        ]
        return 0, json.dumps({"report": [{"lv": rows}]}), ""

    def _vgs(self, args: list[str]):
        vg = args[-1]
        if vg not in self.vgs:
            return 5, "", f'  Volume group "{vg}" not found\n'
        row = {"vg_name": vg, "vg_size": str(self.vgs[vg]), "vg_free": str(self._vg_free(vg))}
        return 0, json.dumps({"report": [{"vg": [row]}]}), ""

    def _lvextend(self, args: list[str]):
        size, (vg, name) = _gib(args[1]), args[2].split("/")
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        self.lvs[(vg, name)]["size"] = size
        return 0, f'  Logical volume {vg}/{name} successfully resized.\n', ""

    def _lvremove(self, args: list[str]):
        vg, name = args[-1].split("/")
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        del self.lvs[(vg, name)]
        return 0, f'  Logical volume "{name}" successfully removed.\n', ""

    def _lvchange(self, args: list[str]):
        """lvchange -a y --yes -K VG/LV: activates, even an LV with the activation-skip flag."""
        vg, name = args[-1].split("/")
        if (vg, name) not in self.lvs:
            return 5, "", f'  Failed to find logical volume "{vg}/{name}"\n'
        attr = self.lvs[(vg, name)]["attr"]
        if args[:2] == ["-a", "y"] and ("-K" in args or attr[9:10] != "k"):
            self.lvs[(vg, name)]["attr"] = attr[:4] + "a" + attr[5:]
        return 0, "", ""

    def _udevadm(self, args: list[str]):
        return 0, "", ""

    def _dd(self, args: list[str]):
        count = int(next(a for a in args if a.startswith("count="))[6:])
        return 0, "", f"{count // 2} bytes copied\r{count} bytes ({count} B) copied, 0.1 s, 1 GB/s\n"

    # -- cinder-rtstool ------------------------------------------------------------------

    def _cinder_rtstool(self, args: list[str]):
        sub, rest = args[0], args[1:]
        if sub == "create":
            device, iqn, user, password, iser = rest[:5]
            if iqn in self.targets:
                return 0, "", ""
            ips = next((a[2:] for a in rest[5:] if a.startswith("-a")), "0.0.0.0")
            port = next((a[2:] for a in rest[5:] if a.startswith("-p")), "3260")
            self.targets[iqn] = FakeTarget(device, portals=tuple(f"{ip}:{port}" for ip in ips.split(",")), iser=iser == "True")
            return 0, "", ""
        if sub == "get-targets":
            return 0, "".join(f"{iqn}\n" for iqn in self.targets), ""
        if sub == "add-initiator":
            iqn, user, password, initiator = rest[:4]
            if iqn not in self.targets:
                return 1, "", f"Traceback (most recent call last):\ncinder.cmd.rtstool.RtstoolError: Could not find target {iqn}\n"
            self.targets[iqn].acls.setdefault(initiator.lower(), (user, password))
            return 0, "", ""
        if sub == "delete-initiator":
            iqn, initiator = rest[:2]
            if iqn not in self.targets:
                return 1, "", f"Traceback (most recent call last):\ncinder.cmd.rtstool.RtstoolError: Could not find target {iqn}\n"
            if self.targets[iqn].acls.pop(initiator.lower(), None) is None:
                return 0, f"delete_initiator: {initiator} ACL not found. Continuing.\n", ""
            return 0, "", ""
        if sub == "delete":
            self.targets.pop(rest[0], None)
            return 0, "", ""
        if sub == "save":
            self.saved = {iqn: FakeTarget(t.device, dict(t.acls), t.portals, t.iser) for iqn, t in self.targets.items()}
            path = Path(rest[0]) if rest else self.save_file
            if path is not None:
                if rest and not path.parent.is_dir():  # rtslib makes the directory only for its default
                    return 1, "", f"cinder.cmd.rtstool.RtstoolError: Could not save configuration to {path}\n"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(self._saveconfig(), indent=2))
            return 0, "", ""
        return 1, "Usage: cinder-rtstool ...\n", ""


    def _saveconfig(self) -> dict:
        """The shape rtslib's RTSRoot.save_to_file writes (only the parts volctl reads)."""
        return {
            "fabric_modules": [],
            "storage_objects": [{"name": iqn, "plugin": "block", "dev": t.device} for iqn, t in self.saved.items()],
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

    def _mirror_configfs(self) -> None:
        if self.configfs is None:
            return
        for existing in list(self.configfs.iterdir()):
            if existing.name not in self.targets:
                shutil.rmtree(existing)
        for iqn, target in self.targets.items():
            acls = self.configfs / iqn / "tpgt_1" / "acls"
            acls.mkdir(parents=True, exist_ok=True)
            if target.lun:
                (self.configfs / iqn / "tpgt_1" / "lun" / "lun_0").mkdir(parents=True, exist_ok=True)
            else:
                shutil.rmtree(self.configfs / iqn / "tpgt_1" / "lun", ignore_errors=True)
            for existing in list(acls.iterdir()):
                if existing.name not in target.acls:
                    shutil.rmtree(existing)
            for initiator in target.acls:
                (acls / initiator).mkdir(exist_ok=True)


def _gib(text: str) -> int:
    match = re.fullmatch(r"(\d+)g", text)
    assert match, text
    return int(match.group(1)) * GIB
