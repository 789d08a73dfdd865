"""A stand-in for the `rtslib_fb` module, for tests of volctl/targets/rtslib.py: the constructors
and properties that helper (and cinder-rtstool) use, with rtslib-fb 2.2's signatures and
create/lookup modes, a configfs-like tree kept under a tmp dir as the kernel lays it out, and a
record of every call with whether the host-wide LIO lock was held when it was made.

Calls are recorded as tuples naming the objects by their configfs paths relative to the iscsi
directory (`IQN/tpgt_1`, `IQN/tpgt_1/acls/INITIATOR`) and storage objects as `block/NAME`, so a
test can assert which objects were handed to which constructor, in which order.

Storage objects also live where the kernel keeps them, `core/iblock_N/NAME` beside the iscsi
directory, and `tcm.bs_cache` is rtslib's per-process index of them, kept as rtslib keeps it:
filled from core/ when it is empty, trusted otherwise. So a stale index misleads the helper here
as it would on a host, and what "another process" does (`elsewhere_make`, `elsewhere_remove`)
changes core/ without this process's index knowing. A stale index that hands out a taken HBA, or
makes a second storage object of one name, fails the test.
"""

from __future__ import annotations

import itertools
import shutil
import types
from dataclasses import dataclass
from pathlib import Path

from faketarget import lock_is_held


# A block storage object's attributes as a new one has them in configfs (a few of LIO's many).
STORAGE_OBJECT_ATTRIBUTES = {"block_size": 512, "emulate_tpu": 0, "emulate_tpws": 0}

class RTSLibError(Exception):
    pass


@dataclass
class _Failure:
    call: str
    message: str
    times: int
    making_only: bool


def _hba_parts(name: str) -> tuple[str, int]:
    """An HBA directory's name, iblock_3, as rtslib splits it: ("iblock", 3)."""
    prefix, _, number = name.rpartition("_")
    return prefix, int(number)


def _lowest_free(taken: set[int]) -> int:
    """The HBA number rtslib hands out: the lowest one not taken."""
    return next(i for i in itertools.count() if i not in taken)


class _BsCache(dict):
    """rtslib.tcm.bs_cache: the per-process index of backstores, "iblock/NAME" -> HBA number."""

    def __init__(self, rts: FakeRtslib):
        super().__init__()
        self._rts = rts

    def clear(self) -> None:
        self._rts.record("bs_cache.clear")
        super().clear()


class FakeRtslib:
    LOOKUPS = ("RTSRoot", "bs_cache.clear", "bs_cache.fill", "dump", "RTSRoot.dump")

    def __init__(self, configfs: Path, lock_path: Path):
        self.configfs = configfs
        self.core = configfs.parent / "core"
        self.core.mkdir(exist_ok=True)  # there whenever target_core_mod is loaded
        self.lock_path = lock_path
        self.calls: list[tuple] = []
        self.locked: list[bool] = []
        self.storage_objects: dict[str, StorageObject] = {}
        self.targets: dict[str, Target] = {}
        self.fabric_modules = [{"name": "iscsi", "discovery_enable_auth": False}]
        self.failures: list[_Failure] = []
        self.module = self._module()

    def _module(self) -> types.ModuleType:
        rts = self
        module = types.ModuleType("rtslib_fb")
        module.utils = types.SimpleNamespace(RTSLibError=RTSLibError)
        module.tcm = types.SimpleNamespace(bs_cache=_BsCache(self))
        module.RTSLibError = RTSLibError

        def RTSRoot():  # noqa: N802 - rtslib's names
            rts.record("RTSRoot")
            return types.SimpleNamespace(dump=rts.dump_all)

        def FabricModule(name):  # noqa: N802
            return types.SimpleNamespace(name=name)

        def BlockStorageObject(name, dev=None, wwn=None, readonly=False, write_back=False, index=None, exclusive=True):  # noqa: N802
            rts.record("BlockStorageObject", name, dev)
            cache = module.tcm.bs_cache
            if not cache:  # rtslib's _Backstore: an empty index is filled from configfs, else trusted
                rts.record("bs_cache.fill")
                for so_dir in rts.core.glob("*_*/*/"):
                    prefix, number = _hba_parts(so_dir.parent.name)
                    cache[f"{prefix}/{so_dir.name}"] = number
            number = cache.get(f"iblock/{name}")
            if dev is None:
                if number is None or not (rts.core / f"iblock_{number}" / name).is_dir():
                    raise RTSLibError(f"No such storage object: block:{name}")
                return rts.storage_objects[name]
            if number is not None:
                raise RTSLibError(f"Storage object block/{name} exists")
            number = cache[f"iblock/{name}"] = _lowest_free(set(cache.values()))
            return rts.make_storage_object(name, dev, number)

        def Target(fabric_module, wwn=None, mode="any"):  # noqa: N802
            rts.record("Target", fabric_module.name, wwn, mode)
            if mode == "lookup":
                if wwn not in rts.targets:
                    raise RTSLibError(f"No such Target in configfs: {wwn}")
                return rts.targets[wwn]
            if wwn in rts.targets:
                raise RTSLibError("This Target already exists in configFS")
            target = rts.targets[wwn] = _Target(rts, wwn, fabric_module.name)
            rts.mkdir(wwn)
            return target

        def TPG(parent_target, tag=None, mode="any"):  # noqa: N802
            rts.record("TPG", parent_target.wwn, mode)
            tpg = _TPG(rts, parent_target, tag or len(parent_target.tpg_list) + 1)
            parent_target.tpg_list.append(tpg)
            for sub in ("acls", "lun", "np"):
                rts.mkdir(f"{tpg.path}/{sub}")
            return tpg

        def LUN(parent_tpg, lun=None, storage_object=None, alias=None):  # noqa: N802
            rts.record("LUN", parent_tpg.path, storage_object.path)
            made = _LUN(rts, parent_tpg, len(parent_tpg.lun_list) if lun is None else lun, storage_object)
            parent_tpg.lun_list.append(made)
            rts.mkdir(made.path)
            # as in configfs: the LUN links to its storage object (a name of LIO's own choosing)
            (rts.configfs / made.path / "a1b2c3d4e5").symlink_to(storage_object.directory)
            return made

        def NetworkPortal(parent_tpg, ip_address, port=3260, mode="any"):  # noqa: N802
            rts.record("NetworkPortal", parent_tpg.path, ip_address, port, mode)
            portal = _Portal(rts, parent_tpg, ip_address, port)
            parent_tpg.portal_list.append(portal)
            rts.mkdir(portal.path)
            return portal

        def NodeACL(parent_tpg, node_wwn, mode="any"):  # noqa: N802
            rts.record("NodeACL", parent_tpg.path, node_wwn, mode)
            acl = _NodeACL(rts, parent_tpg, node_wwn.lower())  # rtslib normalizes an iqn to lower case
            parent_tpg.acl_list.append(acl)
            rts.mkdir(acl.path)
            return acl

        def MappedLUN(parent_nodeacl, mapped_lun, tpg_lun=None, write_protect=None, alias=None):  # noqa: N802
            rts.record("MappedLUN", parent_nodeacl.path, mapped_lun, tpg_lun)
            parent_nodeacl.mapped.append({"index": mapped_lun, "tpg_lun": tpg_lun, "write_protect": False})
            rts.mkdir(f"{parent_nodeacl.path}/lun_{mapped_lun}")

        for factory in (RTSRoot, FabricModule, BlockStorageObject, Target, TPG, LUN, NetworkPortal, NodeACL, MappedLUN):
            setattr(module, factory.__name__, factory)
        module.root = types.SimpleNamespace(RTSRoot=RTSRoot)
        return module

    # -- test controls -----------------------------------------------------------------------

    def fail(self, call: str, message: str = "simulated RTSLibError", times: int = 1, making_only: bool = False) -> None:
        """Make the next `times` calls named `call` raise RTSLibError (before doing anything);
        with making_only, only those that make (not a lookup of the same constructor)."""
        self.failures.append(_Failure(call, message, times, making_only))

    @classmethod
    def making(cls, call: tuple) -> bool:
        return (call[0] not in cls.LOOKUPS and not (call[0] == "Target" and call[3] == "lookup")
                and not (call[0] == "BlockStorageObject" and call[2] is None))

    def made(self) -> list[tuple]:
        """The calls that make, change or remove something: not the lookups and dumps."""
        return [c for c in self.calls if self.making(c)]

    def seed(self, iqn: str, dev: str, *initiators: str) -> None:
        """A target as cinder-rtstool makes it, made before the test looks (its calls forgotten)."""
        m = self.module
        so = m.BlockStorageObject(name=iqn, dev=dev)
        tpg = m.TPG(m.Target(m.FabricModule("iscsi"), iqn, "create"), mode="create")
        tpg.set_attribute("authentication", "1")
        m.LUN(tpg, storage_object=so)
        tpg.enable = 1
        m.NetworkPortal(tpg, "127.0.0.1", 3260, mode="any")
        for initiator in initiators:
            acl = m.NodeACL(tpg, initiator, mode="create")
            acl.chap_userid, acl.chap_password = "seeduser", "seedpassword"
            m.MappedLUN(acl, 0, tpg_lun=0)
        self.calls.clear()
        self.locked.clear()

    def elsewhere_make(self, name: str, dev: str) -> None:
        """Another process makes a storage object (its own index filled from core/ now)."""
        self.make_storage_object(name, dev, _lowest_free({_hba_parts(hba.name)[1] for hba in self.core.glob("*_*")}))

    def elsewhere_remove(self, name: str) -> None:
        """Another process removes a storage object and its HBA, as rtslib's delete does."""
        so = self.storage_objects.pop(name)
        shutil.rmtree(self.core / f"iblock_{so.number}")

    def hbas(self) -> dict[str, list[str]]:
        return {hba.name: sorted(p.name for p in hba.iterdir()) for hba in sorted(self.core.glob("*_*"))}

    # -- what the fakes share ----------------------------------------------------------------

    def record(self, *call) -> None:
        self.calls.append(call)
        self.locked.append(lock_is_held(self.lock_path))
        for failure in self.failures:
            if failure.call == call[0] and failure.times != 0 and (self.making(call) or not failure.making_only):
                failure.times -= 1
                raise RTSLibError(failure.message)

    def make_storage_object(self, name: str, dev: str, number: int) -> StorageObject:
        hba = self.core / f"iblock_{number}"
        assert name not in self.storage_objects, f"a second storage object named {name}: a stale index missed the first"
        assert not (hba.is_dir() and any(hba.iterdir())), f"{hba.name} holds {list(hba.iterdir())}: a stale index handed it out"
        (hba / name / "attrib").mkdir(parents=True)
        for attribute, value in STORAGE_OBJECT_ATTRIBUTES.items():
            (hba / name / "attrib" / attribute).write_text(f"{value}\n")
        so = self.storage_objects[name] = StorageObject(self, name, dev, number)
        return so

    def mkdir(self, path: str) -> None:
        (self.configfs / path).mkdir(parents=True, exist_ok=True)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(self.configfs / path, ignore_errors=True)

    def dump_all(self) -> dict:
        self.record("RTSRoot.dump")
        return {"fabric_modules": [dict(f) for f in self.fabric_modules],
                "storage_objects": [so.data() for so in self.storage_objects.values()],
                "targets": [t.data() for t in self.targets.values()]}


class StorageObject:
    plugin = "block"

    def __init__(self, rts: FakeRtslib, name: str, dev: str, number: int):
        self.rts, self.name, self.dev, self.number = rts, name, dev, number
        self.path = f"block/{name}"

    @property
    def directory(self):
        return self.rts.core / f"iblock_{self.number}" / self.name

    def delete(self, save=False):
        self.rts.record("delete", self.path)
        del self.rts.storage_objects[self.name]
        shutil.rmtree(self.rts.core / f"iblock_{self.number}")  # rtslib removes the HBA with it
        self.rts.module.tcm.bs_cache.pop(f"iblock/{self.name}", None)

    def data(self) -> dict:
        return {"name": self.name, "plugin": "block", "dev": self.dev, "exclusive": True, "readonly": False,
                "write_back": False, "wwn": f"wwn-of-{self.name}",
                # as rtslib's dump: every attribute as configfs has it now, as an int where it parses
                "attributes": {a.name: int(a.read_text()) for a in sorted((self.directory / "attrib").iterdir())},
                "alua_tpgs": [{"name": "default_tg_pt_gp", "tg_pt_gp_id": 0}]}

    def dump(self) -> dict:
        self.rts.record("dump", self.path)
        return self.data()


class _Target:
    def __init__(self, rts: FakeRtslib, wwn: str, fabric: str):
        self.rts, self.wwn, self.fabric = rts, wwn, fabric
        self.path = wwn
        self.tpg_list: list[_TPG] = []

    @property
    def tpgs(self):
        return iter(list(self.tpg_list))  # a generator in rtslib: next() works, len() does not

    def delete(self):
        self.rts.record("delete", self.path)
        self.rts.rmtree(self.path)
        del self.rts.targets[self.wwn]

    def data(self) -> dict:
        return {"wwn": self.wwn, "fabric": self.fabric, "parameters": {}, "tpgs": [t.data() for t in self.tpg_list]}

    def dump(self) -> dict:
        self.rts.record("dump", self.path)
        return self.data()


class _TPG:
    def __init__(self, rts: FakeRtslib, target: _Target, tag: int):
        self.rts, self.target, self.tag = rts, target, tag
        self.path = f"{target.wwn}/tpgt_{tag}"
        self.attributes: dict[str, str] = {}
        self._enable = 0
        self.lun_list: list[_LUN] = []
        self.portal_list: list[_Portal] = []
        self.acl_list: list[_NodeACL] = []

    def set_attribute(self, name, value):
        self.rts.record("set_attribute", self.path, name, value)
        self.attributes[name] = value

    @property
    def enable(self):
        return self._enable

    @enable.setter
    def enable(self, value):
        self.rts.record("enable", self.path, value)
        self._enable = value

    @property
    def luns(self):
        return iter(list(self.lun_list))

    @property
    def node_acls(self):
        return iter(list(self.acl_list))

    def data(self) -> dict:
        return {"tag": self.tag, "enable": bool(self._enable), "attributes": {k: int(v) for k, v in self.attributes.items()},
                "parameters": {"AuthMethod": "CHAP,None"},
                "luns": [{"index": lun.lun, "storage_object": f"/backstores/block/{lun.storage_object.name}"} for lun in self.lun_list],
                "portals": [{"ip_address": p.ip, "port": p.port, "iser": p.iser_value, "offload": False} for p in self.portal_list],
                "node_acls": [acl.data() for acl in self.acl_list]}


class _LUN:
    def __init__(self, rts: FakeRtslib, tpg: _TPG, lun: int, storage_object: StorageObject):
        self.rts, self.lun, self.storage_object = rts, lun, storage_object
        self.path = f"{tpg.path}/lun/lun_{lun}"


class _Portal:
    def __init__(self, rts: FakeRtslib, tpg: _TPG, ip: str, port: int):
        self.rts, self.ip, self.port = rts, ip, port
        self.path = f"{tpg.path}/np/{ip}:{port}"
        self.iser_value = False

    @property
    def iser(self):
        return self.iser_value

    @iser.setter
    def iser(self, value):
        self.rts.record("iser", self.path, value)
        self.iser_value = value


class _NodeACL:
    def __init__(self, rts: FakeRtslib, tpg: _TPG, node_wwn: str):
        self.rts, self.tpg, self.node_wwn = rts, tpg, node_wwn
        self.path = f"{tpg.path}/acls/{node_wwn}"
        self.auth = {"userid": "", "password": ""}
        self.mapped: list[dict] = []

    @property
    def chap_userid(self):
        return self.auth["userid"]

    @chap_userid.setter
    def chap_userid(self, value):
        self.rts.record("chap_userid", self.path, value)
        self.auth["userid"] = value

    @property
    def chap_password(self):
        return self.auth["password"]

    @chap_password.setter
    def chap_password(self, value):
        self.rts.record("chap_password", self.path, value)
        self.auth["password"] = value

    def delete(self):
        self.rts.record("delete", self.path)
        self.rts.rmtree(self.path)
        self.tpg.acl_list.remove(self)

    def data(self) -> dict:
        return {"node_wwn": self.node_wwn, "attributes": {"dataout_timeout": 3},
                "auth": {**self.auth, "mutual_userid": "", "mutual_password": ""}, "mapped_luns": list(self.mapped)}
