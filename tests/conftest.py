"""Shared fixtures: a real SQLite inventory in tmp_path, a FakeHost standing in for LVM and LIO,
and `volctl(...)`, which runs the real CLI in-process against both."""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings as hypothesis_settings

# No property test has a time limit per example: on a loaded machine (two busy cores, the guests
# beside the unit tier) hypothesis' default 200 ms deadline fails tests that are right.
hypothesis_settings.register_profile("volctl", deadline=None)
hypothesis_settings.load_profile("volctl")

sys.path.insert(0, str(Path(__file__).parent))

from fakebin import fakebin_pycache  # noqa: E402,F401  (a fixture)
from fakehost import FakeHost  # noqa: E402
from worlds import HELPERS, ProcessWorld, TRAITS, World, make_world  # noqa: E402

from volctl.cli import App, cli  # noqa: E402
from volctl.config import Settings  # noqa: E402
from volctl.locks import Locks  # noqa: E402
from volctl.service import VolumeService  # noqa: E402

INSTANCE_1 = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
INSTANCE_2 = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
INITIATOR_1 = "iqn.1994-05.com.redhat:client1"
INITIATOR_2 = "iqn.1993-08.org.debian:01:abcdef123456"
# The admission's one look at the space before a create, snapshot, clone or extend (volctl/service/space.py):
# a thick group's vgs, a thin pool's lvs.
ADMIT_THICK = ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free", "cinder-volumes"]
ADMIT_THIN = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
              "vg_name,lv_name,lv_size,lv_attr,data_percent,metadata_percent,lv_metadata_size,lv_health_status",
              "cinder-volumes/cinder-volumes-pool"]


def pytest_addoption(parser):
    parser.addoption("--helper", action="append", default=[], choices=HELPERS,
                     help="run only the behaviour suites' runs over this target helper (repeatable)")


def pytest_collection_modifyitems(config, items):
    """--helper: only the tests that run once per helper, and only their runs over the helpers
    chosen (scripts/check-guarantees runs a mutant's suites once per helper this way)."""
    chosen = config.getoption("helper")
    if not chosen:
        return
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        helper = callspec.params.get("helper") if callspec is not None else None
        (keep if helper in chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Never touch /var/lib/volctl or /etc/volctl of the machine running the tests."""
    monkeypatch.setenv("VOLCTL_DB", str(tmp_path / "state" / "volctl.db"))
    monkeypatch.delenv("VOLCTL_CONFIG", raising=False)


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "state" / "volctl.db"


@pytest.fixture
def settings() -> Settings:
    # Cinder's behaviour (udevadm settle before the lvremove retry) whether or not the machine
    # running the tests has udev; lvm_udev = "auto" itself is tested in test_udev.py.
    return Settings(lvm_udev="on")


@pytest.fixture
def configfs(tmp_path) -> Path:
    """A stand-in for /sys/kernel/config/target/iscsi, kept up to date by the FakeHost."""
    path = tmp_path / "configfs"
    path.mkdir()
    return path


@pytest.fixture
def save_file(tmp_path) -> Path:
    """A stand-in for /etc/target/saveconfig.json, written by the FakeHost's `cinder-rtstool save`."""
    return tmp_path / "target" / "saveconfig.json"


@pytest.fixture
def host_root(tmp_path) -> Path:
    """The root under which volctl looks for the host's LIO restore unit: empty, not this machine's."""
    path = tmp_path / "host"
    path.mkdir()
    return path


@pytest.fixture
def host(settings, configfs, save_file) -> FakeHost:
    return FakeHost(vg=settings.volume_group, configfs=configfs, save_file=save_file)


@pytest.fixture
def make_service(db_path, settings, host, configfs, save_file, host_root):
    def make(**overrides) -> VolumeService:
        args = dict(db_path=db_path, settings=settings, runner=host, locks=Locks(Path(f"{db_path}.locks"), wait=5),
                    configfs=configfs, save_file=save_file, host_root=host_root,
                    # no nvmet on this host (its directory is never made), and never the machine's own
                    nvmet_root=host_root / "nvmet", nvmet_save_file=host_root / "nvmet.json")
        args.update(overrides)
        return VolumeService(**args)

    return make


@pytest.fixture
def service(make_service) -> VolumeService:
    return make_service()


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def volctl(make_service, db_path):
    """Run `volctl ARGS...` in-process; each call gets a fresh service, as each process would."""

    def run(*args: str, input: str | None = None, service: VolumeService | None = None) -> Result:
        app = App(_service=service or make_service())
        result = CliRunner().invoke(cli, ["--db", str(db_path), *args], obj=app, input=input, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


def was_volctls(service: VolumeService, *volume_ids: str) -> None:
    """The inventory had these volumes once and no longer has them (deleted, or lost): their
    history says so. An LV or target named for them is volctl's to report as orphaned, not a
    foreign one (doctor's rule since volctl shares hosts with Cinder)."""
    inv = service.inventory()
    with inv.write():
        for volume_id in volume_ids:
            inv.record((volume_id, "gone"), "transition", "delete", from_status="deleting", to_status="deleted")


def lio_of(service: VolumeService):
    """The service's LIO helper (the one target_helper picks)."""
    return next(driver for driver in service.targets.all() if driver.family == "lio")


def inventory_tables(db_path: Path) -> dict:
    """Every table of the inventory, rows sorted, read without changing the file: what a refused
    command must leave exactly as it was."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    finally:
        conn.close()


# -- the behaviour suites, once per target helper (tests/worlds.py) ----------------------------------


@pytest.fixture(params=HELPERS)
def helper(request) -> str:
    return request.param


@pytest.fixture
def world(helper, host, db_path, settings, configfs, save_file, host_root, tmp_path, monkeypatch) -> World:
    """The helper's world for in-process tests; a suite's module makes `make_service` (and so
    `service` and `volctl`) the world's."""
    made = make_world(helper, host=host, db_path=db_path, settings=settings, configfs=configfs, save_file=save_file,
                      host_root=host_root, tmp_path=tmp_path, monkeypatch=monkeypatch)
    yield made
    made.teardown()


@pytest.fixture
def proc_world(helper, tmp_path, monkeypatch, fakebin_pycache) -> ProcessWorld:
    """The helper's world for real volctl processes (tests/fakebin.py's FakeBin, `proc_world.fb`)."""
    from fakebin import FakeBin

    return ProcessWorld(TRAITS[helper], FakeBin(tmp_path / "host", pycache=fakebin_pycache), monkeypatch)
