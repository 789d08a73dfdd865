"""Issue 22's hand-off, both ways, with Cinder 29's own LVM driver on the same host (README "When
one host is not enough"): LVMVolumeDriver with the lioadm helper, in-process with no database or
bus (tests/vm/e2e/cinder_lvm.py, in the Cinder venv; ../shared/reference/cinder-manage.md §7).

(a) volctl -> Cinder: bytes written over volctl's CHAP login; `volctl unmanage`; Cinder's
    manage_existing, create_export and initialize_connection; a login with Cinder's connection info
    reads the same bytes; `volctl doctor --repair` beside Cinder's live export touches nothing of it
    and calls it foreign.
(b) Cinder -> volctl: Cinder creates and exports a volume, bytes are written over its login, Cinder
    lets it go (terminate_connection, remove_export, unmanage); `volctl manage --source-name`,
    `volctl connect`, and a login with volctl's connection info reads the same bytes.

The tests run in file order and share `state`, as an operator's session would."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import select
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import CONFIGFS, INITIATOR_1, REPO, SAVE_FILE, VG, configfs_acls, lv_names, saved_target

import initiator

CINDER_VENV = REPO / ".cache" / "vm" / "cinder"
HELPER = Path(__file__).resolve().parent / "cinder_lvm.py"
CINDER_SAVE_FILE = Path("/etc/target/saveconfig.json")  # cinder-rtstool's (pip rtslib-fb), not volctl's
PREFIX = "iqn.2010-10.org.openstack:"
OFFSET, LENGTH = 1024 * 1024, 4 * 1024 * 1024
CONNECTOR = {"initiator": INITIATOR_1, "host": "handoff", "ip": "127.0.0.1", "multipath": False}
state: dict = {}


class Cinder:
    """The helper process: one request a line, one reply a line."""

    def __init__(self):
        env = {**os.environ, "PATH": f"{CINDER_VENV / 'bin'}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore"}
        env.pop("VIRTUAL_ENV", None)
        self.log = Path(os.environ.get("VMRUN_RESULTS") or "/tmp") / "cinder-handoff.log"
        self.proc = subprocess.Popen([str(CINDER_VENV / "bin" / "python"), str(HELPER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True, env=env)
        assert self._send({"volume_group": VG, "target_ip_address": "127.0.0.1"}, timeout=900) == {"ready": True}

    def _send(self, request: dict, timeout: float = 300):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"Cinder's driver gave no answer to {request.get('op', 'start')} "
                                 f"(exit {self.proc.poll()}): {self.log.read_text()[-3000:]}")
        answer = json.loads(line)
        assert "error" not in answer, f"Cinder's driver, {request.get('op')}: {answer['error']}"
        return answer["ok"]

    def __call__(self, op: str, **request):
        return self._send({"op": op, **request})

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def cinder(volume_group, iscsid):
    assert (CINDER_VENV / "bin" / "python").exists(), f"{CINDER_VENV} is missing: run scripts/setup --vm"
    found = Cinder()
    yield found
    found.close()


def read_sha256(device: str, offset: int = OFFSET, length: int = LENGTH) -> str:
    """The bytes at offset through the device, O_DIRECT (not from the page cache)."""
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, length)
        assert os.preadv(fd, [buf], offset) == length
        return hashlib.sha256(bytes(buf)).hexdigest()
    finally:
        os.close(fd)


def live(iqn: str) -> bool:
    """A live LIO target of that name (configfs: no cinder-rtstool call, ~3 s each under TCG)."""
    return (CONFIGFS / iqn).is_dir()


def chap_userid(iqn: str, host: str) -> str:
    return Path(f"/sys/kernel/config/target/iscsi/{iqn}/tpgt_1/acls/{host}/auth/userid").read_text().strip()


def foreign_notes(report: dict) -> set[str]:
    return {n.split(" (")[0] for n in report["notes"] if n.startswith("foreign:")}


# -- (a) volctl -> Cinder ------------------------------------------------------------------------


def test_a1_volctl_volume_written_over_a_chap_login_then_unmanaged(volctl):
    vol = volctl.json("create", "--size", "1", "--name", "to-cinder")
    info = volctl.json("connect", "to-cinder", "--initiator", INITIATOR_1)
    session = initiator.login(info["data"])
    try:
        sha = initiator.write_and_read_back(session.device(), vol["lv_path"])
    finally:
        session.logout()
    iqn = info["data"]["target_iqn"]

    done = volctl.json("unmanage", "to-cinder")  # removes the export, its ACL included
    lv = f"volume-{vol['id']}"
    assert done == {"id": vol["id"], "name": "to-cinder", "lv": f"{VG}/{lv}", "unmanaged": True,
                    "cinder_manage": f"cinder manage --name to-cinder <host@backend#pool> {lv}"}
    assert lv in lv_names()
    assert not live(iqn) and saved_target(iqn) is None  # unexported first, and saved so
    state.update(volctl_vol=vol, volctl_info=info, volctl_iqn=iqn, lv=lv, sha=sha)


def test_a2_cinder_manages_the_lv_and_exports_it_with_its_own_chap(cinder):
    cinder_id = str(uuid.uuid4())
    done = cinder("manage", id=cinder_id, source_name=state["lv"], connector=CONNECTOR)
    name = f"volume-{cinder_id}"
    iqn = PREFIX + name
    assert done["size"] == 1 and done["name"] == name
    assert state["lv"] not in lv_names() and name in lv_names()  # Cinder's lvrename to its own id
    assert done["provider_location"] == f"127.0.0.1:3260,{iqn} {iqn} 0"
    info = done["connection_info"]
    assert info["driver_volume_type"] == "iscsi"
    data = info["data"]
    assert (data["target_iqn"], data["target_portal"], data["target_lun"], data["auth_method"]) == \
        (iqn, "127.0.0.1:3260", 0, "CHAP")
    # CHAP does not travel: Cinder made its own
    old = state["volctl_info"]["data"]
    assert (data["auth_username"], data["auth_password"]) != (old["auth_username"], old["auth_password"])
    assert configfs_acls(iqn) == {INITIATOR_1} and chap_userid(iqn, INITIATOR_1) == data["auth_username"]
    assert iqn in {t["wwn"] for t in json.loads(CINDER_SAVE_FILE.read_text())["targets"]}  # Cinder's save,
    assert SAVE_FILE != CINDER_SAVE_FILE and saved_target(iqn) is None  # not the file volctl saves to
    # Cinder's own "already managed" check knows the id it gave the LV
    refused = cinder("manage_refused", id=str(uuid.uuid4()), source_name=name)
    assert refused["refused"] == "ManageExistingAlreadyManaged", refused
    state.update(cinder_id=cinder_id, cinder_iqn=iqn, cinder_info=info, cinder_lv=name)


def test_a3_the_initiator_logs_in_again_with_cinders_connection_info_and_reads_the_same_bytes():
    with pytest.raises(initiator.LoginFailed) as refused:  # volctl's old credentials are worth nothing on it
        initiator.login(state["cinder_info"]["data"], password=state["volctl_info"]["data"]["auth_password"])
    assert refused.value.returncode == initiator.AUTH_FAILURE
    session = initiator.login(state["cinder_info"]["data"])
    state["cinder_session"] = session
    assert initiator.block_size(session.device()) == 1024**3
    assert read_sha256(session.device()) == state["sha"]


def test_a4_doctor_repair_beside_cinders_live_export_changes_nothing_of_cinders(volctl):
    iqn, lv, session = state["cinder_iqn"], state["cinder_lv"], state["cinder_session"]
    cinder_saved = CINDER_SAVE_FILE.read_bytes()
    userid = chap_userid(iqn, INITIATOR_1)
    try:
        report = volctl.json("doctor", "--repair")  # exit 0, or Volctl fails the test
        assert report["drift"] == [] and report["clean"] is True, report
        assert foreign_notes(report) == {f"foreign: LV /dev/{VG}/{lv}", f"foreign: target {iqn}"}, report["notes"]
        assert live(iqn)
        assert configfs_acls(iqn) == {INITIATOR_1} and chap_userid(iqn, INITIATOR_1) == userid
        assert lv in lv_names()
        assert CINDER_SAVE_FILE.read_bytes() == cinder_saved
        assert saved_target(iqn) is None  # volctl's own saved config did not take Cinder's target in
        assert read_sha256(session.device()) == state["sha"]  # the live session still reads
    finally:
        session.logout()


def test_a5_after_cinder_lets_go_and_deletes_doctor_is_clean(volctl, cinder):
    cinder("release", id=state["cinder_id"], connector=CONNECTOR)
    assert not live(state["cinder_iqn"])
    cinder("delete", id=state["cinder_id"])
    assert state["cinder_lv"] not in lv_names()
    report = volctl.json("doctor")
    assert report["clean"] is True and report["drift"] == [] and foreign_notes(report) == set(), report


# -- (b) Cinder -> volctl ------------------------------------------------------------------------


def test_b1_cinder_creates_exports_and_bytes_are_written_over_its_login(cinder):
    cinder_id = str(uuid.uuid4())
    done = cinder("create", id=cinder_id, size=1, connector=CONNECTOR)
    name = f"volume-{cinder_id}"
    assert name in lv_names()
    data = done["connection_info"]["data"]
    assert data["target_iqn"] == PREFIX + name
    session = initiator.login(data)
    try:
        sha = initiator.write_and_read_back(session.device(), f"/dev/{VG}/{name}")
    finally:
        session.logout()
    cinder("release", id=cinder_id, connector=CONNECTOR, forget=True)
    assert not live(PREFIX + name)
    state.update(b_cinder_id=cinder_id, b_lv=name, b_sha=sha, b_cinder_info=done["connection_info"])


def test_b2_volctl_manages_connects_and_reads_the_same_bytes(volctl):
    lv = state["b_lv"]
    entry = next(e for e in volctl.json("manageable") if e["reference"]["source-name"] == lv)
    assert (entry["safe_to_manage"], entry["size"], entry["reason_not_safe"]) == (True, 1, None)

    vol = volctl.json("manage", "--source-name", lv, "--name", "from-cinder")
    assert (vol["status"], vol["size"], vol["name"]) == ("available", 1, "from-cinder")
    assert vol["id"] != state["b_cinder_id"]
    assert lv not in lv_names() and f"volume-{vol['id']}" in lv_names()

    info = volctl.json("connect", "from-cinder", "--initiator", INITIATOR_1)
    data = info["data"]
    assert data["target_iqn"] == f"{PREFIX}volume-{vol['id']}"
    assert data["auth_username"] != state["b_cinder_info"]["data"]["auth_username"]  # volctl's own CHAP
    session = initiator.login(data)
    try:
        assert read_sha256(session.device()) == state["b_sha"]
    finally:
        session.logout()
    report = volctl.json("doctor")  # volctl's export of it, as volctl recorded it; nothing foreign left
    assert report["clean"] is True and report["drift"] == [] and foreign_notes(report) == set(), report
    volctl("delete", "from-cinder")  # its export with it
    assert f"volume-{vol['id']}" not in lv_names() and not live(data["target_iqn"])
