"""Pool health in doctor (issue 23, item 2): data or metadata at the limits, a pool lvm2 says is
not healthy, a missing pool, each with the command that would help; --json carries the numbers;
nothing of it is repaired (growing a pool spends the group's free space: the operator's call).

The fake host's group is 100 GiB: the pool volctl makes on first use is 95 GiB, its metadata 96 MiB."""

from __future__ import annotations

import pytest
from conftest import ADMIT_THIN

from volctl.config import Settings

VG, POOL = "cinder-volumes", "cinder-volumes-pool"


@pytest.fixture
def thin_settings() -> Settings:
    return Settings(lvm_udev="on", lvm_type="thin")


@pytest.fixture
def thin(make_service, thin_settings):
    return make_service(settings=thin_settings)


@pytest.fixture
def doctor(volctl, thin):
    def run(*args: str):
        return volctl("doctor", "--json", *args, service=thin)
    return run


def pool_drift(document: dict) -> list[dict]:
    return [d for d in document["drift"] if d["kind"].startswith("pool_")]


def test_a_healthy_pool_is_no_drift_and_its_numbers_are_in_the_json(thin, host, doctor):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, data=12.5, metadata=3.25)
    host.calls.clear()
    r = doctor()
    assert r.exit_code == 0, r
    document = r.json()
    assert document["drift"] == [] and ADMIT_THIN in host.calls
    assert document["pools"] == [{
        "volume_group": VG, "pool": POOL, "size_bytes": 95 * 1024**3, "data_percent": 12.5, "metadata_percent": 3.25,
        "metadata_size_bytes": 96 * 1024**2, "health": "ok", "provisioned_gib": 10, "reserved_gib": 0,
        "max_over_subscription_ratio": 20.0, "max_provisioned_gib": 1900.0, "thin_pool_max_data_percent": 90.0,
        "thin_pool_max_metadata_percent": 80.0}]
    assert any(n.startswith(f"thin pool {VG}/{POOL}: 95.00 GiB, data 12.5 %, metadata 3.25 %, 10 GiB provisioned")
               for n in document["notes"])


def test_data_over_the_limit_names_the_number_and_the_lvextend_that_helps(thin, host, doctor):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, data=95.0)
    r = doctor()
    assert r.exit_code == 5
    [found] = pool_drift(r.json())
    # 95 % of 95 GiB is 90.25 GiB used; at 72 % (80 % of the 90 % limit) the pool is 125.35 GiB: 31 GiB more
    assert found["kind"] == "pool_data" and found["subject"] == f"{VG}/{POOL}"
    assert "data 95 % used, at or over thin_pool_max_data_percent 90 %" in found["detail"]
    assert f"lvextend -L +31g {VG}/{POOL}" in found["detail"]
    assert found["repair"] is None and found["numbers"]["data_percent"] == 95.0


def test_metadata_over_the_limit_names_the_poolmetadatasize_that_helps(thin, host, doctor):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, metadata=90.0)
    [found] = pool_drift(doctor().json())
    # 90 % of 96 MiB is 86.4 MiB used; at 64 % (80 % of the 80 % limit) it needs 135 MiB: 39 MiB more
    assert found["kind"] == "pool_metadata" and "metadata 90 % used" in found["detail"]
    assert f"lvextend --poolmetadatasize +39m {VG}/{POOL}" in found["detail"]


@pytest.mark.parametrize("health, helps", [
    ("out_of_data", f"lvextend -L +1g {VG}/{POOL}"),
    ("metadata_read_only", f"lvconvert --repair {VG}/{POOL}"),
    ("failed", f"lvconvert --repair {VG}/{POOL}"),
    ("partial", "pvs shows which"),
])
def test_a_pool_lvm2_says_is_not_healthy_is_reported_with_what_helps(thin, host, doctor, health, helps):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, health=health)
    r = doctor()
    assert r.exit_code == 5
    [found] = pool_drift(r.json())
    assert found["kind"] == "pool_health" and f"is {health}" in found["detail"] and helps in found["detail"]
    assert found["numbers"]["health"] == health


def test_over_subscription_past_the_ratio_is_reported(make_service, volctl, host, thin):
    thin.create(size=100, name="v1")  # under the default 20
    tighter = make_service(settings=Settings(lvm_udev="on", lvm_type="thin", max_over_subscription_ratio=1.0))
    [found] = pool_drift(volctl("doctor", "--json", service=tighter).json())
    assert found["kind"] == "pool_oversubscribed" and "100 GiB provisioned, over 95 GiB allowed" in found["detail"]


def test_a_missing_pool_is_drift_once_the_inventory_has_promised_space_in_it(thin, host, doctor):
    r = doctor()
    assert r.exit_code == 0 and any("not made yet" in n for n in r.json()["notes"])
    thin.create(size=10, name="v1")
    del host.lvs[(VG, POOL)]
    for key in [k for k, lv in host.lvs.items() if lv["pool"] == POOL]:
        del host.lvs[key]
    r = doctor()
    kinds = {d["kind"] for d in r.json()["drift"]}
    assert r.exit_code == 5 and {"pool_missing", "lv_missing"} <= kinds
    [found] = pool_drift(r.json())
    assert "10 GiB provisioned" in found["detail"] and found["numbers"] == {
        "volume_group": VG, "pool": POOL, "missing": True, "provisioned_gib": 10}


def test_pool_drift_is_never_repaired(thin, host, doctor):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, data=99.0, metadata=85.0)
    host.calls.clear()
    r = doctor("--repair")
    assert r.exit_code == 5
    assert {d["kind"]: d["repaired"] for d in pool_drift(r.json())} == {"pool_data": False, "pool_metadata": False}
    assert not [c for c in host.calls if c[0] in ("lvextend", "lvcreate", "lvconvert")]


def test_a_thick_backend_has_no_pool_to_look_at(service, volctl, host):
    service.create(size=1, name="v1")
    host.calls.clear()
    r = volctl("doctor", "--json")
    assert r.exit_code == 0 and r.json()["pools"] == [] and ADMIT_THIN not in host.calls


def test_human_output_shows_the_finding_left_to_the_operator(thin, host, volctl):
    thin.create(size=10, name="v1")
    host.pool_use(VG, POOL, data=91.0)
    r = volctl("doctor", service=thin)
    assert r.exit_code == 5
    assert "pool_data" in r.stdout + r.stderr and "left to the operator" in r.stdout + r.stderr
