"""Bare nvmet for bench/vm_nvme.py: the configfs objects volctl's nvmet helper makes, written with
os calls and nothing else (no volctl import), one Python process per call.

Runs INSIDE the vmrun guest only, with the interpreter volctl runs on (.venv/bin/python):

    python bench/vm_nvmet_bare.py fill --first F --count N --device DEV
        N filler subsystems as a host where volctl exported and connected N volumes has them:
        `nqn.nvme-subsystem-1-<uuid>` with allow_any_host 0, namespace 10 enabled on DEV (one
        small device shared by all: nvmet opens a namespace's device without exclusivity), one
        allowed host of its own (`...:bench-filler-<i>`), linked to port 1 (127.0.0.1:4420, TCP);
        then the saved nvmet config rewritten with all of them (--save FILE, nvmetcli's format).
    python bench/vm_nvmet_bare.py restore --db DB --vg VG --save FILE
        the floor of `volctl restore`: the recorded exports and their connections read from the
        inventory (one query each), the same `lvs` volctl restore runs, then every subsystem,
        namespace, host, allowed-host link, port and port link written in configfs, and one save
        of all of them (each dumped from configfs as nvmetcli's save does, merged into the saved
        file, written atomically, 0600, fsynced).
    python bench/vm_nvmet_bare.py drop-fillers --save FILE
        the fillers removed again (their port too when nothing else uses it), and from the saved file.
    python bench/vm_nvmet_bare.py clear
        everything in nvmet's configfs removed (nvmetcli clear; what a reboot leaves).

Each prints its own timings as JSON on stdout; the bench times the whole process from outside.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

NVMET = "/sys/kernel/config/nvmet"
PREFIX = "nqn.nvme-subsystem-1-"  # volctl's default nvmet_target_prefix
FILLER_HOST = "nqn.2014-08.org.nvmexpress.volctl:bench-filler-"
NS_ID = 10
PORT_ID = 1
LVS = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
       "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv"]


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def loaded() -> None:
    if not os.path.isdir(NVMET):
        for module in ("nvmet", "nvmet-tcp"):
            subprocess.run(["modprobe", module], check=True)


def ensure_port(ip: str = "127.0.0.1", port: int = 4420, port_id: int = PORT_ID) -> str:
    path = f"{NVMET}/ports/{port_id}"
    if not os.path.isdir(path):
        os.mkdir(path)
        _write(f"{path}/addr_trtype", "tcp")
        _write(f"{path}/addr_adrfam", "ipv4")
        _write(f"{path}/addr_traddr", ip)
        _write(f"{path}/addr_trsvcid", str(port))
    return path


def make_export(nqn: str, device: str, volume_id: str, hosts: list[str], port: str) -> None:
    """One volume's export as volctl makes it (nvmet.py _create_export, _allow): the subsystem closed to
    unknown hosts, its namespace on the device, each host's entry linked in, the port link last."""
    sub = f"{NVMET}/subsystems/{nqn}"
    os.mkdir(sub)
    _write(f"{sub}/attr_allow_any_host", "0")
    ns = f"{sub}/namespaces/{NS_ID}"
    os.mkdir(ns)
    _write(f"{ns}/device_path", device)
    _write(f"{ns}/device_uuid", volume_id)
    _write(f"{ns}/device_nguid", volume_id)
    _write(f"{ns}/enable", "1")
    for host in hosts:
        entry = f"{NVMET}/hosts/{host}"
        if not os.path.isdir(entry):
            os.mkdir(entry)
        os.symlink(entry, f"{sub}/allowed_hosts/{host}")
    os.symlink(sub, f"{port}/subsystems/{nqn}")


# -- nvmetcli's save, bare -----------------------------------------------------------------------

def _group(path: str, group: str) -> dict:
    """The writable attribute files of a group (nvmetcli's CFSNode.dump), names without the prefix."""
    out = {}
    for name in sorted(os.listdir(path)):
        if not name.startswith(group + "_"):
            continue
        full = f"{path}/{name}"
        st = os.stat(full)
        if st.st_mode & 0o600 == 0o600 and not os.path.isdir(full):
            out[name[len(group) + 1:]] = _read(full)
    return out


def dump_subsystem(nqn: str) -> dict:
    sub = f"{NVMET}/subsystems/{nqn}"
    namespaces = []
    for ns in sorted(os.listdir(f"{sub}/namespaces"), key=int):
        path = f"{sub}/namespaces/{ns}"
        entry = {"nsid": int(ns), "enable": int(_read(f"{path}/enable") or 0), "device": _group(path, "device")}
        if os.path.exists(f"{path}/ana_grpid"):
            entry["ana_grpid"] = int(_read(f"{path}/ana_grpid") or 1)
        namespaces.append(entry)
    return {"nqn": nqn, "attr": _group(sub, "attr"), "namespaces": namespaces,
            "allowed_hosts": sorted(os.listdir(f"{sub}/allowed_hosts"))}


def dump_host(host: str) -> dict:
    path = f"{NVMET}/hosts/{host}"
    out: dict = {"nqn": host}
    if os.path.exists(f"{path}/dhchap_key"):
        out["dhchap"] = {k: _read(f"{path}/dhchap_{k}") for k in ("key", "ctrl_key", "hash", "dhgroup")}
    return out


def dump_port(port_id: str) -> dict:
    path = f"{NVMET}/ports/{port_id}"
    return {"portid": int(port_id), "addr": _group(path, "addr"), "subsystems": sorted(os.listdir(f"{path}/subsystems")),
            "referrals": [], "ana_groups": []}


def save(path: str, nqns: list[str], hosts: list[str], ports: list[str]) -> None:
    """These subsystems, hosts and ports as they are live, merged into the saved file (everything
    else as it was), written one entry a line, atomically, 0600, fsynced (as nvmetcli's save_to_file)."""
    try:
        with open(path) as f:
            document = json.load(f)
    except FileNotFoundError:
        document = {"discovery": {}, "hosts": [], "ports": [], "subsystems": []}
    subsystems = {s["nqn"]: s for s in document.get("subsystems", [])}
    host_entries = {h["nqn"]: h for h in document.get("hosts", [])}
    port_entries = {p["portid"]: p for p in document.get("ports", [])}
    for nqn in nqns:
        subsystems[nqn] = dump_subsystem(nqn)
    for host in hosts:
        host_entries[host] = dump_host(host)
    for port in ports:
        port_entries[int(port)] = dump_port(port)
    document.update(subsystems=[subsystems[k] for k in sorted(subsystems)], hosts=[host_entries[k] for k in sorted(host_entries)],
                    ports=[port_entries[k] for k in sorted(port_entries)])
    lines = ["{"]
    keys = sorted(document)
    for i, key in enumerate(keys):
        value = document[key]
        comma = "," if i < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            lines += [f"    {json.dumps(v, sort_keys=True)}{',' if j < len(value) - 1 else ''}" for j, v in enumerate(value)]
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    text = "\n".join(lines) + "\n}\n"
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.temp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# -- the commands --------------------------------------------------------------------------------

def fill(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    loaded()
    port = ensure_port()
    nqns, hosts = [], []
    for i in range(a.first, a.first + a.count):
        volume_id = str(uuid.UUID(int=(0xB0 << 120) | i, version=4))
        nqn, host = PREFIX + volume_id, f"{FILLER_HOST}{i:05d}"
        make_export(nqn, a.device, volume_id, [host], port)
        nqns.append(nqn)
        hosts.append(host)
    t1 = time.perf_counter()
    if a.save:
        save(a.save, nqns, hosts, [str(PORT_ID)])
    return {"created": a.count, "create_s": round(t1 - t0, 3), "save_s": round(time.perf_counter() - t1, 3)}


def restore(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    c = sqlite3.connect(a.db, timeout=30)
    exports = c.execute("SELECT id, volume_group, lv_name, provider_location FROM volumes "
                        "WHERE provider_location IS NOT NULL AND export_protocol = 'nvmet_tcp'").fetchall()
    connections: dict[str, list[str]] = {}
    for volume_id, host in c.execute("SELECT volume_id, initiator FROM connections"):
        connections.setdefault(volume_id, []).append(host)
    c.close()
    t1 = time.perf_counter()
    done = subprocess.run([*LVS, a.vg], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lvs: exit {done.returncode}: {done.stderr.strip()}")
    t2 = time.perf_counter()
    loaded()
    nqns, hosts = [], set()
    port = None
    for volume_id, vg, lv, location in exports:
        address, _transport, nqn, _ns_id = location.split(" ")
        ip, _, tcp_port = address.rpartition(":")
        port = port or ensure_port(ip.split(",")[0], int(tcp_port))
        mine = connections.get(volume_id, [])
        make_export(nqn, f"/dev/{vg}/{lv}", volume_id, mine, port)
        nqns.append(nqn)
        hosts.update(mine)
    t3 = time.perf_counter()
    save(a.save, nqns, sorted(hosts), [str(PORT_ID)])
    t4 = time.perf_counter()
    return {"exports": len(nqns), "read_s": t1 - t0, "lvs_s": t2 - t1, "create_s": t3 - t2, "save_s": t4 - t3}


def remove_export(nqn: str) -> None:
    sub = f"{NVMET}/subsystems/{nqn}"
    for port in os.listdir(f"{NVMET}/ports"):
        if os.path.islink(f"{NVMET}/ports/{port}/subsystems/{nqn}"):
            os.unlink(f"{NVMET}/ports/{port}/subsystems/{nqn}")
    for host in os.listdir(f"{sub}/allowed_hosts"):
        os.unlink(f"{sub}/allowed_hosts/{host}")
    for ns in os.listdir(f"{sub}/namespaces"):
        _write(f"{sub}/namespaces/{ns}/enable", "0")
        os.rmdir(f"{sub}/namespaces/{ns}")
    os.rmdir(sub)


def drop_fillers(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    fillers = [n for n in os.listdir(f"{NVMET}/subsystems") if n.startswith(f"{PREFIX}b0000000-")]
    for nqn in fillers:
        remove_export(nqn)
    for host in os.listdir(f"{NVMET}/hosts"):
        if host.startswith(FILLER_HOST):
            os.rmdir(f"{NVMET}/hosts/{host}")
    ports = []
    for port in os.listdir(f"{NVMET}/ports"):
        if not os.listdir(f"{NVMET}/ports/{port}/subsystems"):
            os.rmdir(f"{NVMET}/ports/{port}")
        else:
            ports.append(port)
    with open(a.save) as f:
        document = json.load(f)
    gone = set(fillers)
    document["subsystems"] = [s for s in document.get("subsystems", []) if s["nqn"] not in gone]
    document["hosts"] = [h for h in document.get("hosts", []) if not h["nqn"].startswith(FILLER_HOST)]
    document["ports"] = [p for p in document.get("ports", []) if str(p["portid"]) in ports]
    with open(a.save, "w") as f:
        json.dump(document, f)
    save(a.save, [], [], ports)
    return {"dropped": len(fillers), "seconds": round(time.perf_counter() - t0, 3)}


def clear(_: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    if os.path.isdir(NVMET):
        for port in os.listdir(f"{NVMET}/ports"):
            for link in os.listdir(f"{NVMET}/ports/{port}/subsystems"):
                os.unlink(f"{NVMET}/ports/{port}/subsystems/{link}")
            os.rmdir(f"{NVMET}/ports/{port}")
        for nqn in os.listdir(f"{NVMET}/subsystems"):
            sub = f"{NVMET}/subsystems/{nqn}"
            for host in os.listdir(f"{sub}/allowed_hosts"):
                os.unlink(f"{sub}/allowed_hosts/{host}")
            for ns in os.listdir(f"{sub}/namespaces"):
                _write(f"{sub}/namespaces/{ns}/enable", "0")
                os.rmdir(f"{sub}/namespaces/{ns}")
            os.rmdir(sub)
        for host in os.listdir(f"{NVMET}/hosts"):
            os.rmdir(f"{NVMET}/hosts/{host}")
    return {"clear_s": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(prog="vm_nvmet_bare")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fill")
    f.add_argument("--first", type=int, default=0)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--device", required=True)
    f.add_argument("--save", help="the saved nvmet config to write the fillers into")
    r = sub.add_parser("restore")
    r.add_argument("--db", required=True)
    r.add_argument("--vg", required=True)
    r.add_argument("--save", required=True)
    d = sub.add_parser("drop-fillers")
    d.add_argument("--save", required=True)
    sub.add_parser("clear")
    a = p.parse_args(sys.argv[1:])
    print(json.dumps({"fill": fill, "restore": restore, "drop-fillers": drop_fillers, "clear": clear}[a.command](a)))


if __name__ == "__main__":
    main()
