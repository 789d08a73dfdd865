"""The power-cut test's guest side (tests/vm/power_cut runs it; issue 24).

    power_cut.py life SEED    boot 1: the lives of a few volumes, each command's exit code on
                              stdout as it returns; the host cuts the power during the
                              command the seed picks
    power_cut.py check LOG    boot 2, on the same disk: what boot 1's stdout (LOG, as the host
                              saw it before the cut) says returned must be there, and the host
                              must come back whole

The inventory and both saved configs live on ext4 on vmrun's --disk (an LV `state` in the test's
volume group): not on the guest's tmpfs overlay or a 9p share, which a cut does not touch. The
guest's / is fresh at every boot, so boot 2 finds only what reached that disk.

Each line boot 1 prints is one JSON object: {"armed": ...} just before the command the seed picks
(the host starts its clock there), {"run": argv} before a command, {"rc": N, "argv": argv, "status": S} after it, and
{"wrote": NAME, "sha256": ...} after bytes written straight to an LV are fsynced.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "tests" / "vm"), str(REPO / "scripts")]

import initiator  # noqa: E402
from guard import DISK_SERIAL, require_guest  # noqa: E402

VG = "volctl-cut"
DISK_FS = Path("/mnt/volctl-disk")  # ext4 on the persistent disk; each of PERSISTENT bound from it
STATE = Path("/var/lib/volctl")  # volctl's default inventory directory
# What a storage host keeps on its disk: the inventory, and the saved LIO and nvmet configs at the
# paths the host's restore units read (volctl's defaults on Debian).
PERSISTENT = (STATE, Path("/etc/rtslib-fb-target"), Path("/etc/nvmet"))
DB = STATE / "volctl.db"
SECRETS = STATE / "connections.json"  # what each connect printed (the CHAP credentials)
CONFIGS = Path("/etc/volctl")
TOOLS = REPO / ".cache" / "vm" / "tools" / "bin"
VOLCTL = REPO / ".venv" / "bin" / "volctl"
INITIATOR = "iqn.2024-01.test.volctl:cut-initiator"
OFFSET, LENGTH = 1024 * 1024, 1024 * 1024
HELPERS = ("lioadm", "rtslib")
# A command that exits 0 having found nothing to do says so in a note, and records nothing: the
# history holds transitions and external commands (contract), and an `unexport` after the last
# `detach` (which removed the export, as Cinder's detach does) is neither on an NVMe/TCP host.
NOTHING_DONE = ("is not exported", "is already exported", "is already attached as")
# Busy states no volume may keep after doctor --repair; `attaching` is a reservation, a resting state
TRANSIENT = {"creating", "detaching", "extending", "deleting", "managing", "unmanaging", "reverting"}


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=600)


def write_configs() -> None:
    CONFIGS.mkdir(parents=True, exist_ok=True)
    common = f'volume_group = "{VG}"\ntarget_ip_address = "127.0.0.1"\nvolume_clear = "none"\n'
    for helper in HELPERS:
        (CONFIGS / f"{helper}.toml").write_text(common + f'target_helper = "{helper}"\n')
    (CONFIGS / "nvme.toml").write_text(common + 'target_protocol = "nvmet_tcp"\n')


def env() -> dict:
    return {**os.environ, "VOLCTL_DB": str(DB), "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}


def volctl(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VOLCTL), "--config", str(CONFIGS / f"{config}.toml"), *args], capture_output=True,
                          text=True, env=env(), timeout=900)


def mount_state(fresh: bool) -> None:
    disk = require_guest("VMRUN_DISK", DISK_SERIAL)
    if fresh:
        sh("pvcreate", "-qq", "-ff", "-y", disk)
        sh("vgcreate", "-qq", VG, disk)
        sh("lvcreate", "-qq", "-y", "-L", "256m", "-n", "state", VG)
        sh("mkfs.ext4", "-q", f"/dev/{VG}/state")
    else:
        sh("vgchange", "-qq", "-ay", VG)
    DISK_FS.mkdir(parents=True, exist_ok=True)
    # ext4's defaults (data=ordered, barriers on): what a storage host runs
    sh("mount", f"/dev/{VG}/state", str(DISK_FS))
    for path in PERSISTENT:
        kept = DISK_FS / path.relative_to("/")
        kept.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        sh("mount", "--bind", str(kept), str(path))


def nvme_host() -> str:
    import nvme_initiator

    return nvme_initiator.prepare()


# -- boot 1 ---------------------------------------------------------------------------------------


def life(seed: int) -> None:
    rng = random.Random(seed)
    mount_state(fresh=True)
    write_configs()
    initiator.start_iscsid(INITIATOR)
    host_nqn = nvme_host()
    secrets: dict[str, dict] = {}
    # Three volumes, one per way of exporting; each life ends at its own step, so some stay
    # exported (restore's work after the cut) and some are gone. The seed picks the command the
    # cut comes in: the guest arms the host's clock just before it, and the host cuts a few
    # seconds later (tests/vm/power_cut), so a slow machine cuts as far into the lives as a fast one.
    plans = [("lioadm", INITIATOR, None), ("rtslib", INITIATOR, None), ("nvme", host_nqn, "nvmet_tcp")]
    rng.shuffle(plans)
    lives = []
    for number, (config, host, protocol) in enumerate(plans):
        name = f"cut{seed}-{number}"
        steps = lifecycle(name, host, protocol)
        lives.append((config, name, steps[:rng.randint(4, len(steps))]))
    commands = sum(1 for _, _, steps in lives for step in steps if step != "write")
    armed_before = rng.randrange(commands)
    started, armed = 0, False
    for config, name, steps in lives:
        for step in steps:
            if step == "write":
                write_bytes(name)
                continue
            if started >= armed_before and not armed:  # >=: a life that failed early skips commands
                emit(armed=seed)
                armed = True
            started += 1
            argv = list(step)
            emit(run=argv, config=config)
            done = volctl(config, "--json", *argv)
            status = None
            try:
                out = json.loads(done.stdout) if done.stdout.strip() else {}
                status = out.get("status") if isinstance(out, dict) else None
                if argv[0] == "connect" and done.returncode == 0:
                    secrets[name] = out
                    write_private(SECRETS, json.dumps(secrets))
            except ValueError:
                pass
            emit(rc=done.returncode, argv=argv, config=config, status=status,
                 error=done.stderr.strip().splitlines()[-1:] if done.returncode else None,
                 notes=done.stderr.strip().splitlines()[-3:] if not done.returncode else None)
            if done.returncode:
                break  # an honest failure ends this life; the check still holds what returned 0
    emit(done=seed)


def lifecycle(name: str, host: str, protocol: str | None) -> list:
    by_host = ["--initiator", host]
    export = ["--protocol", protocol] if protocol else []
    return [
        ("create", "--size", "1", "--name", name),
        "write",
        ("reserve", name),
        ("connect", name, *by_host, *export),
        ("attach", name, "--instance", str(uuid.uuid5(uuid.NAMESPACE_URL, name)), *by_host),
        ("extend", name, "--size", "2"),
        ("snapshot", "create", name, "--name", f"{name}-snap", "--force"),
        ("snapshot", "delete", f"{name}-snap"),
        ("detach", name),
        ("disconnect", name, *by_host),
        ("unexport", name),
        ("delete", name),
    ]


def write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_bytes(name: str) -> None:
    shown = json.loads(volctl("lioadm", "--json", "show", name).stdout)
    data = hashlib.sha256(name.encode()).digest() * (LENGTH // 32)
    fd = os.open(shown["lv_path"], os.O_WRONLY)
    try:
        os.pwrite(fd, data, OFFSET)
        os.fsync(fd)
    finally:
        os.close(fd)
    emit(wrote=name, sha256=hashlib.sha256(data).hexdigest())


# -- boot 2 ---------------------------------------------------------------------------------------


class Failed(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def expect(condition: bool, message: str, kind: str = "state") -> None:
    """kind: what a failure counts as in bench/power_cuts.py's tally (corrupt, lost, converge,
    restore, state, bytes)."""
    if not condition:
        raise Failed(kind, message)


def check(log_path: str) -> None:
    entries = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.startswith("{")]
    expect(any("armed" in e for e in entries), "boot 1 never armed the cut: no cut to check")
    mount_state(fresh=False)
    write_configs()
    initiator.start_iscsid(INITIATOR)
    nvme_host()

    conn = sqlite3.connect(DB)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchall()
        expect(verdict == [("ok",)], f"integrity_check: {verdict}", "corrupt")
        # A cut in the first command may come before its migrations commit: no tables yet, as
        # on a host where volctl never ran (nothing had returned, so nothing can be missing).
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        events = conn.execute("SELECT volume_name, action, kind FROM events").fetchall() if "events" in tables else []
    finally:
        conn.close()
    report = {"integrity": "ok", "lost": 0}

    failed = [e for e in entries if e.get("rc") not in (None, 0)]
    expect(not failed, f"commands failed before the cut: {failed}", "boot1")
    returned = [e for e in entries if e.get("rc") == 0]
    started = [e for e in entries if "run" in e]
    in_flight = started[len([e for e in entries if "rc" in e]):]
    lost = []
    for entry in returned:
        if any(said in note for note in entry.get("notes") or () for said in NOTHING_DONE):
            continue
        argv = entry["argv"]
        # a snapshot's rows are under its own name; a volume's under the volume's
        name, action = (argv[2] if argv[1] == "delete" else argv[argv.index("--name") + 1], argv[1]) \
            if argv[0] == "snapshot" else (volume_of(argv), argv[0])
        if not any(ev[0] == name and ev[1] == action for ev in events):
            lost.append(argv)
    expect(not lost, f"commands that returned 0 before the cut are not in the history: {lost}", "lost")
    report["returned"] = len(returned)

    # Each volume whose last command returned, with nothing of it in flight: as that command left it.
    last: dict[str, dict] = {}
    for entry in returned:
        # delete prints no volume (no status): it still ends its volume's life
        if entry["argv"][0] == "delete" or (entry["argv"][0] != "snapshot" and entry.get("status")):
            last[volume_of(entry["argv"])] = entry
    busy = {volume_of(e["run"]) for e in in_flight}
    for name, entry in last.items():
        if name in busy:
            continue
        shown = volctl("lioadm", "--json", "show", name)
        if entry["argv"][0] == "delete":
            expect(shown.returncode == 3, f"{name}: deleted before the cut, but show exits {shown.returncode}")
            continue
        expect(shown.returncode == 0, f"{name}: {entry['argv'][0]} returned 0 before the cut, but show exits "
                                      f"{shown.returncode}: {shown.stderr.strip()}")
        status = json.loads(shown.stdout)["status"]
        expect(status == entry["status"], f"{name}: {status} after the cut, {entry['status']} when "
                                          f"{entry['argv'][0]} returned")

    # doctor --repair converges, and a second look is clean
    repairs = []
    for _ in range(3):
        repaired = volctl("lioadm", "--json", "doctor", "--repair")
        repairs.append(repaired.returncode)
        if repaired.returncode == 0:
            break
    expect(repairs[-1] == 0, f"doctor --repair did not converge: exits {repairs}: {repaired.stdout[-2000:]}"
                             f"{repaired.stderr[-500:]}", "converge")
    report["repairs"] = repairs

    restored = volctl("lioadm", "--json", "restore")
    expect(restored.returncode == 0, f"restore exits {restored.returncode}: {restored.stdout[-1500:]} "
                                     f"{restored.stderr[-500:]}", "restore")
    clean = volctl("lioadm", "--json", "doctor")
    expect(clean.returncode == 0 and json.loads(clean.stdout)["clean"] is True,
           f"doctor after repair and restore: exit {clean.returncode}: {clean.stdout[-2000:]}", "converge")
    listed = json.loads(volctl("lioadm", "--json", "list").stdout)
    for volume in listed:
        expect(volume["status"] not in TRANSIENT, f"{volume['name']} still {volume['status']}")

    # Every recorded iSCSI export takes a CHAP login with what its connect printed, and reads
    # the bytes written before the cut.
    secrets = json.loads(SECRETS.read_text()) if SECRETS.exists() else {}
    wrote = {e["wrote"]: e["sha256"] for e in entries if "wrote" in e}
    logins = 0
    for volume in listed:
        name, info = volume["name"], secrets.get(volume["name"])
        shown = json.loads(volctl("lioadm", "--json", "show", name).stdout)
        if not info or info.get("driver_volume_type") != "iscsi" or not shown.get("connections") \
                or name not in wrote:
            continue
        session = initiator.login(info["data"])
        try:
            device = session.device(wait=120)
            fd = os.open(device, os.O_RDONLY)
            try:
                data = os.pread(fd, LENGTH, OFFSET)
            finally:
                os.close(fd)
            expect(hashlib.sha256(data).hexdigest() == wrote[name], f"{name}: other bytes after the cut", "bytes")
            logins += 1
        finally:
            session.logout()
    report["logins"] = logins
    report["volumes"] = {v["name"]: v["status"] for v in listed}
    emit(check=report)


def volume_of(argv: list) -> str:
    if argv[0] == "create":
        return argv[argv.index("--name") + 1]
    if argv[0] == "snapshot":
        return argv[2].removesuffix("-snap")
    return argv[1]


def main() -> None:
    mode, value = sys.argv[1], sys.argv[2]
    if mode == "life":
        life(int(value))
        return
    try:
        check(value)
    except Failed as e:
        emit(failed=str(e), kind=e.kind)
        sys.exit(1)


if __name__ == "__main__":
    main()
