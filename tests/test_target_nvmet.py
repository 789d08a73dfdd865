"""The nvmet helper (volctl/targets/nvmet.py) against a fake of the kernel's nvmet configfs
(tests/fakenvmet.py): what it makes, Cinder's names and numbers, per-host access with
DH-HMAC-CHAP keys, cleanup of what no subsystem uses, nvmetcli's save file, and the kernel's
rules it must live with."""

from __future__ import annotations

import errno
import json
import threading
import time

import pytest
from fakenvmet import FakeNvmetKernel

from volctl import nvmeof
from volctl.errors import EnvironmentProblem, TargetFailed
from volctl.locks import FileLock
from volctl.model import Volume
from volctl.nvmeof import NvmeConfig
from volctl.runner import Runner
from volctl.targets.nvmet import NvmetTarget

VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
VOL2 = "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
NQN = f"nqn.nvme-subsystem-1-{VOL}"
NQN2 = f"nqn.nvme-subsystem-1-{VOL2}"
HOST = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
HOST2 = "nqn.2014-08.com.example:compute2"


def volume(volume_id=VOL, location=None) -> Volume:
    return Volume(id=volume_id, name="v1", size=1, status="available", attach_status="detached", multiattach=False,
                  volume_group="cinder-volumes", lv_name=f"volume-{volume_id}",
                  lv_path=f"/dev/cinder-volumes/volume-{volume_id}", provider_location=location, provider_auth=None,
                  previous_status=None, created_at="t", updated_at="t")


class NoPrograms(Runner):
    def run(self, argv, **kwargs):  # the fake kernel is always loaded
        raise AssertionError(f"no program should run: {argv}")


@pytest.fixture
def kernel(tmp_path) -> FakeNvmetKernel:
    return FakeNvmetKernel(tmp_path / "nvmet")


def helper(kernel, tmp_path, **config) -> NvmetTarget:
    auth = config.pop("auth", "auto")
    return NvmetTarget(NoPrograms(), FileLock(tmp_path / "nvmet.lock", wait=5), kernel.root,
                       tmp_path / "etc" / "nvmet" / "config.json", NvmeConfig(**config), auth=auth, fs=kernel)


@pytest.fixture
def nvmet(kernel, tmp_path) -> NvmetTarget:
    return helper(kernel, tmp_path)


def keys() -> dict:
    pair = nvmeof.generate_host_keys()
    return {"dhchap_key": pair.host_key, "dhchap_ctrl_key": pair.ctrl_key}


# -- what an export makes ---------------------------------------------------------------------


def test_an_export_makes_cinders_subsystem_namespace_and_port_with_no_host_allowed(nvmet, kernel):
    with nvmet.changes():
        nvmet.create_export(volume())
    assert kernel.subsystems() == [NQN] and kernel.attr("subsystems", NQN, "attr_allow_any_host") == "0"
    ns = ("subsystems", NQN, "namespaces", "10")
    assert kernel.attr(*ns, "device_path") == f"/dev/cinder-volumes/volume-{VOL}"
    assert kernel.attr(*ns, "device_uuid") == VOL == kernel.attr(*ns, "device_nguid")
    assert kernel.attr(*ns, "enable") == "1"
    assert kernel.ports() == ["1"]
    assert {k: kernel.attr("ports", "1", f"addr_{k}") for k in ("trtype", "adrfam", "traddr", "trsvcid")} == \
        {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": "4420"}
    assert (kernel.root / "ports" / "1" / "subsystems" / NQN).resolve() == (kernel.root / "subsystems" / NQN).resolve()
    assert nvmet.hosts(NQN) == [] and nvmet.is_live(NQN) and nvmet.is_whole(NQN)
    assert nvmet.location(volume()) == f"127.0.0.1:4420 tcp {NQN} 10"


def test_one_port_per_address_numbered_from_port_id_ipv6_included(kernel, tmp_path):
    nvmet = helper(kernel, tmp_path, ips=("10.0.0.5", "fd00::5"), port=4421, port_id=7, ns_id=3, conn_info_version=2)
    nvmet.create_export(volume())
    assert kernel.ports() == ["7", "8"]
    assert kernel.attr("ports", "8", "addr_adrfam") == "ipv6" and kernel.attr("ports", "8", "addr_traddr") == "fd00::5"
    assert kernel.attr("subsystems", NQN, "namespaces", "3", "enable") == "1"
    assert nvmet.location(volume()) == f"10.0.0.5,fd00::5:4421 tcp {NQN} 3"


def test_a_second_export_shares_the_port(nvmet, kernel):
    nvmet.create_export(volume())
    nvmet.create_export(volume(VOL2))
    assert kernel.ports() == ["1"] and sorted(p.name for p in (kernel.root / "ports/1/subsystems").iterdir()) == sorted([NQN, NQN2])


def test_a_port_id_another_tool_holds_elsewhere_is_refused_and_nothing_is_left(nvmet, kernel):
    kernel.mkdir(kernel.root / "ports" / "1")
    kernel.write(kernel.root / "ports/1/addr_traddr", "192.0.2.9")
    with pytest.raises(TargetFailed, match="port 1 listens on 192.0.2.9"):
        nvmet.create_export(volume())
    assert kernel.subsystems() == []


def test_a_port_dropped_and_then_made_elsewhere_by_another_tool_is_checked_again(nvmet, kernel):
    other = volume("5f0c6a1e-2b7d-4c39-9d8e-0a1b2c3d4e5f")
    nvmet.create_export(volume())  # port 1 made and checked by this helper
    nvmet.remove_export(NQN)  # its last subsystem: the port goes with it
    kernel.mkdir(kernel.root / "ports" / "1")
    kernel.write(kernel.root / "ports/1/addr_traddr", "192.0.2.9")
    with pytest.raises(TargetFailed, match="port 1 listens on 192.0.2.9"):
        nvmet.create_export(other)
    assert kernel.subsystems() == []


def test_an_export_that_fails_midway_leaves_nothing_half_made(nvmet, kernel):
    kernel.fail("write", "namespaces/10/enable", errno.ENXIO)
    with pytest.raises(TargetFailed, match=f"create subsystem {NQN}"):
        nvmet.create_export(volume())
    assert kernel.subsystems() == [] and kernel.ports() == []


def test_a_live_subsystem_is_left_as_it_is(nvmet, kernel):
    nvmet.create_export(volume())
    kernel.calls.clear()
    nvmet.create_export(volume())
    assert kernel.calls == []


def test_a_port_address_not_up_yet_is_waited_for_a_bounded_time(nvmet, kernel):
    kernel.down.add("127.0.0.1")
    with pytest.raises(TargetFailed, match="Cannot assign requested address"):
        nvmet.create_export(volume())  # no wait unless asked: a wrong address fails at once
    nvmet.address_wait = 10.0
    threading.Timer(1.5, lambda: kernel.down.discard("127.0.0.1")).start()
    started = time.monotonic()
    nvmet.create_export(volume())
    assert (kernel.root / "ports/1/subsystems" / NQN).is_symlink() and time.monotonic() - started >= 1.0


# -- hosts ------------------------------------------------------------------------------------


def test_allow_links_the_host_with_its_keys_and_disallow_cleans_up(nvmet, kernel):
    nvmet.create_export(volume())
    secrets = keys()
    nvmet.allow(volume(), HOST, secrets)
    assert nvmet.hosts(NQN) == [HOST] and kernel.hosts() == [HOST]
    assert kernel.attr("hosts", HOST, "dhchap_key") == secrets["dhchap_key"]
    assert kernel.attr("hosts", HOST, "dhchap_ctrl_key") == secrets["dhchap_ctrl_key"]
    assert kernel.attr("hosts", HOST, "dhchap_hash") == "hmac(sha256)"
    assert nvmet.live_host_secrets(HOST) == secrets
    nvmet.allow(volume(), HOST, secrets)  # again: nothing changes
    assert nvmet.disallow(NQN, HOST) is True
    assert nvmet.hosts(NQN) == [] and kernel.hosts() == []  # no subsystem uses it any more
    assert nvmet.disallow(NQN, HOST) is False


def test_a_host_allowed_on_two_subsystems_stays_until_the_last(nvmet, kernel):
    for v in (volume(), volume(VOL2)):
        nvmet.create_export(v)
        nvmet.allow(v, HOST, None)
    nvmet.disallow(NQN, HOST)
    assert kernel.hosts() == [HOST]
    nvmet.disallow(NQN2, HOST)
    assert kernel.hosts() == []


def test_remove_export_takes_the_subsystem_its_links_and_what_nobody_uses_any_more(nvmet, kernel):
    nvmet.create_export(volume())
    nvmet.create_export(volume(VOL2))
    nvmet.allow(volume(), HOST, None)
    nvmet.allow(volume(VOL2), HOST2, None)
    nvmet.remove_export(NQN)
    assert kernel.subsystems() == [NQN2] and kernel.hosts() == [HOST2] and kernel.ports() == ["1"]
    nvmet.remove_export(NQN2)
    assert kernel.subsystems() == [] and kernel.hosts() == [] and kernel.ports() == []


def test_a_port_of_another_id_is_not_removed(nvmet, kernel):
    kernel.mkdir(kernel.root / "ports" / "9")  # another tool's
    nvmet.create_export(volume())
    nvmet.remove_export(NQN)
    assert kernel.ports() == ["9"]


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth, kernel_has_it, expected", [
    ("auto", True, True), ("auto", False, False), ("off", True, False), ("on", True, True)])
def test_which_hosts_get_keys(tmp_path, auth, kernel_has_it, expected):
    kernel = FakeNvmetKernel(tmp_path / "nvmet", auth=kernel_has_it)
    nvmet = helper(kernel, tmp_path, auth=auth)
    use, made = nvmet.credentials_for(HOST, None)
    assert (made is not None) is expected and (use is not None) is expected
    if made is not None:
        assert use == made.fields and set(made.fields) == {"dhchap_key", "dhchap_ctrl_key"}
        assert all(nvmeof.valid_dhchap_secret(v) for v in made.fields.values())
        assert made.fields["dhchap_key"] != made.fields["dhchap_ctrl_key"]
        assert not any(v in made.note for v in made.fields.values())
    stored = {"dhchap_key": "DHHC-1:01:x:", "dhchap_ctrl_key": "DHHC-1:01:y:"}
    assert nvmet.credentials_for(HOST, stored) == ((stored, None) if expected else (None, None))  # made once, kept
    assert kernel.hosts() == []  # the probe host is gone again


def test_auth_on_without_kernel_support_refuses_the_export_naming_the_option(tmp_path):
    kernel = FakeNvmetKernel(tmp_path / "nvmet", auth=False)
    nvmet = helper(kernel, tmp_path, auth="on")
    with pytest.raises(EnvironmentProblem, match="CONFIG_NVME_TARGET_AUTH") as refused:
        nvmet.create_export(volume())
    assert refused.value.exit_code == 7 and kernel.subsystems() == []


def test_connection_info_with_and_without_keys(nvmet):
    located = volume(location=f"127.0.0.1:4420 tcp {NQN} 10")
    plain = nvmet.connection_info(located, {"nqn": HOST}, "rw")
    assert plain == {"driver_volume_type": "nvmeof", "data": {
        "target_portal": "127.0.0.1", "target_port": "4420", "nqn": NQN, "transport_type": "tcp", "ns_id": "10",
        # what Cinder's volume manager adds to every protocol's
        "encrypted": False, "qos_specs": None, "access_mode": "rw", "cacheable": False, "enforce_multipath": False}}
    secrets = keys()
    authed = nvmet.connection_info(located, {"nqn": HOST}, "rw", host_secrets=secrets)["data"]
    assert (authed["auth_method"], authed["dhchap_secret"], authed["dhchap_ctrl_secret"]) == \
        ("DH-HMAC-CHAP", secrets["dhchap_key"], secrets["dhchap_ctrl_key"])


# -- persistence ------------------------------------------------------------------------------


def test_persist_writes_the_touched_subsystem_its_hosts_and_ports_in_nvmetcli_form(nvmet, kernel, tmp_path):
    secrets = keys()
    with nvmet.changes():
        nvmet.create_export(volume())
        nvmet.allow(volume(), HOST, secrets)
    path = tmp_path / "etc/nvmet/config.json"
    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    assert set(doc) == {"discovery", "hosts", "ports", "subsystems"}
    [sub] = doc["subsystems"]
    assert sub["nqn"] == NQN and sub["allowed_hosts"] == [HOST] and sub["attr"]["allow_any_host"] == "0"
    [ns] = sub["namespaces"]
    assert (ns["nsid"], ns["enable"], ns["device"]["path"], ns["device"]["uuid"]) == \
        (10, 1, f"/dev/cinder-volumes/volume-{VOL}", VOL)
    [host] = doc["hosts"]
    assert host == {"nqn": HOST, "dhchap": {"key": secrets["dhchap_key"], "ctrl_key": secrets["dhchap_ctrl_key"],
                                            "hash": "hmac(sha256)", "dhgroup": "null"}}
    [port] = doc["ports"]
    assert port["portid"] == 1 and port["subsystems"] == [NQN]
    assert port["addr"] == {"adrfam": "ipv4", "traddr": "127.0.0.1", "treq": "not specified", "trsvcid": "4420",
                            "trtype": "tcp", "tsas": "none"}
    assert nvmet.unsaved() == [] and nvmet.persistence_problems() == []


def test_persist_keeps_every_other_entry_and_drops_a_removed_subsystem(nvmet, kernel, tmp_path):
    path = tmp_path / "etc/nvmet/config.json"
    path.parent.mkdir(parents=True)
    other = {"nqn": "nqn.2024-01.org.example:other", "attr": {}, "namespaces": [], "allowed_hosts": []}
    path.write_text(json.dumps({"discovery": {}, "hosts": [], "ports": [], "subsystems": [other]}))
    with nvmet.changes():
        nvmet.create_export(volume())
    assert [s["nqn"] for s in json.loads(path.read_text())["subsystems"]] == sorted([NQN, other["nqn"]])
    with nvmet.changes():
        nvmet.remove_export(NQN)
    doc = json.loads(path.read_text())
    assert doc["subsystems"] == [other] and doc["ports"] == []


def test_a_change_behind_volctls_back_is_unsaved_and_a_save_mends_it(nvmet, kernel):
    with nvmet.changes():
        nvmet.create_export(volume())
        nvmet.allow(volume(), HOST, keys())
    kernel.write(kernel.root / "hosts" / HOST / "dhchap_key", keys()["dhchap_key"])  # a key changed by hand
    assert nvmet.unsaved() == [NQN]
    [problem] = nvmet.persistence_problems()
    assert problem.kind == "saved_config" and NQN in problem.detail
    nvmet.save()
    assert nvmet.unsaved() == []


def test_an_unreadable_save_file_is_a_problem_not_trusted(nvmet, tmp_path):
    path = tmp_path / "etc/nvmet/config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{nope")
    [problem] = nvmet.persistence_problems()
    assert "unreadable" in problem.detail
    with nvmet.changes():
        nvmet.create_export(volume())  # a persist over an unreadable file writes it whole
    assert nvmet.unsaved() == []
