"""The registry of target helpers (volctl/targets/__init__.py) and the record of which helper made
each export (migration m003): the helper for new exports, the one that drives a volume's export,
all of them for doctor and restore."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import INITIATOR_1, INSTANCE_1, lio_of

from volctl.config import Settings
from volctl.errors import EnvironmentProblem
from volctl.inventory import Inventory
from volctl.locks import FileLock
from volctl.migrations import migrations
from volctl.targets import FAMILIES, HELPERS, Targets
from volctl.targets.fake import FakeTarget
from volctl.targets.lioadm import LioAdm
from volctl.targets.rtslib import RtslibTarget


def test_every_helper_the_settings_admit_has_a_family():
    assert set(HELPERS) <= set(FAMILIES)


@pytest.mark.parametrize("name, cls", [("lioadm", LioAdm), ("rtslib", RtslibTarget)])
def test_target_helper_picks_the_lio_helper(make_service, name, cls):
    service = make_service(settings=Settings(lvm_udev="on", target_helper=name))
    drivers = [d for d in service.targets.all() if d.family == "lio"]
    assert [type(d) for d in drivers] == [cls]
    assert service.targets.for_new_export() is drivers[0]  # one helper per family, made once


def test_a_read_command_makes_no_helper(service):
    service.create(size=1, name="v1")
    registry = service.targets
    service.show("v1")
    list(service.list())
    assert registry._built == {}


def test_an_export_records_its_helper_and_unexport_clears_it(service):
    service.create(size=1, name="v1")
    assert service.show("v1").target_helper is None
    service.export("v1")
    assert service.show("v1").target_helper == "lioadm"
    service.unexport("v1")
    assert service.show("v1").target_helper is None


def test_a_detach_that_removes_the_export_clears_the_helper(service):
    service.create(size=1, name="v1")
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.attach("v1", instance=INSTANCE_1, initiator=INITIATOR_1)
    assert service.show("v1").target_helper == "lioadm"
    assert service.detach("v1").data["export_removed"] is True
    assert service.show("v1").target_helper is None


def test_an_lio_export_is_driven_by_the_configured_lio_helper_whoever_made_it(make_service, service):
    service.create(size=1, name="v1")
    service.export("v1")  # made by lioadm
    rtslib = make_service(settings=Settings(lvm_udev="on", target_helper="rtslib"))
    assert isinstance(rtslib.targets.owner(rtslib.show("v1")), RtslibTarget)
    assert rtslib.show("v1").target_helper == "lioadm"  # the record says who made it


def test_a_volume_not_exported_gets_the_helper_for_new_exports(service):
    volume = service.create(size=1, name="v1").volume
    assert service.targets.owner(volume) is service.targets.for_new_export()


def test_an_export_of_a_helper_this_volctl_lacks_is_refused_by_name(make_service, tmp_path):
    fake = make_service()
    lock = FileLock(tmp_path / "fake.lock", wait=5)
    fake.__dict__["targets"] = Targets({"fake": lambda: FakeTarget(lock, tmp_path / "fakehost")}, {"fake": "fake"}, "fake")
    fake.create(size=1, name="v1")
    fake.export("v1")
    assert fake.show("v1").target_helper == "fake"
    plain = make_service()  # no fake helper in its registry
    with pytest.raises(EnvironmentProblem, match="exported by target helper 'fake'"):
        plain.targets.owner(plain.show("v1"))
    with pytest.raises(EnvironmentProblem) as refused:  # exit 7, and nothing done to any host
        plain.unexport("v1")
    assert refused.value.exit_code == 7 and plain.show("v1").provider_location


def test_hosts_of_several_families_live_side_by_side(make_service, tmp_path):
    """A registry with two families: each volume's export goes to, and stays with, its own."""
    service = make_service()
    lio = lio_of(service)
    fake = FakeTarget(FileLock(tmp_path / "fake.lock", wait=5), tmp_path / "fakehost")
    families = {**FAMILIES, "fake": "fake"}
    service.__dict__["targets"] = Targets({"lio": lambda: lio, "fake": lambda: fake}, families, "lio")
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    service.__dict__["targets"] = Targets({"lio": lambda: lio, "fake": lambda: fake}, families, "fake")
    service.create(size=1, name="v2")
    service.connect("v2", {"initiator": INITIATOR_1})
    v1, v2 = service.show("v1"), service.show("v2")
    assert (v1.target_helper, v2.target_helper) == ("lioadm", "fake")
    assert service.targets.owner(v1) is lio and service.targets.owner(v2) is fake
    assert lio.is_live(lio.target_name(v1)) and fake.hosts(fake.target_name(v2)) == [INITIATOR_1]
    assert [d.family for d in service.targets.all()] == ["lio", "fake"]
    service.disconnect("v1", {"initiator": INITIATOR_1})  # each through its own helper
    assert lio.hosts(lio.target_name(v1)) == [] and fake.hosts(fake.target_name(v2)) == [INITIATOR_1]


# -- migration m003 ---------------------------------------------------------------------------


def test_m003_names_lioadm_for_exports_made_before_it(tmp_path):
    path = tmp_path / "old.db"
    inv = Inventory.open(path, create=True)
    stamp = "2026-01-01T00:00:00+00:00"
    for name, location in (("exported", "127.0.0.1:3260,iqn.x iqn.x 0"), ("plain", None)):
        inv.db.conn.execute(
            "INSERT INTO volumes (id, name, size, status, attach_status, multiattach, volume_group, lv_name, "
            "provider_location, created_at, updated_at) VALUES (?, ?, 1, 'available', 'detached', 0, 'vg', ?, ?, ?, ?)",
            [name, name, f"volume-{name}", location, stamp, stamp])
    inv.close()
    # an inventory as volctl left it before m003: no column, no migration row
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_target_helper'")
    conn.execute("ALTER TABLE volumes DROP COLUMN target_helper")
    conn.commit()
    conn.close()
    inv = Inventory.open(path, create=True)
    assert {"m003_target_helper"} <= set(migrations.names)
    assert (inv.get("exported").target_helper, inv.get("plain").target_helper) == ("lioadm", None)
