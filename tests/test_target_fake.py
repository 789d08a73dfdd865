"""The protocol-neutral fake helper in the package (volctl/targets/fake.py), on its own and under
the service: what it keeps on disk is what another process (another instance on the same root)
sees, what it persists is what comes back after a "reboot", and doctor and restore work through
it as through any helper."""

from __future__ import annotations

import json

import pytest
from conftest import INITIATOR_1, INITIATOR_2

from volctl.doctor import Doctor
from volctl.errors import EnvironmentProblem
from volctl.locks import FileLock
from volctl.restore import Restorer
from volctl.targets import Targets
from volctl.targets.fake import FakeTarget


@pytest.fixture
def root(tmp_path):
    return tmp_path / "fakehost"


@pytest.fixture
def lock(tmp_path):
    return FileLock(tmp_path / "fake.lock", wait=5)


@pytest.fixture
def fake_service(make_service, root, lock):
    """A service whose only target helper is the fake, on `root`."""
    def make():
        service = make_service()
        service.__dict__["targets"] = Targets({"fake": lambda: FakeTarget(lock, root)}, {"fake": "fake"}, "fake")
        return service

    return make


def test_an_export_is_a_directory_another_instance_sees(fake_service, root, lock):
    service = fake_service()
    service.create(size=1, name="v1")
    info = service.connect("v1", {"initiator": INITIATOR_1}).data
    volume = service.show("v1")
    target = f"fake-{volume.id}"
    assert volume.provider_location == f"{target} fake" and volume.target_helper == "fake"
    other = FakeTarget(lock, root)  # another process on the same host
    assert other.targets() == [target] and other.hosts(target) == [INITIATOR_1] and other.is_whole(target)
    assert (root / "live" / target / "device").read_text() == volume.lv_path
    secret = volume.provider_auth.split(" ")[2]
    assert info["driver_volume_type"] == "fake" and info["data"]["auth_password"] == secret
    assert json.loads((root / "saved.json").read_text()) == {target: {"device": volume.lv_path, "hosts": [INITIATOR_1]}}


def test_credentials_are_made_once_and_kept(fake_service):
    service = fake_service()
    service.create(size=1, name="v1")
    service.export("v1")
    first = service.show("v1").provider_auth
    service.unexport("v1")
    service.connect("v1", {"initiator": INITIATOR_2})
    assert service.show("v1").provider_auth == first


def test_what_was_persisted_comes_back_after_a_reboot(fake_service, root, lock):
    service = fake_service()
    for name in ("v1", "v2"):
        service.create(size=1, name=name)
        service.connect(name, {"initiator": INITIATOR_1})
    FakeTarget(lock, root).reboot()
    assert Doctor(service).examine().clean is False
    report = Restorer(fake_service()).run()
    assert (sorted(report.restored), report.saved, report.exit_code) == (["v1", "v2"], True, 0)
    assert Doctor(fake_service()).examine().clean is True


def test_unsaved_and_a_stale_persisted_config_are_drift_that_a_save_repairs(fake_service, root, lock):
    service = fake_service()
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    target = f"fake-{service.show('v1').id}"
    (root / "live" / target / "hosts" / INITIATOR_2).touch()  # allowed behind volctl's back
    report = Doctor(service).examine()
    assert {(d.kind, d.subject) for d in report.drift} == {("acl_unrecorded", INITIATOR_2),
                                                           ("saved_config", str(root / "saved.json"))}
    assert Doctor(service).repair(report).clean
    assert FakeTarget(lock, root).unsaved() == [] and Doctor(fake_service()).examine().clean


def test_an_unreadable_persisted_config_is_reported_not_trusted(root, lock):
    fake = FakeTarget(lock, root)
    root.mkdir()
    (root / "saved.json").write_text("{not json")
    with pytest.raises(EnvironmentProblem, match="unreadable"):
        fake.unsaved()
    [problem] = fake.persistence_problems()
    assert problem.kind == "saved_config" and "unreadable" in problem.detail
    fake.save()  # a save writes a good one
    assert fake.unsaved() == [] and fake.persistence_problems() == []


def test_the_secret_is_masked_wherever_the_volume_is_shown(fake_service, volctl):
    service = fake_service()
    service.create(size=1, name="v1")
    service.export("v1")
    secret = service.show("v1").provider_auth.split(" ")[2]
    shown = volctl("show", "v1", "--json", service=service)
    assert shown.exit_code == 0 and secret not in shown.stdout
    assert secret in volctl("show", "v1", "--json", "--show-secrets", service=fake_service()).stdout
