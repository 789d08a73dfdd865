"""Space that does not run out unseen (issue 23) on a real kernel: a thin pool of a known size with
max_over_subscription_ratio = 1.0 refuses the create, snapshot and clone that would over-commit it
(exit 5, nothing recorded, no LV made); data written past thin_pool_max_data_percent stops creates
and is doctor's pool_data; a host's discard over iSCSI and over NVMe/TCP gives the pool its space
back (LIO's emulate_tpu, set by volctl, kept through restore); `volctl metrics` parses with
Prometheus's own parser and its pool numbers are lvs's. Runs after test_thin.py (file order): the
group is empty, and this module removes its pool again."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import INITIATOR_1, REPO, VG, lv_names, sh

import initiator

GIB = 1024**3
MIB = 1024**2
POOL = f"{VG}-pool"
POOL_GIB = 2
WRITE = 256 * MIB  # the 256 MiB of random bytes
LIO_CORE = Path("/sys/kernel/config/target/core")


def pool_numbers() -> dict:
    out = sh("lvs", "--noheadings", "--units", "b", "--nosuffix", "--separator", "|",
             "-o", "lv_size,data_percent,metadata_percent,lv_metadata_size", f"{VG}/{POOL}").stdout.strip()
    size, data, meta, meta_size = out.split("|")
    return {"size": int(size), "data": float(data), "metadata": float(meta), "metadata_size": int(meta_size)}


def data_percent(lv_path: str) -> float:
    return float(sh("lvs", "--noheadings", "-o", "data_percent", lv_path).stdout.strip())


def rows(db: str) -> dict:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("volumes", "snapshots", "events")}
    finally:
        conn.close()


def write_random(device: str, size: int = WRITE) -> None:
    """Random bytes (dm-thin maps what is written, zeros too), from the start, flushed past every cache."""
    sh("dd", "if=/dev/urandom", f"of={device}", "bs=4M", f"count={size // (4 * MIB)}", "oflag=direct", "status=none")


def so_attributes(iqn: str) -> dict[str, str]:
    (so,) = LIO_CORE.glob(f"*/{iqn}")
    return {name: (so / "attrib" / name).read_text().strip() for name in ("emulate_tpu", "emulate_tpws")}


def drop_from_lio(iqn: str) -> None:
    """What a reboot does to one LIO target: gone, with its storage object."""
    code = ("import sys, rtslib_fb as r; name = sys.argv[1]; "
            "r.Target(r.FabricModule('iscsi'), name, 'lookup').delete(); r.BlockStorageObject(name).delete()")
    sh(str(REPO / ".venv" / "bin" / "python"), "-c", code, iqn)


@pytest.fixture(scope="module")
def tight(volctl, tmp_path_factory):
    """volctl on a 2 GiB pool made here (volctl uses a pool of its name that exists), ratio 1.0 and
    a data limit of 10 %, the rtslib helper (no cinder-rtstool call, ~3 s each here); `roomy` the
    same with ratio 20, `nvme` that over NVMe/TCP."""
    assert POOL not in lv_names()
    sh("lvcreate", "-qq", "-T", "-L", f"{POOL_GIB}g", f"{VG}/{POOL}")
    work = tmp_path_factory.mktemp("space")
    base = (f'volume_group = "{VG}"\nlvm_type = "thin"\nvolume_clear = "none"\ntarget_helper = "rtslib"\n'
            'thin_pool_max_data_percent = 10\n')
    configs = {"tight": base + "max_over_subscription_ratio = 1.0\n", "roomy": base + "max_over_subscription_ratio = 20.0\n",
               "nvme": base + 'max_over_subscription_ratio = 20.0\ntarget_protocol = "nvmet_tcp"\n'}
    for name, text in configs.items():
        (work / f"{name}.toml").write_text(text)
    db = str(work / "state" / "volctl.db")
    found = type(volctl)({**volctl.env, "VOLCTL_DB": db, "VOLCTL_CONFIG": str(work / "tight.toml")}, volctl.timings)
    found.db = db
    found.roomy, found.nvme = ("--config", str(work / "roomy.toml")), ("--config", str(work / "nvme.toml"))
    yield found
    sh("lvremove", "-qq", "-f", f"{VG}/{POOL}", check=False)  # with whatever thin LV a failed test left


def test_a_pool_promised_in_full_refuses_the_next_create_snapshot_and_clone(tight):
    tight("create", "--size", "1", "--name", "t1")
    tight("create", "--size", "1", "--name", "t2")  # 2 GiB promised of a 2 GiB pool at ratio 1.0
    before, lvs = rows(tight.db), lv_names()
    for argv, number in ((("create", "--size", "1", "--name", "t3"), "3 GiB"),
                         (("snapshot", "create", "t1", "--name", "s1"), "3 GiB"),
                         (("create", "--source-volume", "t1", "--name", "c1"), "3 GiB")):
        refused = tight(*argv, expect=5)
        assert number in refused.stderr and "max_over_subscription_ratio 1" in refused.stderr, refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert rows(tight.db) == before and lv_names() == lvs  # nothing claimed, recorded or made
    tight("delete", "t2")


def test_data_past_the_limit_stops_creates_and_is_doctors_pool_data(tight):
    t1 = json.loads(tight("--json", "show", "t1").stdout)
    write_random(t1["lv_path"])  # 256 MiB of a 2 GiB pool: 12.5 %, past thin_pool_max_data_percent 10
    used = pool_numbers()["data"]
    assert used > 10, used
    before = rows(tight.db)
    refused = tight(*tight.roomy, "create", "--size", "1", "--name", "t4", expect=5)
    assert "data" in refused.stderr and "thin_pool_max_data_percent 10" in refused.stderr, refused.stderr
    assert rows(tight.db) == before
    doctor = tight("--json", *tight.roomy, "doctor", expect=5)
    (finding,) = [d for d in json.loads(doctor.stdout)["drift"] if d["kind"] == "pool_data"]
    assert finding["numbers"]["data_percent"] == used and "lvextend -L +" in finding["detail"]


def test_metrics_parse_and_their_pool_numbers_are_lvs(tight):
    from prometheus_client.parser import text_string_to_metric_families

    text = tight(*tight.roomy, "metrics").stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    labels = (("pool", POOL), ("volume_group", VG))
    lvs = pool_numbers()
    assert samples[("volctl_thin_pool_size_bytes", labels)] == lvs["size"] == POOL_GIB * GIB
    assert samples[("volctl_thin_pool_data_ratio", labels)] == pytest.approx(lvs["data"] / 100, abs=1e-6)
    assert samples[("volctl_thin_pool_metadata_ratio", labels)] == pytest.approx(lvs["metadata"] / 100, abs=1e-6)
    assert samples[("volctl_thin_pool_metadata_size_bytes", labels)] == lvs["metadata_size"]
    assert samples[("volctl_thin_pool_healthy", labels)] == 1
    assert samples[("volctl_volumes", (("status", "available"),))] == 1
    assert samples[("volctl_lvm_up", (("volume_group", VG),))] == 1
    t1 = json.loads(tight("--json", "show", "t1").stdout)
    assert samples[("volctl_allocated_bytes", (("volume_group", VG),))] == pytest.approx(
        GIB * data_percent(t1["lv_path"]) / 100, abs=64 * 1024)  # lvs rounds to 2 decimals


def test_a_hosts_discard_over_iscsi_gives_the_pool_its_space_back_and_restore_keeps_unmap(tight):
    tight("delete", "t1")
    vol = json.loads(tight(*tight.roomy, "--json", "create", "--size", "1", "--name", "u1").stdout)
    info = json.loads(tight(*tight.roomy, "--json", "connect", "u1", "--initiator", INITIATOR_1).stdout)
    assert info["data"]["discard"] is True
    iqn = info["data"]["target_iqn"]
    assert so_attributes(iqn) == {"emulate_tpu": "1", "emulate_tpws": "1"}
    session = initiator.login(info["data"])
    try:
        device = session.device()
        disk = Path(device).resolve().name
        assert int(Path(f"/sys/block/{disk}/queue/discard_max_bytes").read_text()) > 0  # sd saw LBPU
        write_random(device)
        written = data_percent(vol["lv_path"])
        assert written >= 24, written  # 256 MiB of 1 GiB
        sh("blkdiscard", device)
        freed = data_percent(vol["lv_path"])
        assert freed < 2, (written, freed)
    finally:
        session.logout()
    drop_from_lio(iqn)  # as a reboot leaves it; then volctl restore: the LUN advertises UNMAP again
    tight(*tight.roomy, "restore")
    assert so_attributes(iqn) == {"emulate_tpu": "1", "emulate_tpws": "1"}
    tight(*tight.roomy, "disconnect", "u1", "--initiator", INITIATOR_1)
    tight(*tight.roomy, "unexport", "u1")
    tight(*tight.roomy, "delete", "u1")


def test_a_hosts_deallocate_over_nvme_gives_the_pool_its_space_back(tight, nvme_host):
    import nvme_initiator

    nvme = tight.nvme
    vol = json.loads(tight(*nvme, "--json", "create", "--size", "1", "--name", "n1").stdout)
    info = json.loads(tight(*nvme, "--json", "connect", "n1", "--initiator", nvme_host).stdout)
    assert info["data"]["discard"] is True
    controller = nvme_initiator.connect(info["data"], vol["id"], hostnqn=nvme_host)
    try:
        device = controller.device()
        write_random(device)
        written = data_percent(vol["lv_path"])
        assert written >= 24, written
        sh("blkdiscard", device)
        freed = data_percent(vol["lv_path"])
        assert freed < 2, (written, freed)
    finally:
        controller.disconnect()
    tight(*nvme, "disconnect", "n1", "--initiator", nvme_host)
    tight(*nvme, "unexport", "n1")
    tight(*nvme, "delete", "n1")
