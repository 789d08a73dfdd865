"""Filler LIO targets for bench/vm_flow.py, made in-process with rtslib-fb (one Python start for all
of them; a cinder-rtstool call per target would cost ~3 s each under TCG).

Each filler looks like a volume Cinder exported and connected: a nullio ramdisk backstore (no
memory behind it), an iSCSI target with TPG 1 (authentication=1, enabled), LUN 0, the portal
127.0.0.1:3260, and one node ACL with CHAP and mapped LUN 0.

Runs INSIDE the vmrun guest only, with the tools venv's python (which has rtslib_fb):
    .cache/vm/tools/bin/python bench/vm_fill_targets.py FIRST COUNT
Prints {"created": COUNT, "seconds": S} on stdout.

    .cache/vm/tools/bin/python bench/vm_fill_targets.py --saved FILE FIRST COUNT
writes instead a saved config holding what is live plus COUNT filler entries, each a copy of
filler FIRST's own dump with the names, CHAP and unit serial replaced: what a host's saved file
holds, made in seconds where rtslib's full dump of 1,000 targets takes ~12 minutes under TCG
(BENCHMARKS.md). Only the connect benchmark uses it: the bytes of the other entries do not
matter to a merge of one target, their number does.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "vm"))
from guard import require_guest  # noqa: E402

PREFIX = "iqn.2010-10.org.openstack:bench-filler-"
INITIATOR = "iqn.1994-05.com.redhat:bench-filler-client"


def write_saved(path: str, first: int, count: int) -> None:
    import copy

    import rtslib_fb

    root = rtslib_fb.RTSRoot()
    name, so_name = f"{PREFIX}{first:05d}", f"bench-filler-{first:05d}"
    target = next(t for t in root.targets if t.wwn == name).dump()
    so = next(s for s in root.storage_objects if s.name == so_name).dump()
    document = {"fabric_modules": [], "storage_objects": [], "targets": []}
    for i in range(first, first + count):
        t = json.loads(json.dumps(target).replace(name, f"{PREFIX}{i:05d}").replace(so_name, f"bench-filler-{i:05d}")
                       .replace(f"filleruser{first:010d}", f"filleruser{i:010d}")
                       .replace(f"fillerpw{first:08d}", f"fillerpw{i:08d}"))
        s = copy.deepcopy(so)
        s["name"] = f"bench-filler-{i:05d}"
        if "wwn" in s:
            s["wwn"] = f"{s['wwn'][:-8]}{i:08x}"
        document["targets"].append(t)
        document["storage_objects"].append(s)
    with open(path, "w") as f:
        json.dump(document, f)


def main() -> None:
    require_guest()
    import rtslib_fb

    if sys.argv[1] == "--saved":
        started = time.monotonic()
        write_saved(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps({"saved": int(sys.argv[4]), "seconds": round(time.monotonic() - started, 3)}))
        return
    first, count = int(sys.argv[1]), int(sys.argv[2])
    started = time.monotonic()
    rtslib_fb.RTSRoot()  # mounts configfs and loads target_core_mod (rtslib does not on its own)
    iscsi = rtslib_fb.FabricModule("iscsi")
    for i in range(first, first + count):
        name = f"{PREFIX}{i:05d}"
        so = rtslib_fb.RDMCPStorageObject(f"bench-filler-{i:05d}", size=1024 * 1024, nullio=True)
        target = rtslib_fb.Target(iscsi, name, "create")
        tpg = rtslib_fb.TPG(target, 1, mode="create")
        tpg.set_attribute("authentication", "1")
        lun = rtslib_fb.LUN(tpg, 0, storage_object=so)
        acl = rtslib_fb.NodeACL(tpg, INITIATOR, mode="create")
        acl.chap_userid = f"filleruser{i:010d}"
        acl.chap_password = f"fillerpw{i:08d}"
        rtslib_fb.MappedLUN(acl, 0, lun.lun)
        tpg.enable = 1
        rtslib_fb.NetworkPortal(tpg, "127.0.0.1", 3260, mode="any")
    print(json.dumps({"created": count, "seconds": round(time.monotonic() - started, 3)}))


if __name__ == "__main__":
    main()
