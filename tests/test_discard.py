"""UNMAP that reaches the pool (issue 23, item 3): report_discard_supported decides from the LV's
device in sysfs whether an export advertises UNMAP; LIO's LUN then has emulate_tpu and emulate_tpws
set in configfs before the save (so the saved config and every restore carry them), and the
connection info says `discard: true`, Cinder's key. The guest tier checks that a host's discard
really frees the pool."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import INITIATOR_1, lio_of
from fakertslib import FakeRtslib
from test_service_nvme import kernel, make_service  # noqa: F401  (LIO and a fake nvmet side by side)

from volctl.discard import DiscardPolicy, is_thin, sysfs_dir, takes_discard
from volctl.iscsi import Chap
from volctl.locks import FileLock
from volctl.restore import Restorer
from volctl.targets.rtslib import RtslibTarget

HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def block_device(root: Path, name: str, *, discard: int, slave: str | None, slave_dm_name: str | None = None) -> Path:
    """A block device's sysfs directory as the kernel shows it: queue/discard_max_bytes and slaves/."""
    device = root / name
    (device / "queue").mkdir(parents=True)
    (device / "queue" / "discard_max_bytes").write_text(f"{discard}\n")
    (device / "slaves").mkdir()
    if slave:
        under = root / slave
        under.mkdir(exist_ok=True)
        if slave_dm_name:
            (under / "dm").mkdir()
            (under / "dm" / "name").write_text(slave_dm_name + "\n")
        (device / "slaves" / slave).symlink_to(under)
    return device


@pytest.fixture
def devices(tmp_path) -> dict[str, Path]:
    root = tmp_path / "sys"
    return {
        "thin": block_device(root, "dm-5", discard=65536, slave="dm-3", slave_dm_name="cinder--volumes-cinder--volumes--pool-tpool"),
        "thick": block_device(root, "dm-6", discard=2147450880, slave="vdb"),
        "thick-no-discard": block_device(root, "dm-7", discard=0, slave="sdb"),
        "snapshot-origin": block_device(root, "dm-8", discard=65536, slave="dm-9", slave_dm_name="cinder--volumes-volume--x-real"),
    }


def policy(setting, device: Path | None) -> DiscardPolicy:
    return DiscardPolicy(setting, device_of=lambda lv_path: device)


# -- the decision ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting, kind, advertised", [
    ("thin", "thin", True), ("thin", "thick", False), ("thin", "snapshot-origin", False),
    (True, "thin", True), (True, "thick", True), (True, "thick-no-discard", False),
    (False, "thin", False), (False, "thick", False),
])
def test_what_each_setting_advertises(devices, setting, kind, advertised):
    assert policy(setting, devices[kind]).advertised("/dev/cinder-volumes/volume-x") is advertised


def test_a_thin_lv_whose_pool_takes_no_discard_is_not_advertised(tmp_path):
    device = block_device(tmp_path, "dm-5", discard=0, slave="dm-3", slave_dm_name="vg-pool-tpool")
    assert is_thin(device) and not takes_discard(device)
    assert policy("thin", device).advertised("/dev/vg/lv") is False


@pytest.mark.parametrize("setting", ["thin", True])
def test_a_path_that_is_no_block_device_is_not_advertised(tmp_path, setting):
    plain = tmp_path / "file"
    plain.write_text("")
    assert sysfs_dir(str(plain)) is None and sysfs_dir(str(tmp_path / "missing")) is None
    assert DiscardPolicy(setting).advertised(str(plain)) is False


# -- lioadm: the LUN's attributes, the saved config, the connection info, restore --------------


def lio_service(make_service, device: Path, setting="thin"):
    service = make_service()
    lio_of(service).discard = policy(setting, device)
    return service


def so_attributes(configfs: Path, iqn: str) -> dict[str, str]:
    (so,) = (configfs.parent / "core").glob(f"iblock_*/{iqn}")
    return {a.name: a.read_text().strip() for a in (so / "attrib").iterdir()}


def saved_attributes(save_file: Path, iqn: str) -> dict:
    (so,) = [s for s in json.loads(save_file.read_text())["storage_objects"] if s["name"] == iqn]
    return so.get("attributes", {})


def test_a_thin_export_advertises_unmap_and_its_saved_config_carries_it(make_service, devices, configfs, save_file):  # noqa: F811
    service = lio_service(make_service, devices["thin"])
    volume = service.create(size=1, name="v1").volume
    info = service.connect("v1", initiator=INITIATOR_1).data
    iqn = f"iqn.2010-10.org.openstack:{volume.lv_name}"
    assert (so_attributes(configfs, iqn)["emulate_tpu"], so_attributes(configfs, iqn)["emulate_tpws"]) == ("1", "1")
    assert (saved_attributes(save_file, iqn)["emulate_tpu"], saved_attributes(save_file, iqn)["emulate_tpws"]) == (1, 1)
    assert info["data"]["discard"] is True


def test_a_thick_export_is_as_before(make_service, devices, configfs, save_file):  # noqa: F811
    service = lio_service(make_service, devices["thick"])
    volume = service.create(size=1, name="v1").volume
    info = service.connect("v1", initiator=INITIATOR_1).data
    iqn = f"iqn.2010-10.org.openstack:{volume.lv_name}"
    assert so_attributes(configfs, iqn)["emulate_tpu"] == "0" and saved_attributes(save_file, iqn)["emulate_tpu"] == 0
    assert "discard" not in info["data"]


def test_restore_brings_unmap_back(make_service, devices, host, configfs):  # noqa: F811
    from test_restore import reboot

    service = lio_service(make_service, devices["thin"])
    volume = service.create(size=1, name="v1").volume
    service.connect("v1", initiator=INITIATOR_1)
    iqn = f"iqn.2010-10.org.openstack:{volume.lv_name}"
    reboot(host)
    assert not list((configfs.parent / "core").glob(f"iblock_*/{iqn}"))
    report = Restorer(lio_service(make_service, devices["thin"])).run()
    assert report.restored == ("v1",) and so_attributes(configfs, iqn)["emulate_tpu"] == "1"


def test_an_attribute_the_kernel_refuses_rolls_the_export_back(make_service, devices, configfs, host, monkeypatch):  # noqa: F811
    service = lio_service(make_service, devices["thin"])
    service.create(size=1, name="v1")
    real_open = open

    def refusing(path, *args, **kwargs):  # the kernel's ENOSYS: "Generic Block Discard not supported"
        if str(path).endswith("/attrib/emulate_tpu") and args[:1] == ("w",):
            raise OSError(38, "Function not implemented")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing)
    from volctl.errors import TargetFailed

    with pytest.raises(TargetFailed, match="emulate_tpu"):
        service.export("v1")
    monkeypatch.undo()
    assert host.targets == {} and service.show("v1").provider_location is None


# -- rtslib: the same objects, dumped into the saved config --------------------------------------


def test_rtslib_advertises_unmap_on_the_storage_object_it_made(monkeypatch, tmp_path):
    configfs = tmp_path / "target" / "iscsi"
    configfs.mkdir(parents=True)
    fake = FakeRtslib(configfs, tmp_path / "lio.lock")
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake.module)
    save_file = tmp_path / "saveconfig.json"
    target = RtslibTarget(FileLock(tmp_path / "lio.lock", wait=5), configfs=configfs, save_file=save_file)
    iqn = "iqn.2010-10.org.openstack:volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
    with target.changes():
        target.create("/dev/cinder-volumes/volume-x", iqn, Chap("user", "password1234abcd"), iser=False,
                      ips=["127.0.0.1"], port=3260, unmap=True)
    (so,) = json.loads(save_file.read_text())["storage_objects"]
    assert (so["attributes"]["emulate_tpu"], so["attributes"]["emulate_tpws"]) == (1, 1)


# -- NVMe/TCP: nvmet passes deallocate to the LV by itself; the connection info says so ------------


def test_an_nvme_connection_to_a_thin_volume_says_discard(make_service, devices):  # noqa: F811
    from volctl.config import Settings

    service = make_service(settings=Settings(lvm_udev="on", target_protocol="nvmet_tcp"))
    nvmet = next(d for d in service.targets.all() if d.family == "nvmet")
    nvmet.discard = policy("thin", devices["thin"])
    service.create(size=1, name="v1")
    assert service.connect("v1", initiator=HOST_NQN).data["data"]["discard"] is True
    nvmet.discard = policy("thin", devices["thick"])
    assert "discard" not in service.connect("v1", initiator=HOST_NQN).data["data"]


# -- doctor: a thin export made before UNMAP was advertised -------------------------------------


def test_doctor_reports_a_thin_export_without_unmap_and_repair_advertises_it(make_service, devices, configfs):  # noqa: F811
    from volctl.doctor import Doctor

    before = lio_service(make_service, devices["thin"], setting=False)  # as an older volctl made it
    volume = before.create(size=1, name="v1").volume
    before.connect("v1", initiator=INITIATOR_1)
    iqn = f"iqn.2010-10.org.openstack:{volume.lv_name}"
    assert so_attributes(configfs, iqn)["emulate_tpu"] == "0"

    service = lio_service(make_service, devices["thin"])
    doctor = Doctor(service)
    (drift,) = [d for d in doctor.examine().drift if d.kind == "unmap_off"]
    assert drift.subject == iqn and drift.repair
    report = doctor.repair(doctor.examine())
    assert report.clean, report.drift
    assert (so_attributes(configfs, iqn)["emulate_tpu"], so_attributes(configfs, iqn)["emulate_tpws"]) == ("1", "1")
    assert not [d for d in Doctor(lio_service(make_service, devices["thin"])).examine().drift if d.kind == "unmap_off"]
    assert service.show("v1").connections  # the host kept its ACL


def test_a_thick_export_without_unmap_is_no_drift(make_service, devices):  # noqa: F811
    from volctl.doctor import Doctor

    service = lio_service(make_service, devices["thick"])
    service.create(size=1, name="v1")
    service.connect("v1", initiator=INITIATOR_1)
    assert not [d for d in Doctor(service).examine().drift if d.kind == "unmap_off"]
