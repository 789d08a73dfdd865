"""Admission (issue 23, item 1): before a create, snapshot, clone, volume from a snapshot or extend,
the pool (thin) or the group (thick) must have the room, by Cinder's capacity filter and volctl's
pool limits; a refusal is exit 5 naming the numbers, with nothing claimed, made or recorded.

The fake host's group is 100 GiB, so the thin pool volctl makes on first use is 95 GiB (Cinder's
95 % of the free space)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import ADMIT_THICK, ADMIT_THIN

from volctl.config import Settings
from volctl.errors import CommandFailed, NoSpace
from volctl.locks import Locks
from volctl.lvm import ThinPool
from volctl import space

VG, POOL = "cinder-volumes", "cinder-volumes-pool"
GIB = 1024**3
SNAP_ID = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"


@pytest.fixture
def thin_with(make_service):
    def make(**settings):
        return make_service(settings=Settings(lvm_udev="on", lvm_type="thin", **settings))
    return make


@pytest.fixture
def tight(thin_with):
    """A thin service that promises no more than the pool holds."""
    return thin_with(max_over_subscription_ratio=1.0)


def rows(db_path: Path) -> dict:
    """Everything the inventory holds, history included: a refusal must leave it as it was."""
    if not db_path.exists():
        return {t: [] for t in ("volumes", "snapshots", "events")}
    conn = sqlite3.connect(db_path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in ("volumes", "snapshots", "events")}
    finally:
        conn.close()


def refused(svc, host, db_path, call, *numbers: str) -> str:
    """call() is refused with exit 5 naming the numbers; only the admission's look at the space ran,
    and the inventory (history too) and the host's LVs are as they were."""
    before, lvs = rows(db_path), {k: dict(v) for k, v in host.lvs.items()}
    host.calls.clear()
    with pytest.raises(NoSpace) as e:
        call()
    message = str(e.value)
    assert e.value.exit_code == 5 and "\n" not in message
    for number in numbers:
        assert number in message
    # thin: the pool's lvs (and, before the first create made the pool, the group's vgs); thick: vgs
    assert host.calls in ([ADMIT_THIN], [ADMIT_THICK], [ADMIT_THIN, ADMIT_THICK])
    assert rows(db_path) == before and host.lvs == lvs
    return message


# -- thin: Cinder's over-subscription ------------------------------------------------------------


def test_thin_create_is_refused_once_the_pool_would_be_over_committed(tight, host, db_path):
    tight.create(size=90, name="v1")
    assert host.lvs[(VG, POOL)]["size"] == 95 * GIB
    message = refused(tight, host, db_path, lambda: tight.create(size=6, name="v2"),
                      "thin pool cinder-volumes/cinder-volumes-pool", "provisioned 90 GiB + 6 GiB = 96 GiB",
                      "exceed 95 GiB", "pool 95 GiB", "max_over_subscription_ratio 1")
    assert message.startswith("create of 6 GiB refused: ")
    with pytest.raises(Exception):
        tight.show("v2")
    assert tight.create(size=5, name="v2").volume.status == "available"  # up to the limit exactly


def test_first_thin_create_is_judged_at_the_size_the_new_pool_will_have(tight, host, db_path):
    refused(tight, host, db_path, lambda: tight.create(size=96, name="v1"), "provisioned 0 GiB + 96 GiB", "exceed 95 GiB")
    assert (VG, POOL) not in host.lvs
    host.calls.clear()
    tight.create(size=95, name="v1")
    assert host.calls[:2] == [ADMIT_THIN, ADMIT_THICK]  # no pool yet: the group's free space sizes the one to come


def test_thin_snapshot_clone_and_volume_from_snapshot_count_their_size(tight, host, db_path):
    tight.create(size=40, name="v1")
    tight.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)  # 80 GiB provisioned
    refused(tight, host, db_path, lambda: tight.snapshot_create("v1", name="s2"), "provisioned 80 GiB + 40 GiB")
    refused(tight, host, db_path, lambda: tight.create(source_volume="v1", name="c1"), "provisioned 80 GiB + 40 GiB")
    refused(tight, host, db_path, lambda: tight.create(snapshot="s1", name="n1"), "provisioned 80 GiB + 40 GiB")
    message = refused(tight, host, db_path, lambda: tight.create(snapshot="s1", name="n1", size=41), "+ 41 GiB")
    assert message.startswith("create of 41 GiB from snapshot s1 refused")
    assert tight.snapshot_show("s1").status == "available" and tight.show("v1").status == "available"


def test_thin_extend_counts_only_the_growth(tight, host, db_path):
    tight.create(size=90, name="v1")
    history = len(tight.history("v1"))
    refused(tight, host, db_path, lambda: tight.extend("v1", 96), "provisioned 90 GiB + 6 GiB")
    assert (tight.show("v1").size, tight.show("v1").status, len(tight.history("v1"))) == (90, "available", history)
    assert tight.extend("v1", 95).volume.size == 95


def test_reserved_percentage_is_taken_off_the_pool_before_the_ratio(thin_with, host, db_path):
    svc = thin_with(max_over_subscription_ratio=2.0, reserved_percentage=10)  # (95 - floor(9.5)) x 2 = 172
    svc.create(size=172, name="v1")
    refused(svc, host, db_path, lambda: svc.create(size=1, name="v2"), "exceed 172 GiB", "reserved 9 GiB at reserved_percentage 10",
            "max_over_subscription_ratio 2")


def test_cinders_default_ratio_lets_the_pool_be_promised_twenty_times(thin_with, host, db_path):
    svc = thin_with()
    svc.create(size=1900, name="v1")
    refused(svc, host, db_path, lambda: svc.create(size=1, name="v2"), "exceed 1900 GiB", "max_over_subscription_ratio 20")


def test_auto_ratio_is_cinders():
    settings = Settings(lvm_type="thin", max_over_subscription_ratio="auto")
    empty = ThinPool(VG, POOL, 10 * GIB, 0.0, 0.0, 4 * 1024**2, "")
    half = ThinPool(VG, POOL, 10 * GIB, 50.0, 1.0, 4 * 1024**2, "")
    assert space.ratio(settings, empty, 0) == 20.0  # INITIAL_AUTO_MOSR while nothing is provisioned
    assert space.ratio(settings, half, 30) == 1 + 30 / (5 + 1)  # 1 + provisioned / (used + 1)
    assert space.thin_refusal(settings, half, 30, 30) is None  # 60 <= 10 x 6
    assert "exceed 60 GiB" in space.thin_refusal(settings, half, 30, 31)


# -- thin: volctl's limits on the pool's use and health --------------------------------------------


@pytest.mark.parametrize("use, number", [
    ({"data": 90.0}, "data 90 % used, at or over thin_pool_max_data_percent 90 %"),
    ({"data": 97.5}, "data 97.5 % used"),
    ({"metadata": 80.0}, "metadata 80 % used, at or over thin_pool_max_metadata_percent 80 %"),
    ({"health": "out_of_data"}, "is out_of_data (lv_health_status)"),
    ({"health": "metadata_read_only"}, "is metadata_read_only"),
    ({"health": "failed"}, "is failed"),
])
def test_a_full_or_unhealthy_pool_takes_nothing_new(thin_with, host, db_path, use, number):
    svc = thin_with()
    svc.create(size=1, name="v1")
    host.pool_use(VG, POOL, **use)
    for call in (lambda: svc.create(size=1, name="v2"), lambda: svc.snapshot_create("v1", name="s1"),
                 lambda: svc.create(source_volume="v1", name="c1"), lambda: svc.extend("v1", 2)):
        refused(svc, host, db_path, call, number)


def test_just_under_the_limits_is_admitted(thin_with, host):
    svc = thin_with(thin_pool_max_data_percent=50, thin_pool_max_metadata_percent=50)
    svc.create(size=1, name="v1")
    host.pool_use(VG, POOL, data=49.99, metadata=49.99)
    assert svc.create(size=1, name="v2").volume.status == "available"


def test_lvm2s_own_gate_is_the_backstop_when_the_limits_are_at_100(thin_with, host):
    svc = thin_with(thin_pool_max_data_percent=100, thin_pool_max_metadata_percent=100)
    svc.create(size=1, name="v1")
    host.pool_use(VG, POOL, metadata=99.9)
    with pytest.raises(CommandFailed) as e:
        svc.create(size=1, name="v2")
    assert e.value.exit_code == 6 and "reached threshold" in str(e.value)


# -- thick: the group's free space ---------------------------------------------------------------


def test_thick_create_is_refused_before_its_claim_when_the_group_is_short(service, host, db_path):
    service.create(size=60, name="v1")
    message = refused(service, host, db_path, lambda: service.create(size=41, name="v2"),
                      "volume group cinder-volumes: 41 GiB needed, 40 GiB usable = free 40 GiB - reserved 0 GiB")
    assert message.startswith("create of 41 GiB refused")
    assert service.create(size=40, name="v2").volume.status == "available"


def test_thick_snapshot_clone_and_extend_need_their_extents(service, host, db_path):
    service.create(size=40, name="v1")
    service.snapshot_create("v1", name="s1", snapshot_id=SNAP_ID)  # a 40 GiB COW store: 20 GiB left
    refused(service, host, db_path, lambda: service.snapshot_create("v1", name="s2"), "40 GiB needed, 20 GiB usable")
    # a clone needs its LV and the temporary snapshot of the source it copies from
    refused(service, host, db_path, lambda: service.create(source_volume="v1", name="c1", size=40), "80 GiB needed")
    refused(service, host, db_path, lambda: service.create(snapshot="s1", name="n1", size=41), "41 GiB needed")
    service.snapshot_delete("s1")
    refused(service, host, db_path, lambda: service.extend("v1", 101), "61 GiB needed, 60 GiB usable")


def test_thick_reserved_percentage_keeps_a_share_of_the_group_free(make_service, host, db_path):
    svc = make_service(settings=Settings(lvm_udev="on", reserved_percentage=25))
    svc.create(size=75, name="v1")
    refused(svc, host, db_path, lambda: svc.create(size=1, name="v2"), "1 GiB needed, 0 GiB usable", "reserved 25 GiB")


def test_cli_refusal_is_exit_5_and_one_line(volctl, host):
    r = volctl("create", "--size", "101", "--name", "big")
    assert r.exit_code == 5 and r.stderr.count("\n") == 1
    assert "create of 101 GiB refused: volume group cinder-volumes: 101 GiB needed, 100 GiB usable" in r.stderr
    assert host.commands("lvcreate") == []
    shown = volctl("history", "big", "--json")
    assert shown.stdout.strip() in ("", "[]"), shown


def test_a_taken_name_is_exit_4_before_any_space_is_asked(service, host):
    service.create(size=1, name="v1")
    host.calls.clear()
    with pytest.raises(Exception) as e:
        service.create(size=1000, name="v1")
    assert e.value.exit_code == 4 and host.calls == []


# -- races ---------------------------------------------------------------------------------------


def test_of_two_creates_that_together_over_commit_the_second_waits_and_is_refused(tight, make_service, host, db_path):
    """The check and the claim run under the group's space lock: a second create that starts while
    the first is being admitted waits for the first's row, then counts it."""
    tight.create(size=1, name="v0")  # the pool is there: both look at the same one
    other = make_service(settings=tight.settings, locks=Locks(Path(f"{db_path}.locks"), wait=30))
    outcome: dict = {}

    def second() -> None:
        try:
            other.create(size=46, name="v2")
            outcome["v2"] = "created"
        except NoSpace as e:
            outcome["v2"] = str(e)

    thread = threading.Thread(target=second)

    def at_lvcreate(argv: list[str]) -> None:
        if argv == ADMIT_THIN and not thread.is_alive() and "v2" not in outcome:
            thread.start()  # the first is being admitted: its row is not in yet
            thread.join(0.3)
            assert thread.is_alive(), "the second create did not wait for the space lock"

    host.before_call = at_lvcreate
    tight.create(size=49, name="v1")
    host.before_call = None
    thread.join(10)
    assert "provisioned 50 GiB + 46 GiB = 96 GiB would exceed 95 GiB" in outcome["v2"]
    assert [v.name for v in tight.list()] == ["v0", "v1"]


def test_the_admissions_lvs_is_one_command_line_built_in_lvm_py(tight, host):
    tight.create(size=1, name="v1")
    host.pool_use(VG, POOL, data=12.5, metadata=3.25)
    host.calls.clear()
    pool = tight.lvm().thin_pool(POOL)
    assert host.calls == [ADMIT_THIN]
    assert (pool.size_bytes, pool.data_percent, pool.metadata_percent, pool.health) == (95 * GIB, 12.5, 3.25, "")
    assert pool.metadata_size_bytes == 96 * 1024**2  # the fake's lvm2 estimate for 95 GiB, whole extents
    assert tight.lvm().thin_pool("nosuch") is None
    with pytest.raises(CommandFailed):
        tight.lvm().thin_pool(tight.show("v1").lv_name)  # a thin volume is not a pool
    host.lvs[(VG, POOL)]["attr"] = "twi---tz--"  # inactive: lvs shows no percentages
    assert tight.lvm().thin_pool(POOL).data_percent is None
