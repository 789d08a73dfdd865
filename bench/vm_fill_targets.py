"""Filler LIO targets for bench/vm_flow.py, made in-process with rtslib-fb (one Python start for all
of them; a cinder-rtstool call per target would cost ~3 s each under TCG).

Each filler looks like a volume Cinder exported and connected: a nullio ramdisk backstore (no
memory behind it), an iSCSI target with TPG 1 (authentication=1, enabled), LUN 0, the portal
127.0.0.1:3260, and one node ACL with CHAP and mapped LUN 0.

Runs INSIDE the vmrun guest only, with the tools venv's python (which has rtslib_fb):
    .cache/vm/tools/bin/python bench/vm_fill_targets.py FIRST COUNT
Prints {"created": COUNT, "seconds": S} on stdout.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "vm"))
from guard import require_guest  # noqa: E402

PREFIX = "iqn.2010-10.org.openstack:bench-filler-"
INITIATOR = "iqn.1994-05.com.redhat:bench-filler-client"


def main() -> None:
    require_guest()
    import rtslib_fb

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
