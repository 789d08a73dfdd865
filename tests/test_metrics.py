"""`volctl metrics` (issue 23, item 4): the inventory and the host's space in Prometheus's text format,
read back with prometheus-client's own parser (the reference implementation of the format), on the
fake host with LIO and a fake nvmet beside it (test_service_nvme's fixtures). The guest tier checks
the pool's numbers against a real `lvs`.

The fake host's group is 100 GiB: the thin pool volctl makes on first use is 95 GiB."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
from datetime import datetime, timedelta, timezone

import pytest
from conftest import INITIATOR_1
from hypothesis import given, settings as hsettings, strategies as st
from prometheus_client.parser import text_string_to_metric_families
from test_service_nvme import HOST, kernel, make_service  # noqa: F401  (the fixtures: LIO and nvmet side by side)

from volctl.config import Settings
from volctl.metrics import Family, render

VG, POOL = "cinder-volumes", "cinder-volumes-pool"
GIB = 1024**3
TYPES = {"gauge"}


def parsed(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample by (name, labels); every family a gauge with HELP, no timestamps (node_exporter's
    textfile collector skips a whole file that has one)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type in TYPES and family.documentation, family
        for sample in family.samples:
            assert sample.timestamp is None
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"{key} twice"
            samples[key] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def run(volctl, service, *args: str):
    result = volctl("metrics", *args, service=service)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture
def thin(make_service):  # noqa: F811
    return make_service(settings=Settings(lvm_udev="on", lvm_type="thin", max_over_subscription_ratio=2.0))


def test_a_thin_host_with_both_protocols_is_counted_as_the_inventory_and_lvs_say(volctl, thin, host):
    thin.create(size=10, name="v1")
    thin.create(size=5, name="v2")
    thin.create(size=1, name="v3")
    thin.connect("v1", initiator=INITIATOR_1)  # exports over iSCSI (target_protocol) and allows the host
    thin.connect("v2", initiator=HOST, protocol="nvmet_tcp")
    thin.export("v3")
    thin.snapshot_create("v3", name="s1")
    thin.reserve("v3")
    host.pool_use(VG, POOL, data=12.5, metadata=3.25)
    v1 = thin.show("v1")
    host.lvs[(VG, v1.lv_name)]["data_percent"] = 40.0

    m = parsed(run(volctl, thin).stdout)

    assert value(m, "volctl_volumes", status="available") == 2 and value(m, "volctl_volumes", status="attaching") == 1
    assert value(m, "volctl_volumes", status="in-use") == 0
    assert value(m, "volctl_volumes_stuck", status="attaching") == 0  # a fresh reservation is not stuck
    assert value(m, "volctl_snapshots", status="available") == 1
    assert [value(m, "volctl_exports", protocol=p) for p in ("iscsi", "iser", "nvmet_tcp")] == [2, 0, 1]
    assert [value(m, "volctl_connections", protocol=p) for p in ("iscsi", "iser", "nvmet_tcp")] == [1, 0, 1]
    assert value(m, "volctl_provisioned_bytes", volume_group=VG) == (10 + 5 + 1 + 1) * GIB  # the snapshot: its volume's size
    assert value(m, "volctl_allocated_bytes", volume_group=VG) == 4 * GIB  # 40 % of v1's 10 GiB, nothing written elsewhere
    pool = host.lvs[(VG, POOL)]
    labels = {"volume_group": VG, "pool": POOL}
    assert value(m, "volctl_thin_pool_size_bytes", **labels) == pool["size"] == 95 * GIB
    assert value(m, "volctl_thin_pool_data_ratio", **labels) == 0.125
    assert value(m, "volctl_thin_pool_metadata_ratio", **labels) == 0.0325
    assert value(m, "volctl_thin_pool_metadata_size_bytes", **labels) == pool["metadata_size"]
    assert value(m, "volctl_thin_pool_healthy", **labels) == 1
    assert value(m, "volctl_thin_pool_provisioned_bytes", **labels) == 17 * GIB
    assert math.isclose(value(m, "volctl_thin_pool_oversubscription_ratio", **labels), 17 / 95)
    assert value(m, "volctl_thin_pool_max_oversubscription_ratio", **labels) == 2.0
    assert value(m, "volctl_lvm_up", volume_group=VG) == 1
    assert value(m, "volctl_volume_group_size_bytes", volume_group=VG) == 100 * GIB
    assert value(m, "volctl_volume_group_free_bytes", volume_group=VG) == thin.lvm(VG).volume_group().free_bytes  # vgs's


def test_a_pool_lvm2_says_is_out_of_data_is_unhealthy(volctl, thin, host):
    thin.create(size=1, name="v1")
    host.pool_use(VG, POOL, data=100.0, health="out_of_data")
    m = parsed(run(volctl, thin).stdout)
    assert value(m, "volctl_thin_pool_healthy", volume_group=VG, pool=POOL) == 0
    assert value(m, "volctl_thin_pool_data_ratio", volume_group=VG, pool=POOL) == 1.0


def test_an_inactive_pool_has_no_use_samples_rather_than_a_made_up_zero(volctl, thin, host):
    thin.create(size=1, name="v1")
    pool = host.lvs[(VG, POOL)]
    pool["attr"] = pool["attr"][:4] + "-" + pool["attr"][5:]
    m = parsed(run(volctl, thin).stdout)
    assert value(m, "volctl_thin_pool_size_bytes", volume_group=VG, pool=POOL) == 95 * GIB
    assert not any(name in ("volctl_thin_pool_data_ratio", "volctl_thin_pool_metadata_ratio") for name, _ in m)


def test_a_thick_host_has_its_group_and_no_pool(volctl, service, host):
    service.create(size=3, name="v1")
    m = parsed(run(volctl, service).stdout)
    assert value(m, "volctl_allocated_bytes", volume_group=VG) == 3 * GIB == value(m, "volctl_provisioned_bytes", volume_group=VG)
    assert value(m, "volctl_volume_group_free_bytes", volume_group=VG) == 97 * GIB
    assert not any(name.startswith("volctl_thin_pool_") for name, _ in m)


def test_a_volume_busy_past_stale_after_is_stuck(volctl, service, db_path):
    service.create(size=1, name="v1")
    service.create(size=1, name="v2")
    long_ago = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat()
    conn = sqlite3.connect(db_path)  # what a create killed half-way leaves behind
    with conn:
        conn.execute("UPDATE volumes SET status = 'creating', updated_at = ? WHERE name = 'v1'", [long_ago])
    conn.close()
    service.reserve("v2")
    m = parsed(run(volctl, service).stdout)
    assert value(m, "volctl_volumes_stuck", status="creating") == 1
    assert value(m, "volctl_volumes_stuck", status="attaching") == 0
    m = parsed(run(volctl, service, "--stale-after", "3600").stdout)
    assert value(m, "volctl_volumes_stuck", status="creating") == 0


def test_an_lvm_that_cannot_answer_costs_only_the_space_metrics(volctl, service, host):
    service.create(size=1, name="v1")
    host.fail(["lvs"])
    m = parsed(run(volctl, service).stdout)
    assert value(m, "volctl_lvm_up", volume_group=VG) == 0
    assert value(m, "volctl_volumes", status="available") == 1
    assert value(m, "volctl_provisioned_bytes", volume_group=VG) == GIB
    assert not any(name in ("volctl_allocated_bytes", "volctl_volume_group_size_bytes") for name, _ in m)


def test_metrics_run_no_program_but_one_lvs_a_group_and_change_nothing(volctl, thin, host, db_path):
    thin.create(size=1, name="v1")
    conn = sqlite3.connect(db_path)
    before = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    host.calls.clear()
    run(volctl, thin)
    assert [c[0] for c in host.calls] == ["lvs"]
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == before
    conn.close()


def test_output_writes_the_file_whole_and_readable_by_node_exporter(volctl, service, tmp_path):
    service.create(size=1, name="v1")
    target = tmp_path / "textfile" / "volctl.prom"
    old = os.umask(0o077)
    try:
        result = run(volctl, service, "--output", str(target))
    finally:
        os.umask(old)
    assert result.stdout == "" and result.stderr == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert value(parsed(target.read_text()), "volctl_volumes", status="available") == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["volctl.prom"]  # no temporary file left
    service.create(size=1, name="v2")
    run(volctl, service, "--output", str(target))
    assert value(parsed(target.read_text()), "volctl_volumes", status="available") == 2


def test_a_file_the_collector_would_not_read_is_written_with_a_note(volctl, service, tmp_path):
    result = run(volctl, service, "--output", str(tmp_path / "volctl.txt"))
    assert "*.prom" in result.stderr and (tmp_path / "volctl.txt").exists()


@pytest.mark.parametrize("args", [["--stale-after", "soon"], ["--output"], ["--bogus"]])
def test_bad_options_are_exit_2_and_write_nothing(volctl, service, tmp_path, args):
    result = volctl("metrics", *args, service=service)
    assert result.exit_code == 2 and result.stdout == ""


def test_a_directory_as_output_is_exit_2(volctl, service, tmp_path):
    result = volctl("metrics", "--output", str(tmp_path), service=service)
    assert result.exit_code == 2 and result.stdout == ""


# -- the format itself --------------------------------------------------------------------------

label_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
numbers = st.one_of(st.integers(-2**60, 2**60), st.floats(allow_nan=False, width=64))


@hsettings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(label_text, numbers), min_size=1, max_size=5, unique_by=lambda t: t[0]),
       st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=30))
def test_any_label_value_and_number_reads_back_as_written(samples, help_text):
    family = Family("volctl_test", f"{help_text} \\ {help_text}")  # a backslash, which HELP escapes
    for text, number in samples:
        family.add(number, volume_group=text)
    (read,) = list(text_string_to_metric_families(render([family])))
    assert read.documentation == family.help
    assert [(s.labels, s.value) for s in read.samples] == [({"volume_group": text}, number) for text, number in samples]


def test_nan_and_infinities_are_spelled_as_the_format_wants():
    family = Family("volctl_test", "h")
    for number in (math.nan, math.inf, -math.inf, 0.1):
        family.add(number)
    text = render([family])
    assert text.splitlines()[2:] == ["volctl_test NaN", "volctl_test +Inf", "volctl_test -Inf", "volctl_test 0.1"]
