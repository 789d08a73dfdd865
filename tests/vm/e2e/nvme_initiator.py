"""The NVMe/TCP initiator side of the real-kernel tier: nvme-cli's `nvme connect` and `nvme
disconnect`, driven from the connection info `volctl connect --json` prints (version 1: target_portal,
target_port, nqn, transport_type, ns_id; DH-HMAC-CHAP keys when the export authenticates), and the
namespace's block device, found by the volume id (volctl sets the namespace's UUID to it).

Not part of volctl (the target side); stdlib only. Guest only: it loads modules and connects."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOSTNQN_FILE = Path("/etc/nvme/hostnqn")
STRANGER = "nqn.2014-08.org.nvmexpress.volctl:stranger"  # a host NQN no export allows
NVMET = Path("/sys/kernel/config/nvmet")
# nvmeXnY is a namespace's block device; nvmeXcYnZ the hidden per-path one native multipath adds.
_NAMESPACE = re.compile(r"nvme\d+n\d+")


class ConnectFailed(Exception):
    def __init__(self, returncode: int, output: str):
        super().__init__(f"nvme connect failed with exit {returncode}: {output.strip()}")
        self.returncode = returncode
        self.output = output


def nvme(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(["nvme", *args], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
                          timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"nvme {args[0]}: exit {done.returncode}: {(done.stderr or done.stdout).strip()}")
    return done


def prepare() -> str:
    """The initiator's modules, the loopback up (the guest's stage 2 may leave it down), and this
    host's NQN (nvme-cli's /etc/nvme/hostnqn, which os-brick reads too)."""
    for module in ("nvme-fabrics", "nvme-tcp"):
        subprocess.run(["modprobe", module], check=True, timeout=120)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=60)
    if not HOSTNQN_FILE.exists():
        HOSTNQN_FILE.parent.mkdir(parents=True, exist_ok=True)
        HOSTNQN_FILE.write_text(nvme("gen-hostnqn").stdout)
    return HOSTNQN_FILE.read_text().strip()


def namespaces() -> dict[str, str]:
    """Every namespace block device the host has: name -> its UUID (as nvmet's device_uuid)."""
    found = {}
    for block in Path("/sys/block").iterdir():
        if not _NAMESPACE.fullmatch(block.name):
            continue
        try:
            found[block.name] = (block / "uuid").read_text().strip()
        except OSError:
            found[block.name] = ""
    return found


@dataclass(frozen=True)
class Controller:
    nqn: str
    volume_id: str

    def device(self, wait: float = 60.0) -> str:
        """/dev/nvmeXnY whose namespace UUID is the volume id, once its node exists."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for name, uuid in namespaces().items():
                if uuid == self.volume_id and Path("/dev", name).exists():
                    return f"/dev/{name}"
            time.sleep(0.2)
        raise RuntimeError(f"no namespace with UUID {self.volume_id} within {wait:g} s (have {namespaces()})")

    def disconnect(self) -> str:
        return nvme("disconnect", "-n", self.nqn).stdout.strip()


def connect_argv(data: dict, *, hostnqn: str, secret: str | None = None, ctrl_secret: str | None = None) -> list[str]:
    argv = ["connect", "-t", data["transport_type"], "-a", data["target_portal"], "-s", str(data["target_port"]),
            "-n", data["nqn"], "--hostnqn", hostnqn]
    if secret is not None:
        argv += ["--dhchap-secret", secret]
    if ctrl_secret is not None:
        argv += ["--dhchap-ctrl-secret", ctrl_secret]
    return argv


def connect(data: dict, volume_id: str, *, hostnqn: str, secret: str | None = None,
            ctrl_secret: str | None = None) -> Controller:
    """`nvme connect` with the connection info's address, port, transport and subsystem NQN, as this
    host NQN, with the keys given (the info's own keys are not taken implicitly: each caller says
    which it means). A refusal raises ConnectFailed."""
    done = nvme(*connect_argv(data, hostnqn=hostnqn, secret=secret, ctrl_secret=ctrl_secret), check=False)
    if done.returncode != 0:
        raise ConnectFailed(done.returncode, done.stderr + done.stdout)
    return Controller(data["nqn"], volume_id)


def kernel_log(after: int = -1) -> tuple[int, list[str]]:
    """The kernel log's messages numbered after `after`, and the last number read. Read from
    /dev/kmsg, which numbers every record, so a mark taken before an attempt finds exactly the
    attempt's messages (a ring buffer that wrapped in between loses records, never misplaces them)."""
    last, messages = after, []
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return last, messages
            except BrokenPipeError:  # records overwritten before they were read; the read goes on after them
                continue
            prefix, _, text = record.partition(";")
            number = int(prefix.split(",")[1])
            if number > after:
                last = number
                messages.append(text.split("\n", 1)[0])
    finally:
        os.close(fd)


def connected_to(nqn: str) -> list[str]:
    """The controllers (nvmeX) this host has to a subsystem."""
    out = []
    for ctrl in Path("/sys/class/nvme").glob("nvme*"):
        try:
            if (ctrl / "subsysnqn").read_text().strip() == nqn:
                out.append(ctrl.name)
        except OSError:
            continue
    return sorted(out)


def nvmet_tree() -> dict[str, list[str]]:
    """What nvmet has in configfs: subsystems (each with its allowed hosts), hosts, ports (each with
    its subsystems). Empty lists when nvmet is not loaded."""
    def names(path: Path) -> list[str]:
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    return {
        "subsystems": names(NVMET / "subsystems"),
        "hosts": names(NVMET / "hosts"),
        "ports": names(NVMET / "ports"),
        "allowed": [f"{s}<-{h}" for s in names(NVMET / "subsystems") for h in names(NVMET / "subsystems" / s / "allowed_hosts")],
        "linked": [f"{p}->{s}" for p in names(NVMET / "ports") for s in names(NVMET / "ports" / p / "subsystems")],
    }


def clear_nvmet() -> None:
    """Everything in nvmet's configfs removed, in the kernel's order (what `nvmetcli clear` does, and
    what a stop of nvmetcli's nvmet.service or a reboot leaves): port links, ports, allowed-host
    links, namespaces, subsystems, hosts."""
    for port in (NVMET / "ports").iterdir():
        for link in (port / "subsystems").iterdir():
            link.unlink()
        port.rmdir()
    for subsystem in (NVMET / "subsystems").iterdir():
        for link in (subsystem / "allowed_hosts").iterdir():
            link.unlink()
        for namespace in (subsystem / "namespaces").iterdir():
            (namespace / "enable").write_text("0")
            namespace.rmdir()
        subsystem.rmdir()
    for host in (NVMET / "hosts").iterdir():
        host.rmdir()
