"""The real-kernel tier: runs only inside the vmrun guest (tests/vm/vmrun), where LVM, LIO and
an iSCSI initiator are real. On any other machine collection stops with an error: these tests
create PVs on the scratch disk, which on the build machines is the host's root disk."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "tests" / "vm"), str(REPO / "scripts")]

from guard import require_guest  # noqa: E402

import initiator  # noqa: E402

VG = "volctl-e2e"
INITIATOR_1 = "iqn.2024-01.test.volctl:initiator1"
INITIATOR_2 = "iqn.2024-01.test.volctl:initiator2"
TOOLS = REPO / ".cache" / "vm" / "tools" / "bin"
# Where volctl saves with lio_save_file unset: the file the host's LIO unit restores. With Debian's
# python3-rtslib-fb installed (tests/vm/setup-host.sh does, as on a storage host) that is Debian's.
DEBIAN_UNIT = Path("/lib/systemd/system/rtslib-fb-targetctl.service")
SAVE_FILE = Path("/etc/rtslib-fb-target/saveconfig.json" if DEBIAN_UNIT.exists() else "/etc/target/saveconfig.json")
CONFIGFS = Path("/sys/kernel/config/target/iscsi")
NVMET = Path("/sys/kernel/config/nvmet")
NVMET_SAVE_FILE = Path("/etc/nvmet/config.json")  # nvmet_save_file's default, nvmetcli's own


def pytest_configure(config):
    try:
        require_guest()
    except RuntimeError as e:
        raise pytest.UsageError(f"tests/vm/e2e: {e}") from None


STEP_TIMEOUT = 300  # one command, even on a loaded 2-core machine under TCG; a hang fails its test


def sh(*argv: str, check: bool = True, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, input=input, timeout=STEP_TIMEOUT)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


@dataclass
class Timings:
    """Wall time of every volctl call, for the closing note and bench/ (written to VMRUN_RESULTS)."""

    rows: list = field(default_factory=list)

    def add(self, what: str, seconds: float) -> None:
        self.rows.append({"command": what, "seconds": round(seconds, 3)})


@pytest.fixture(scope="session")
def timings():
    found = Timings()
    yield found
    out = os.environ.get("VMRUN_RESULTS")
    if out:
        Path(out, "e2e-timings.json").write_text(json.dumps(found.rows, indent=1))


@pytest.fixture(scope="session")
def volume_group():
    scratch = require_guest()
    sh("pvcreate", "-qq", "-f", scratch)
    sh("vgcreate", "-qq", VG, scratch)
    yield VG
    sh("vgremove", "-qq", "-f", VG, check=False)
    sh("pvremove", "-qq", scratch, check=False)


@pytest.fixture(scope="session")
def iscsid():
    initiator.start_iscsid(INITIATOR_1)
    initiator.add_iface("second", INITIATOR_2)
    initiator.add_iface("stranger", "iqn.2024-01.test.volctl:stranger")
    return INITIATOR_1


class Volctl:
    def __init__(self, env: dict, timings: Timings):
        self.env = env
        self.timings = timings

    def __call__(self, *args: str, expect: int = 0, input: str | None = None) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run([str(REPO / ".venv" / "bin" / "volctl"), *args], capture_output=True, text=True,
                              env=self.env, input=input, timeout=STEP_TIMEOUT)
        command = next((a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "--config")), "")
        self.timings.add(command, time.monotonic() - started)
        assert done.returncode == expect, f"volctl {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}"
        return done

    def json(self, *args: str, input: str | None = None):
        return json.loads(self("--json", *args, input=input).stdout)

    def rtstool(self, *args: str) -> str:
        return sh(str(TOOLS / "cinder-rtstool"), *args, env=self.env).stdout


@pytest.fixture(scope="session")
def volctl(tmp_path_factory, volume_group, iscsid, timings) -> Volctl:
    work = tmp_path_factory.mktemp("volctl")
    settings = f'volume_group = "{volume_group}"\ntarget_ip_address = "127.0.0.1"\n'
    # Zeroing a GiB costs tens of seconds under TCG: one test proves it, the rest skip the clearing.
    (work / "volctl.toml").write_text(settings + 'volume_clear = "none"\n')
    (work / "zero.toml").write_text(settings + 'volume_clear = "zero"\n')
    env = {**os.environ, "VOLCTL_DB": str(work / "state" / "volctl.db"), "VOLCTL_CONFIG": str(work / "volctl.toml"),
           "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
    found = Volctl(env, timings)
    found.zero_config = str(work / "zero.toml")
    return found


class Labelled:
    """The session's timings, with the settings named beside each command."""

    def __init__(self, timings: Timings, label: str):
        self.timings, self.label = timings, label

    def add(self, what: str, seconds: float) -> None:
        self.timings.add(f"{what} ({self.label})", seconds)


@pytest.fixture(scope="session")
def nvme_host() -> str:
    """This host as an NVMe/TCP initiator: nvme-tcp and nvme-fabrics loaded, the loopback up; its
    host NQN (/etc/nvme/hostnqn, which nvme-cli and os-brick read)."""
    import nvme_initiator

    return nvme_initiator.prepare()


@pytest.fixture(scope="session")
def nvolctl(volctl, nvme_host) -> Volctl:
    """The session's volctl (the same inventory) with target_protocol = "nvmet_tcp"."""
    config = Path(volctl.env["VOLCTL_CONFIG"]).with_name("nvme.toml")
    config.write_text(Path(volctl.env["VOLCTL_CONFIG"]).read_text() + 'target_protocol = "nvmet_tcp"\n')
    return Volctl({**volctl.env, "VOLCTL_CONFIG": str(config)}, Labelled(volctl.timings, "nvme"))


def brick(command: str, payload: dict) -> dict:
    """os-brick, the client library nova uses, in the tools venv (tests/vm/e2e/brick_client.py)."""
    done = sh(str(TOOLS / "python"), str(HERE / "brick_client.py"), command, input=json.dumps(payload))
    return json.loads(done.stdout)


def configfs_acls(iqn: str) -> set[str]:
    acls = CONFIGFS / iqn / "tpgt_1" / "acls"
    return {p.name for p in acls.iterdir()} if acls.is_dir() else set()


def saved_config() -> dict:
    return json.loads(SAVE_FILE.read_text()) if SAVE_FILE.exists() else {"targets": [], "storage_objects": []}


def saved_target(iqn: str) -> dict | None:
    return next((t for t in saved_config()["targets"] if t["wwn"] == iqn), None)


def lv_names() -> set[str]:
    return set(sh("lvs", "--noheadings", "-o", "lv_name", VG).stdout.split())


def nvmet_attr(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


def nvmet_saved() -> dict:
    """The saved nvmet config (nvmetcli's JSON); empty lists when there is none yet."""
    if not NVMET_SAVE_FILE.exists():
        return {"subsystems": [], "hosts": [], "ports": []}
    return json.loads(NVMET_SAVE_FILE.read_text())


def inventory_tables(db_path: str | Path) -> dict:
    """Every table of the inventory, rows sorted, read without changing the file: what a refused
    command must leave exactly as it was (as tests/conftest.py's, for the unit tier)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    finally:
        conn.close()
