"""A stand-in for the `rtslib_fb` module whose whole state is a configfs-like tree on disk, as the
kernel's is: any number of processes (real volctl processes and the test itself) share one fake
LIO by sharing the directory, with nothing kept in memory but rtslib's own per-process index of
storage objects (`tcm.bs_cache`, filled from core/ when empty and trusted otherwise, as rtslib's).
For the behaviour suites (tests/worlds.py); tests/fakertslib.py is the in-memory one that
tests/test_target_rtslib*.py assert the helper's exact calls against.

The tree (<iscsi> is the configfs iscsi directory volctl reads, <core> beside it):

    <iscsi>/<wwn>/tpgt_<tag>/{enable, attrib/<name>}
    <iscsi>/<wwn>/tpgt_<tag>/lun/lun_<n>/storage_object      "iblock_<hba>/<name>"
    <iscsi>/<wwn>/tpgt_<tag>/np/<ip>:<port>/iser
    <iscsi>/<wwn>/tpgt_<tag>/acls/<initiator>/{auth/userid, auth/password, lun_<n>/tpg_lun}
    <core>/iblock_<hba>/<name>/udev_path

Every call the helper makes belongs to one of its steps (tests/helpersteps.py), found on the
stack: the outermost frame of volctl/targets/rtslib.py's _create, _add_initiator,
_delete_initiator, _delete, _persist or _save_all. A fault fails the step at its first library
call (nothing done), or with `effect` at the call after which the step is half done (the
portals of a new target, the LUN mapping of a new ACL), or with `echo` at the call that carries
a secret (an ACL's CHAP password), its message holding the call's arguments. A hang `after`
waits for the step's frame to return (a profile hook), so its work is all done.
"""

from __future__ import annotations

import itertools
import shutil
import sys
import types
from pathlib import Path

from helpersteps import Invocation, Steps

HELPER_MODULE = "volctl.targets.rtslib"
STEP_OF = {"_create": "create_export", "_add_initiator": "allow", "_delete_initiator": "disallow",
           "_delete": "remove_export", "_persist": "persist", "_save_all": "persist"}
# The call after which a step is half done: where a fault with `effect` fails it.
HALF_DONE_AT = {"create_export": "NetworkPortal", "allow": "MappedLUN"}


class RTSLibError(Exception):
    pass


def _step_frame():
    """The outermost frame of a helper step on this thread's stack, or None."""
    frame, found = sys._getframe(2), None
    while frame is not None:
        if frame.f_code.co_name in STEP_OF and frame.f_globals.get("__name__") == HELPER_MODULE:
            found = frame
        frame = frame.f_back
    return found


def _read(path: Path, default: str = "") -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return default


class SharedRtslib:
    def __init__(self, iscsi: Path, steps: Steps | None = None):
        self.iscsi = iscsi
        self.core = iscsi.parent / "core"
        self.core.mkdir(parents=True, exist_ok=True)  # there whenever target_core_mod is loaded
        self.steps = steps
        self._frame = None  # the step the last call belonged to (a strong reference: never reused)
        self._invocation: Invocation | None = None
        self.module = self._module()

    # -- steps ---------------------------------------------------------------------------------

    def call(self, name: str, *args, secret: bool = False) -> None:
        """Every entry point, before it does anything: its step's fault or hang."""
        if self.steps is None:
            return
        frame = _step_frame()
        if frame is None:
            return
        first = frame is not self._frame
        if first:
            self._frame = frame
            self._invocation = invocation = self.steps.begin(STEP_OF[frame.f_code.co_name])
            self._watch_return(frame, invocation)
            invocation.hang_if("before")
        invocation = self._invocation
        fault = invocation.fault
        if fault is None:
            return
        if fault.effect:
            fires = name == HALF_DONE_AT[fault.step]
        elif fault.echo and invocation.step == "allow":
            fires = secret
        else:
            fires = first
        if fires:
            text = fault.text + (f": {name}{args!r}" if fault.echo else "")
            raise RTSLibError(text) if self._making(name, args) else OSError(5, text)

    @staticmethod
    def _making(name: str, args: tuple) -> bool:
        """Lookups fail as a read of configfs does (OSError): rtslib's own RTSLibError from a
        lookup means "not there" to the helper, which a lost read must not pass for."""
        if name in ("RTSRoot", "dump", "RTSRoot.dump"):
            return False
        if name == "Target" and args[-1] == "lookup":
            return False
        if name == "BlockStorageObject" and args[1] is None:
            return False
        return True

    def _watch_return(self, frame, invocation: Invocation) -> None:
        """The step's end: logged, and a hang `after` taken there (its work all done)."""
        if not (self.steps.log_path or (invocation.hang and invocation.hang.when == "after")):
            return
        previous = sys.getprofile()

        def profile(f, event, arg):
            if event == "return" and f is frame:
                sys.setprofile(previous)
                invocation.hang_if("after")
                invocation.end()

        sys.setprofile(profile)

    # -- the module ----------------------------------------------------------------------------

    def _module(self) -> types.ModuleType:
        lib = self
        module = types.ModuleType("rtslib_fb")
        module.utils = types.SimpleNamespace(RTSLibError=RTSLibError)
        module.RTSLibError = RTSLibError
        module.tcm = types.SimpleNamespace(bs_cache={})

        def RTSRoot():  # noqa: N802 - rtslib's names
            lib.call("RTSRoot")
            return types.SimpleNamespace(dump=lib.dump_all)

        def FabricModule(name):  # noqa: N802
            return types.SimpleNamespace(name=name)

        def BlockStorageObject(name, dev=None, wwn=None, readonly=False, write_back=False, index=None, exclusive=True):  # noqa: N802
            lib.call("BlockStorageObject", name, dev)
            cache = module.tcm.bs_cache
            if not cache:  # rtslib's _Backstore: an empty index is filled from configfs, else trusted
                for so_dir in lib.core.glob("*_*/*/"):
                    prefix, _, number = so_dir.parent.name.rpartition("_")
                    cache[f"{prefix}/{so_dir.name}"] = int(number)
            number = cache.get(f"iblock/{name}")
            if dev is None:
                if number is None or not (lib.core / f"iblock_{number}" / name).is_dir():
                    raise RTSLibError(f"No such storage object: block:{name}")
                return _StorageObject(lib, name, number)
            if number is not None:
                raise RTSLibError(f"Storage object block/{name} exists")
            number = next(i for i in itertools.count() if i not in set(cache.values()))
            hba = lib.core / f"iblock_{number}"
            assert not (hba.is_dir() and any(hba.iterdir())), f"{hba} holds {list(hba.iterdir())}: a stale index handed it out"
            (hba / name).mkdir(parents=True)
            (hba / name / "udev_path").write_text(dev)
            cache[f"iblock/{name}"] = number
            return _StorageObject(lib, name, number)

        def Target(fabric_module, wwn=None, mode="any"):  # noqa: N802
            lib.call("Target", fabric_module.name, wwn, mode)
            path = lib.iscsi / wwn
            if mode == "lookup":
                if not path.is_dir():
                    raise RTSLibError(f"No such Target in configfs: {wwn}")
            elif path.is_dir():
                raise RTSLibError("This Target already exists in configFS")
            else:
                path.mkdir(parents=True)
            return _Target(lib, wwn)

        def TPG(parent_target, tag=None, mode="any"):  # noqa: N802
            lib.call("TPG", parent_target.wwn, mode)
            tag = tag or len(list(parent_target.path.glob("tpgt_*"))) + 1
            tpg = _TPG(lib, parent_target, tag)
            for sub in ("acls", "lun", "np", "attrib"):
                (tpg.path / sub).mkdir(parents=True, exist_ok=True)
            (tpg.path / "enable").write_text("0")
            return tpg

        def LUN(parent_tpg, lun=None, storage_object=None, alias=None):  # noqa: N802
            lib.call("LUN", parent_tpg.name, storage_object.name)
            index = len(list((parent_tpg.path / "lun").iterdir())) if lun is None else lun
            path = parent_tpg.path / "lun" / f"lun_{index}"
            path.mkdir()
            (path / "storage_object").write_text(f"iblock_{storage_object.number}/{storage_object.name}")
            return _LUN(lib, path)

        def NetworkPortal(parent_tpg, ip_address, port=3260, mode="any"):  # noqa: N802
            lib.call("NetworkPortal", parent_tpg.name, ip_address, port, mode)
            path = parent_tpg.path / "np" / f"{ip_address}:{port}"
            path.mkdir(exist_ok=True)
            (path / "iser").write_text("0")
            return _Portal(lib, path)

        def NodeACL(parent_tpg, node_wwn, mode="any"):  # noqa: N802
            lib.call("NodeACL", parent_tpg.name, node_wwn, mode)
            path = parent_tpg.path / "acls" / node_wwn.lower()  # rtslib normalizes an iqn to lower case
            (path / "auth").mkdir(parents=True)
            return _NodeACL(lib, path)

        def MappedLUN(parent_nodeacl, mapped_lun, tpg_lun=None, write_protect=None, alias=None):  # noqa: N802
            lib.call("MappedLUN", parent_nodeacl.node_wwn, mapped_lun, tpg_lun)
            path = parent_nodeacl.path / f"lun_{mapped_lun}"
            path.mkdir()
            (path / "tpg_lun").write_text(str(tpg_lun))

        for factory in (RTSRoot, FabricModule, BlockStorageObject, Target, TPG, LUN, NetworkPortal, NodeACL, MappedLUN):
            setattr(module, factory.__name__, factory)
        module.root = types.SimpleNamespace(RTSRoot=RTSRoot)
        return module

    # -- views, for the tests ------------------------------------------------------------------

    def storage_objects(self) -> list[_StorageObject]:
        found = []
        for so_dir in sorted(self.core.glob("iblock_*/*/")):
            found.append(_StorageObject(self, so_dir.name, int(so_dir.parent.name.rpartition("_")[2])))
        return found

    def targets(self) -> list[_Target]:
        return [_Target(self, p.name) for p in sorted(self.iscsi.iterdir()) if p.name.startswith(("iqn.", "eui.", "naa."))]

    def dump_all(self) -> dict:
        self.call("RTSRoot.dump")
        return {"fabric_modules": [{"name": "iscsi", "discovery_enable_auth": False}],
                "storage_objects": [so.data() for so in self.storage_objects()],
                "targets": [t.data() for t in self.targets()]}


class _StorageObject:
    plugin = "block"

    def __init__(self, lib: SharedRtslib, name: str, number: int):
        self.lib, self.name, self.number = lib, name, number
        self.path = lib.core / f"iblock_{number}" / name

    def delete(self, save=False):
        self.lib.call("delete", f"block/{self.name}")
        shutil.rmtree(self.path.parent)  # rtslib removes the HBA with it
        self.lib.module.tcm.bs_cache.pop(f"iblock/{self.name}", None)

    def data(self) -> dict:
        return {"name": self.name, "plugin": "block", "dev": _read(self.path / "udev_path"), "exclusive": True,
                "readonly": False, "write_back": False, "wwn": f"wwn-of-{self.name}", "attributes": {"block_size": 512},
                "alua_tpgs": [{"name": "default_tg_pt_gp", "tg_pt_gp_id": 0}]}

    def dump(self) -> dict:
        self.lib.call("dump", f"block/{self.name}")
        return self.data()


class _Target:
    def __init__(self, lib: SharedRtslib, wwn: str):
        self.lib, self.wwn = lib, wwn
        self.path = lib.iscsi / wwn

    @property
    def tpgs(self):  # a generator in rtslib: next() works, len() does not
        return (_TPG(self.lib, self, int(p.name.rpartition("_")[2])) for p in sorted(self.path.glob("tpgt_*")))

    def delete(self):
        self.lib.call("delete", self.wwn)
        shutil.rmtree(self.path)

    def data(self) -> dict:
        return {"wwn": self.wwn, "fabric": "iscsi", "parameters": {}, "tpgs": [t.data() for t in self.tpgs]}

    def dump(self) -> dict:
        self.lib.call("dump", self.wwn)
        return self.data()


class _TPG:
    def __init__(self, lib: SharedRtslib, target: _Target, tag: int):
        self.lib, self.target, self.tag = lib, target, tag
        self.path = target.path / f"tpgt_{tag}"
        self.name = f"{target.wwn}/tpgt_{tag}"

    def set_attribute(self, name, value):
        self.lib.call("set_attribute", self.name, name, value)
        (self.path / "attrib" / name).write_text(str(value))

    @property
    def enable(self):
        return int(_read(self.path / "enable", "0"))

    @enable.setter
    def enable(self, value):
        self.lib.call("enable", self.name, value)
        (self.path / "enable").write_text(str(int(value)))

    @property
    def luns(self):
        return (_LUN(self.lib, p) for p in sorted((self.path / "lun").glob("lun_*")))

    @property
    def node_acls(self):
        return (_NodeACL(self.lib, p) for p in sorted((self.path / "acls").iterdir()))

    def data(self) -> dict:
        attributes = {p.name: int(p.read_text()) for p in sorted((self.path / "attrib").iterdir())}
        return {"tag": self.tag, "enable": bool(self.enable), "attributes": attributes,
                "parameters": {"AuthMethod": "CHAP,None"},
                "luns": [{"index": lun.index, "storage_object": f"/backstores/block/{lun.storage_object.name}"}
                         for lun in self.luns],
                "portals": [{"ip_address": p.name.rpartition(":")[0], "port": int(p.name.rpartition(":")[2]),
                             "iser": _read(p / "iser") == "1", "offload": False}
                            for p in sorted((self.path / "np").iterdir())],
                "node_acls": [acl.data() for acl in self.node_acls]}


class _LUN:
    def __init__(self, lib: SharedRtslib, path: Path):
        self.lib, self.path = lib, path
        self.index = int(path.name.rpartition("_")[2])

    @property
    def storage_object(self) -> _StorageObject:
        hba, _, name = _read(self.path / "storage_object").partition("/")
        return _StorageObject(self.lib, name, int(hba.rpartition("_")[2]))


class _Portal:
    def __init__(self, lib: SharedRtslib, path: Path):
        self.lib, self.path = lib, path

    @property
    def iser(self):
        return _read(self.path / "iser") == "1"

    @iser.setter
    def iser(self, value):
        self.lib.call("iser", self.path.name, value)
        (self.path / "iser").write_text("1" if value else "0")


class _NodeACL:
    def __init__(self, lib: SharedRtslib, path: Path):
        self.lib, self.path = lib, path
        self.node_wwn = path.name

    @property
    def chap_userid(self):
        return _read(self.path / "auth" / "userid")

    @chap_userid.setter
    def chap_userid(self, value):
        self.lib.call("chap_userid", self.node_wwn, value)
        (self.path / "auth" / "userid").write_text(value)

    @property
    def chap_password(self):
        return _read(self.path / "auth" / "password")

    @chap_password.setter
    def chap_password(self, value):
        self.lib.call("chap_password", self.node_wwn, value, secret=True)
        (self.path / "auth" / "password").write_text(value)

    def delete(self):
        self.lib.call("delete", self.node_wwn)
        shutil.rmtree(self.path)

    def data(self) -> dict:
        mapped = [{"index": int(p.name.rpartition("_")[2]), "tpg_lun": int(_read(p / "tpg_lun", "0")), "write_protect": False}
                  for p in sorted(self.path.glob("lun_*"))]
        return {"node_wwn": self.node_wwn, "attributes": {"dataout_timeout": 3},
                "auth": {"userid": self.chap_userid, "password": self.chap_password, "mutual_userid": "",
                         "mutual_password": ""},
                "mapped_luns": mapped}
