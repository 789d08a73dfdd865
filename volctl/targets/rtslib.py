"""`target_helper = "rtslib"`: LIO driven in-process through rtslib-fb, the library
cinder-rtstool itself wraps (the optional extra: `pip install 'volctl[rtslib]'`).

It makes exactly the objects cinder-rtstool makes (lio-lvm-facts.md §1.9), under the same
host-wide LIO lock, so the two helpers can be switched on a live host. Two things differ, and
are why it exists:
- no program is started, so the CHAP password is on no command line; it goes from the inventory
  straight into configfs (`auth/password` of the NodeACL);
- a change set rewrites only the targets it touched in the saved config, read from configfs by
  themselves, instead of rtslib's save_to_file, whose every call (a "partial" one too, §1.2) dumps
  every object on the host first: its cost grew to 350 s at 1,008 targets (BENCHMARKS.md).
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from typing import Sequence

from volctl.errors import EnvironmentProblem, TargetFailed
from volctl.iscsi import Chap
from volctl.redact import mask
from volctl.targets import saved
from volctl.targets.lio import LioTarget

# An HBA directory under configfs's target/core (iblock_0, fileio_3, rd_mcp_2), as rtslib names them.
_HBA = re.compile(r".+_[0-9]+")
_RTSLIB_MISSING = ('target_helper = "rtslib" needs rtslib-fb in the Python that runs volctl '
                   "(pip install 'volctl[rtslib]')")


def _portal_address(ip: str) -> str:
    """rtslib wants an IPv6 address in brackets, as cinder-rtstool's _canonicalize_ip gives it."""
    return ip if ip.startswith("[") or "." in ip else f"[{ip}]"


class RtslibTarget(LioTarget):
    name = "rtslib"

    @cached_property
    def _rts(self):
        try:
            import rtslib_fb  # deferred: only this helper needs it, and it is an optional extra
        except ImportError as e:
            raise EnvironmentProblem(f"{_RTSLIB_MISSING}: {e}") from None
        return rtslib_fb

    def _failed(self, what: str, error: Exception, secrets: Sequence[str] = ()) -> TargetFailed:
        return TargetFailed(mask(f"rtslib: {what}: {error}", secrets))

    @property
    def _errors(self) -> tuple[type[Exception], ...]:
        return (self._rts.utils.RTSLibError, OSError)

    def _target(self, iqn: str):
        """The live iSCSI target, or None. A lookup by its configfs path: nothing else is listed."""
        if not (self.configfs / iqn).is_dir():
            return None
        return self._rts.Target(self._rts.FabricModule("iscsi"), iqn, "lookup")

    def _storage_object(self, iqn: str, target=None):
        """The block storage object named by the IQN: through the target's LUN when there is one
        (a symlink away), else looked up by name."""
        for tpg in target.tpgs if target is not None else ():
            for lun in tpg.luns:
                so = lun.storage_object
                if so.plugin == saved.BLOCK_PLUGIN and so.name == iqn:
                    return so
        self._fresh_backstore_index()
        try:
            return self._rts.BlockStorageObject(iqn)
        except self._rts.utils.RTSLibError:
            if any(key.endswith(f"/{iqn}") for key in self._rts.tcm.bs_cache):
                # named in the index but gone (removed elsewhere, its HBA number taken again):
                # the create that follows would take the stale entry for one that exists
                self._rts.tcm.bs_cache.clear()
            return None

    def _fresh_backstore_index(self) -> None:
        """Empty rtslib's per-process index of storage objects (`tcm.bs_cache`: name to HBA index,
        filled from configfs when empty) when it no longer names the HBA directories that are
        there: another process may have made or removed one since it was filled, and a stale
        index would hand out a taken HBA or miss a storage object. Refilling lists every HBA
        directory, so doing it before every export made a restore of N exports read N x N of them
        (BENCHMARKS.md section 4, 1,000 exports); this check reads one directory."""
        index = self._rts.tcm.bs_cache
        try:
            present = {name for name in os.listdir(self.configfs.parent / "core") if _HBA.fullmatch(name)}
        except OSError:
            present = None  # no core/ to compare with: rtslib's own lookup decides
        known = {f"{key.partition('/')[0]}_{number}" for key, number in index.items()}
        if present != known:
            index.clear()

    # -- the primitives ----------------------------------------------------------------------

    def _create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None:
        rts = self._rts
        made: list = []
        try:
            rts.RTSRoot()  # mounts configfs and loads target_core_mod when needed, as rtstool's does
            if self._target(iqn) is not None:
                return
            # This lookup also refills rtslib's per-process backstore index cache under the lock,
            # so an index another volctl (or cinder-rtstool) took since is not handed out twice.
            if self._storage_object(iqn) is not None:
                raise TargetFailed(f"rtslib: a block storage object named {iqn} exists without its target "
                                   f"(left by an interrupted export; targetcli /backstores/block delete {iqn} removes it)")
            so = rts.BlockStorageObject(name=iqn, dev=device)
            made.append(so)
            target = rts.Target(rts.FabricModule("iscsi"), iqn, "create")
            made.append(target)
            tpg = rts.TPG(target, mode="create")
            tpg.set_attribute("authentication", "1")
            rts.LUN(tpg, storage_object=so)
            tpg.enable = 1
            for ip in ips:
                portal = rts.NetworkPortal(tpg, _portal_address(ip), port, mode="any")
                if iser:
                    portal.iser = True
        except self._errors as e:
            # unlike cinder-rtstool, leave nothing half-made behind
            for obj in reversed(made):
                try:
                    obj.delete()
                except self._errors:
                    pass
            raise self._failed(f"create target {iqn}", e, [chap.password]) from None

    def _delete(self, iqn: str) -> None:
        try:
            target = self._target(iqn)
            so = self._storage_object(iqn, target)
            if target is not None:
                target.delete()
            if so is not None:
                so.delete()
        except self._errors as e:
            raise self._failed(f"delete target {iqn}", e) from None

    def _add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        rts = self._rts
        acl = None
        try:
            target = self._target(iqn)
            if target is None:
                raise TargetFailed(f"rtslib: add ACL for {initiator}: target {iqn} is not live")
            tpg = next(target.tpgs, None)
            if tpg is None:
                raise TargetFailed(f"rtslib: add ACL for {initiator}: target {iqn} has no TPG (not made by volctl?)")
            if any(acl.node_wwn.lower() == initiator.lower() for acl in tpg.node_acls):
                return  # as cinder-rtstool: an existing ACL keeps its CHAP
            acl = rts.NodeACL(tpg, initiator, mode="create")
            acl.chap_userid = chap.username
            acl.chap_password = chap.password
            rts.MappedLUN(acl, 0, tpg_lun=0)
        except self._errors as e:
            if acl is not None:  # a half-made ACL would pass for a whole one with the next connect
                try:
                    acl.delete()
                except self._errors:
                    pass
            raise self._failed(f"add ACL for {initiator} on {iqn}", e, [chap.password]) from None

    def _delete_initiator(self, iqn: str, initiator: str) -> bool:
        try:
            target = self._target(iqn)
            if target is None:
                return False
            tpg = next(target.tpgs, None)
            for acl in tpg.node_acls if tpg is not None else ():
                if acl.node_wwn.lower() == initiator.lower():
                    acl.delete()
                    return True
            return False
        except self._errors as e:
            raise self._failed(f"remove ACL for {initiator} from {iqn}", e) from None

    def _targets(self) -> list[str]:
        if not self.configfs.is_dir():
            return []  # the iscsi fabric is not loaded: no iSCSI target can exist
        return self.live_targets()

    # -- persistence -------------------------------------------------------------------------

    def _persist(self, iqns: frozenset[str]) -> None:
        """Rewrite only these targets (and their storage objects) in the saved config, each dumped
        from configfs by itself: the same dicts save_to_file's full dump holds for them."""
        if not iqns:
            return
        try:
            document = saved.read(self.save_file)
        except EnvironmentProblem:
            document = None  # unreadable: as a full save would, write it anew
        if document is None:
            self._save_all()
            return
        try:
            for iqn in sorted(iqns):
                target = self._target(iqn)
                so = self._storage_object(iqn, target)
                document = saved.merged(document, iqn, target.dump() if target is not None else None,
                                        so.dump() if so is not None else None)
        except self._errors as e:
            raise self._failed("read the targets to save", e) from None
        saved.restorable_by_older_rtslib(document)
        saved.write(self.save_file, document)

    def _save_all(self) -> None:
        try:
            document = self._rts.RTSRoot().dump()
        except self._errors as e:
            raise self._failed("dump the running LIO config", e) from None
        saved.restorable_by_older_rtslib(document)
        saved.write(self.save_file, document)
