"""The whole attach flow for real, as an operator would run it, then the way back.

Runs as root where LVM and LIO work: inside the throw-away guest (scripts/demo starts it) or
on a real storage host. It builds a small volume group on a scratch disk (the guest's) or a
sparse loop file (a real host; the host's own disks are never touched), drives the `volctl`
binary through the seed's flow, logs in with open-iscsi using the connection info volctl
printed, checks bytes end to end, and removes everything it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import initiator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
VG = "volctl-demo"
GUEST_INITIATOR = "iqn.2024-01.test.volctl:demo-initiator"


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def volctl(env: dict, *args: str) -> dict | list:
    started = time.monotonic()
    done = subprocess.run([str(REPO / ".venv/bin/volctl"), "--json", *args], capture_output=True, text=True, env=env)
    took = time.monotonic() - started
    shown = " ".join(a if len(a) < 60 else a[:57] + "..." for a in args)
    if done.returncode != 0:
        say(f"volctl {shown} FAILED (exit {done.returncode}): {done.stderr.strip()}")
        raise SystemExit(1)
    say(f"volctl {shown}  [{took:.1f} s]")
    return json.loads(done.stdout)


def backing_device(cleanup: list) -> str:
    if os.environ.get("VMRUN_GUEST") == "1":
        return os.environ["VMRUN_SCRATCH"]
    image = Path(tempfile.mkdtemp(prefix="volctl-demo-", dir="/var/tmp")) / "pv.img"
    run("truncate", "-s", "3G", str(image))
    loop = run("losetup", "--find", "--show", str(image)).stdout.strip()
    cleanup.append(lambda: run("losetup", "-d", loop))
    cleanup.append(lambda: image.unlink())
    say(f"sparse loop file {image} on {loop} (this host's own disks are not touched)")
    return loop


def main() -> int:
    cleanup: list = []
    in_guest = os.environ.get("VMRUN_GUEST") == "1"
    try:
        pv = backing_device(cleanup)
        run("pvcreate", "-qq", pv)
        run("vgcreate", "-qq", VG, pv)
        cleanup.insert(0, lambda: run("vgremove", "-qq", "-f", VG))
        say(f"volume group {VG} on {pv}")
        if in_guest:
            initiator.start_iscsid(GUEST_INITIATOR)
        else:
            initiator.start_iscsid()
        me = initiator.initiator_name()
        work = Path(tempfile.mkdtemp(prefix="volctl-demo-"))
        config = work / "volctl.toml"
        config.write_text(f'volume_group = "{VG}"\ntarget_ip_address = "127.0.0.1"\nvolume_clear = "zero"\n')
        env = {**os.environ, "VOLCTL_DB": str(work / "volctl.db"), "VOLCTL_CONFIG": str(config),
               "PATH": f"{REPO / '.cache/vm/tools/bin'}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
        instance = str(uuid.uuid4())

        vol = volctl(env, "create", "--size", "1", "--name", "demo")
        say(f"  volume {vol['id']}: {vol['lv_path']}, {vol['size']} GiB, {vol['status']}")
        volctl(env, "reserve", "demo")
        vol = volctl(env, "export", "demo")
        say(f"  provider_location: {vol['provider_location']}")
        connector = json.dumps({"initiator": me, "host": os.uname().nodename, "ip": "127.0.0.1", "multipath": False})
        info = subprocess.run([str(REPO / ".venv/bin/volctl"), "connect", "demo", "--connector", "-", "--json"],
                              input=connector, capture_output=True, text=True, env=env, check=True)
        say("volctl connect demo --connector - (os-brick connector properties on stdin)")
        data = json.loads(info.stdout)["data"]
        say(f"  target {data['target_iqn']} at {data['target_portal']} LUN {data['target_lun']}, "
            f"CHAP user {data['auth_username']} (password not shown)")
        vol = volctl(env, "attach", "demo", "--instance", instance, "--host", os.uname().nodename, "--mountpoint", "/dev/vdb")
        say(f"  status {vol['status']}/{vol['attach_status']}, attachment {vol['attachments'][0]['id']}")

        session = initiator.login(data)
        device = session.device()
        say(f"iscsiadm: CHAP login as {me} -> {device} ({initiator.block_size(device)} bytes)")
        digest = initiator.write_and_read_back(device, vol["lv_path"])
        say(f"  wrote 4 MiB over iSCSI, read it back over iSCSI and from {vol['lv_path']}: identical (sha256 {digest[:16]}...)")
        session.logout()
        say("iscsiadm: logged out")
        try:
            initiator.login(data, password="WrongPassword123").logout()
            say("a login with a wrong CHAP password was ACCEPTED")
            return 1
        except initiator.LoginFailed as e:
            if e.returncode != initiator.AUTH_FAILURE:
                say(f"a login with a wrong CHAP password failed, but not as an authorization failure: {e}")
                return 1
            say(f"iscsiadm: a login with a wrong CHAP password is refused (exit {e.returncode}, authorization failure)")

        volctl(env, "disconnect", "demo", "--initiator", me)
        vol = volctl(env, "detach", "demo")
        say(f"  status {vol['status']}, export removed: provider_location {vol['provider_location']}")
        volctl(env, "delete", "demo")
        report = volctl(env, "doctor")
        left = run("lvs", "--noheadings", "-o", "lv_name", VG).stdout.split()
        targets = run("cinder-rtstool", "get-targets", env=env).stdout.split()
        say(f"doctor: {'clean' if report['clean'] else report['drift']}; LVs left in {VG}: {left or 'none'}; "
            f"LIO targets left: {targets or 'none'}")
        if left or targets or not report["clean"]:
            return 1
        say("done: the whole attach flow ran for real and left nothing behind")
        return 0
    finally:
        for step in cleanup:
            try:
                step()
            except Exception as e:  # cleanup must go on; say what stayed behind
                say(f"cleanup step failed: {e}")


if __name__ == "__main__":
    sys.exit(main())
