"""volctl in a privileged container as a runtime makes one, on a real kernel: new mount, PID and
IPC namespaces, a fresh /run, the host's /dev and /sys (with configfs) shared, no udevd inside,
and volctl as the operator installs it (scripts/install, into .cache/vm/opt by setup-host.sh).

Twice, both with the default lvm_udev = "auto": (b) udevd running outside with the host's
/run/udev bound in (without auto's answer LVM would wait forever for a udev cookie), then (a) no
udevd anywhere (without it LVM would not make /dev/VG/LV). The initiator is outside, as it is
on another host in real life. Runs last (file order): (a) stops the guest's udevd and starts it
again afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import INITIATOR_1, REPO, VG, configfs_acls, lv_names, sh

import initiator

GIB = 1024**3
OPT_BIN = REPO / ".cache" / "vm" / "opt" / "bin"
STEP_TIMEOUT = 240  # per command in the container; LVM's own timeout inside volctl is 180 s

# PID 1 of the container: a fresh /run like every runtime gives (tmpfs), with LVM's run dirs and,
# for variant (b), the host's /run/udev bound in; then it waits to be killed.
CONTAINER_INIT = r"""
set -e
new=$1/run; mkdir -p "$new"
mount -n -t tmpfs -o mode=755 container-run "$new"
mkdir -p "$new/lock/lvm" "$new/lvm"
if [ "$2" = bind-udev ]; then mkdir "$new/udev"; mount -n --bind /run/udev "$new/udev"; fi
mount -n --move "$new" /run
touch "$1/ready"
exec sleep infinity
"""


def udevd_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("systemd-udevd", "udevd"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


class Container:
    def __init__(self, work: Path, bind_udev: bool, volume_clear: str):
        self.work = work
        self.db = work / "volctl.db"
        self.config = work / "volctl.toml"
        self.config.write_text(f'volume_group = "{VG}"\nvolume_clear = "{volume_clear}"\n')
        argv = ["unshare", "--mount", "--pid", "--ipc", "--fork", "--mount-proc",
                "sh", "-c", CONTAINER_INIT, "init", str(work), "bind-udev" if bind_udev else "-"]
        self.unshare = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while not (work / "ready").exists():
            assert self.unshare.poll() is None, f"container init exited with {self.unshare.returncode}"
            assert time.monotonic() < deadline, "container did not come up within 30 s"
            time.sleep(0.05)
        children = Path(f"/proc/{self.unshare.pid}/task/{self.unshare.pid}/children").read_text().split()
        self.pid = int(children[0])  # the container's PID 1, as the guest sees it

    def run(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": f"{OPT_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "VOLCTL_DB": str(self.db), "VOLCTL_CONFIG": str(self.config), "PYTHONWARNINGS": "ignore",
               "LC_ALL": "C", "HOME": "/root"}
        return subprocess.run(["nsenter", "--target", str(self.pid), "--mount", "--pid", "--ipc", "--",
                               "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv],
                              capture_output=True, text=True, input=input, timeout=STEP_TIMEOUT)

    def volctl(self, *args: str) -> dict:
        done = self.run("volctl", "--json", *args)
        assert done.returncode == 0, f"volctl {' '.join(args)} in the container: exit {done.returncode}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def stop(self) -> None:
        # Killing the container's PID 1 takes every process in its PID namespace with it.
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.unshare.wait(timeout=30)


@pytest.fixture
def container(tmp_path, iscsid, volume_group):
    started: list[Container] = []

    def start(bind_udev: bool, volume_clear: str) -> Container:
        c = Container(tmp_path, bind_udev, volume_clear)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def seed_flow(ctr: Container, name: str) -> list[dict]:
    """The seed's flow with volctl inside the container and the initiator outside."""
    for ns in ("mnt", "pid", "ipc"):
        assert Path(f"/proc/{ctr.pid}/ns/{ns}").readlink() != Path(f"/proc/self/ns/{ns}").readlink(), ns
    seen = ctr.run("sh", "-c", "cat /proc/[0-9]*/comm")
    assert seen.returncode == 0 and "sleep" in seen.stdout.split(), seen
    assert not {"systemd-udevd", "udevd"} & set(seen.stdout.split()), f"udevd visible in the container: {seen.stdout}"

    vol = ctr.volctl("create", "--size", "1", "--name", name)
    assert vol["status"] == "available"
    assert Path(vol["lv_path"]).is_block_device() or Path(vol["lv_path"]).resolve().is_block_device()
    assert ctr.volctl("reserve", name)["status"] == "attaching"
    iqn = ctr.volctl("export", name)["provider_location"].split()[1]
    info = ctr.volctl("connect", name, "--initiator", INITIATOR_1)
    assert configfs_acls(iqn) == {INITIATOR_1}
    vol = ctr.volctl("attach", name, "--instance", str(uuid.uuid4()))
    assert (vol["status"], vol["attach_status"]) == ("in-use", "attached")

    session = initiator.login(info["data"])
    try:
        device = session.device()
        assert initiator.block_size(device) == GIB
        initiator.write_and_read_back(device, vol["lv_path"])
    finally:
        session.logout()

    ctr.volctl("disconnect", name, "--initiator", INITIATOR_1)
    vol = ctr.volctl("detach", name)
    assert (vol["status"], vol["provider_location"]) == ("available", None)
    ctr.volctl("delete", name)
    assert f"volume-{vol['id']}" not in lv_names()
    history = ctr.volctl("history", vol["id"])
    assert history[-1]["to_status"] == "deleted"
    return history


def doctor_notes(ctr: Container) -> list[str]:
    done = ctr.run("volctl", "--json", "doctor")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True, report
    return report["notes"]


def test_b_udevd_outside_and_run_udev_bound_in(container):
    assert udevd_pids(), "the guest's udevd should be running for this variant"
    ctr = container(bind_udev=True, volume_clear="none")  # zeroing costs a minute under TCG: (a) does it
    assert ctr.run("test", "-S", "/run/udev/control").returncode == 0  # LVM alone would think udev runs
    seed_flow(ctr, "ctr-b")
    assert "lvm_udev: off (auto: /run/udev/control exists but no udevd is visible in volctl's PID namespace" \
        in doctor_notes(ctr)[0]


def test_a_no_udevd_anywhere(container):
    sh("udevadm", "control", "--exit")
    deadline = time.monotonic() + 30
    while udevd_pids():
        assert time.monotonic() < deadline, "udevd did not exit"
        time.sleep(0.1)
    try:
        ctr = container(bind_udev=False, volume_clear="zero")
        history = seed_flow(ctr, "ctr-a")
        # The zeroing dd opened /dev/VG/LV, which LVM made itself with no udev anywhere.
        dd = [e for e in history if (e.get("kind"), e.get("action")) == ("command", "dd")]
        assert [e.get("exit_code") for e in dd] == [0], history
        assert doctor_notes(ctr)[0] == "lvm_udev: off (auto: no /run/udev/control, so udev is not running here)"
    finally:
        sh("/lib/systemd/systemd-udevd", "--daemon")
        sh("udevadm", "trigger", "--subsystem-match=block", "--action=add")
        sh("udevadm", "settle", "--timeout=60", check=False)
