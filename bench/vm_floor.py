"""The floors of bench/vm_helpers.py: what volctl does with `target_helper = "rtslib"`, done with
bare rtslib-fb and nothing else, one Python process per call, as a person would script it.

Runs INSIDE the vmrun guest only, with the interpreter volctl runs on (.venv/bin/python), as
    python -c 'import sys; sys.path.insert(0, BENCH); import vm_floor; vm_floor.main()' STEP ARGS

- a flow step (create .. delete): the programs volctl ran for that step (lvcreate, lvs, lvremove:
  the same argv on another LV), the same rtslib calls the helper makes (the lookups included),
  the same per-target save of the saved config (the file read, the touched target and its
  storage object dumped from configfs, the file written once: atomically, 0600, fsync), and one
  SQLite write transaction (an UPDATE of an existing row), the least any step that records a
  state change must do. unexport, which finds nothing to do after detach, lists configfs and
  reads one row.
- `restore`: read the exports and their connections from the inventory (one query each), one
  `lvs` of the volume group (as volctl restore runs it), then every storage object, target, TPG,
  LUN, portal and CHAP ACL made in this one process, and one per-target save of all of them.

It prints its own timings as JSON on stdout; the bench times the whole process from outside.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time

CONFIGFS = "/sys/kernel/config/target/iscsi"


def _sql_write(db: str, name: str) -> None:
    c = sqlite3.connect(db, isolation_level=None, timeout=30)
    c.execute("BEGIN IMMEDIATE")
    c.execute("UPDATE volumes SET updated_at = updated_at WHERE name = ?", (name,))
    c.execute("COMMIT")
    c.close()


def _sql_read(db: str, name: str) -> None:
    c = sqlite3.connect(db, timeout=30)
    c.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
    c.close()


def _run(commands: list[list[str]]) -> None:
    for argv in commands:
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")


def _target(rts, iqn: str):
    if not os.path.isdir(f"{CONFIGFS}/{iqn}"):
        return None
    return rts.Target(rts.FabricModule("iscsi"), iqn, "lookup")


def _storage_object(rts, iqn: str, target):
    for tpg in target.tpgs if target is not None else ():
        for lun in tpg.luns:
            so = lun.storage_object
            if so.plugin == "block" and so.name == iqn:
                return so
    rts.tcm.bs_cache.clear()
    try:
        return rts.BlockStorageObject(iqn)
    except rts.utils.RTSLibError:
        return None


def save_targets(rts, path: str, iqns: list[str], live: dict | None = None) -> None:
    """Rewrite these targets (and their block storage objects) in the saved config as they are
    live now, everything else as it was. live: {iqn: (target, storage object)} already in hand."""
    with open(path) as f:
        document = json.load(f)
    gone = set(iqns)
    targets = [t for t in document.get("targets", []) if not (t.get("fabric") == "iscsi" and t.get("wwn") in gone)]
    sos = [s for s in document.get("storage_objects", []) if not (s.get("plugin") == "block" and s.get("name") in gone)]
    for iqn in iqns:
        if live is not None:
            target, so = live[iqn]
        else:
            target = _target(rts, iqn)
            so = _storage_object(rts, iqn, target)
        if target is not None:
            targets.append(target.dump())
        if so is not None:
            sos.append(so.dump())
    for so in sos:
        if so.get("exclusive") is True:  # what Debian 12's rtslib cannot restore (volctl drops it too)
            del so["exclusive"]
    document["targets"], document["storage_objects"] = targets, sos
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.floor"
    if os.path.exists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, sort_keys=True, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _portal(ip: str) -> str:
    return ip if ip.startswith("[") or "." in ip else f"[{ip}]"


def step(a: argparse.Namespace) -> dict:
    commands = json.loads(a.commands) if a.commands else []
    name = a.step
    if name in ("create", "reserve", "attach"):
        _run(commands)
        _sql_write(a.db, a.row)
        return {}
    if name in ("unexport", "delete"):
        sorted(os.listdir(CONFIGFS)) if os.path.isdir(CONFIGFS) else []  # the helper's exists()
        _run(commands)
        (_sql_read if name == "unexport" else _sql_write)(a.db, a.row)
        return {}
    import rtslib_fb as rts

    _run(commands)
    if name == "export":
        rts.RTSRoot()
        if _target(rts, a.iqn) is not None or _storage_object(rts, a.iqn, None) is not None:
            raise SystemExit(f"{a.iqn} exists")
        so = rts.BlockStorageObject(name=a.iqn, dev=a.dev)
        target = rts.Target(rts.FabricModule("iscsi"), a.iqn, "create")
        tpg = rts.TPG(target, mode="create")
        tpg.set_attribute("authentication", "1")
        rts.LUN(tpg, storage_object=so)
        tpg.enable = 1
        rts.NetworkPortal(tpg, _portal(a.ip), a.port, mode="any")
    elif name == "connect":
        tpg = next(_target(rts, a.iqn).tpgs)
        if not any(acl.node_wwn.lower() == a.initiator.lower() for acl in tpg.node_acls):
            acl = rts.NodeACL(tpg, a.initiator, mode="create")
            acl.chap_userid = a.user
            acl.chap_password = a.password
            rts.MappedLUN(acl, 0, tpg_lun=0)
    elif name == "disconnect":
        for acl in next(_target(rts, a.iqn).tpgs).node_acls:
            if acl.node_wwn.lower() == a.initiator.lower():
                acl.delete()
    elif name == "detach":
        target = _target(rts, a.iqn)
        so = _storage_object(rts, a.iqn, target)
        target.delete()
        so.delete()
    else:
        raise SystemExit(f"no floor for step {name}")
    save_targets(rts, a.save, [a.iqn])
    _sql_write(a.db, a.row)
    return {}


def restore(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    c = sqlite3.connect(a.db, timeout=30)
    volumes = c.execute("SELECT id, volume_group, lv_name, provider_location, provider_auth FROM volumes "
                        "WHERE provider_location IS NOT NULL").fetchall()
    connections: dict[str, list[str]] = {}
    for volume_id, initiator in c.execute("SELECT volume_id, initiator FROM connections"):
        connections.setdefault(volume_id, []).append(initiator)
    c.close()
    t1 = time.perf_counter()
    _run([["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
           "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv", a.vg]])
    t2 = time.perf_counter()
    import rtslib_fb as rts

    t3 = time.perf_counter()
    rts.RTSRoot()
    iscsi = rts.FabricModule("iscsi")
    live = {}
    for volume_id, vg, lv, location, auth in volumes:
        portals, iqn = location.split()[0].split(",")[0], location.split()[1]
        _, user, password = auth.split(" ", 3)[:3]
        so = rts.BlockStorageObject(name=iqn, dev=f"/dev/{vg}/{lv}")
        target = rts.Target(iscsi, iqn, "create")
        tpg = rts.TPG(target, mode="create")
        tpg.set_attribute("authentication", "1")
        lun = rts.LUN(tpg, storage_object=so)
        tpg.enable = 1
        for portal in portals.split(";"):
            ip, _, port = portal.rpartition(":")
            rts.NetworkPortal(tpg, _portal(ip.strip("[]")), int(port), mode="any")
        for initiator in connections.get(volume_id, []):
            acl = rts.NodeACL(tpg, initiator, mode="create")
            acl.chap_userid = user
            acl.chap_password = password
            rts.MappedLUN(acl, 0, tpg_lun=lun.lun)
        live[iqn] = (target, so)
    t4 = time.perf_counter()
    save_targets(rts, a.save, sorted(live), live)
    t5 = time.perf_counter()
    return {"exports": len(volumes), "read_s": t1 - t0, "lvs_s": t2 - t1, "import_rtslib_s": t3 - t2,
            "create_s": t4 - t3, "save_s": t5 - t4}


def main() -> None:
    p = argparse.ArgumentParser(prog="vm_floor")
    p.add_argument("step")
    p.add_argument("--db", required=True)
    p.add_argument("--row", help="the existing volume row a step's SQLite write updates")
    p.add_argument("--iqn")
    p.add_argument("--dev")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--initiator")
    p.add_argument("--save", help="the saved LIO config")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3260)
    p.add_argument("--vg")
    p.add_argument("--commands", help="JSON list of argv lists: the programs volctl ran for this step")
    a = p.parse_args(sys.argv[1:])
    print(json.dumps(restore(a) if a.step == "restore" else step(a)))


if __name__ == "__main__":
    main()
