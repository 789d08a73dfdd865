"""NVMe/TCP exports through the service and the CLI, beside iSCSI in one inventory: the nvmet helper
on a fake of the kernel's nvmet configfs (tests/fakenvmet.py), LIO on the fake host. Protocol per
export, per-host access with DH-HMAC-CHAP keys made once per host, doctor and restore over both
helpers; the guest tier runs the same on real kernels."""

from __future__ import annotations

import json

import pytest
from conftest import INITIATOR_1, lio_of, was_volctls
from fakenvmet import FakeNvmetKernel

from volctl.config import Settings
from volctl.doctor import Doctor
from volctl.locks import FileLock
from volctl.nvmeof import NvmeConfig, valid_dhchap_secret
from volctl.restore import Restorer
from volctl.targets import FAMILIES, Targets
from volctl.targets.nvmet import NvmetTarget

HOST = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
HOST2 = "nqn.2014-08.com.example:compute2"


@pytest.fixture
def kernel(tmp_path) -> FakeNvmetKernel:
    return FakeNvmetKernel(tmp_path / "nvmet")


@pytest.fixture
def make_service(make_service, kernel, tmp_path):
    """conftest's services, each with an nvmet helper on the fake kernel beside its LIO helper."""
    def make(**overrides):
        service = make_service(**overrides)
        s = service.settings
        lio = lio_of(service)
        nvme = NvmeConfig(s.nvmet_target_prefix, s.portal_ips, s.nvmet_target_port, s.nvmet_port_id, s.nvmet_ns_id,
                          s.nvmeof_conn_info_version)
        nvmet = NvmetTarget(service.runner, FileLock(tmp_path / "nvmet.lock", wait=5), kernel.root,
                            tmp_path / "nvmet.json", nvme, s.nvmet_auth, fs=kernel)
        default = "nvmet" if s.target_protocol == "nvmet_tcp" else "lio"
        service.__dict__["targets"] = Targets({"lio": lambda: lio, "nvmet": lambda: nvmet}, FAMILIES, default,
                                              s.target_protocol)
        return service

    return make


@pytest.fixture
def nvme_settings() -> Settings:
    return Settings(lvm_udev="on", target_protocol="nvmet_tcp")


def nqn_of(volume) -> str:
    return f"nqn.nvme-subsystem-1-{volume.id}"


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


# -- export and connect -----------------------------------------------------------------------


def test_target_protocol_nvmet_tcp_exports_over_nvme_and_records_it(make_service, nvme_settings, kernel):
    service = make_service(settings=nvme_settings)
    volume = service.create(size=1, name="v1").volume
    volume = service.export("v1").volume
    assert (volume.export_protocol, volume.target_helper) == ("nvmet_tcp", "nvmet")
    assert volume.provider_location == f"127.0.0.1:4420 tcp {nqn_of(volume)} 10" and volume.provider_auth is None
    assert kernel.subsystems() == [nqn_of(volume)] and kernel.attr("subsystems", nqn_of(volume), "attr_allow_any_host") == "0"


def test_protocol_per_export_side_by_side_in_one_inventory(service, kernel, volctl):
    ok(volctl("create", "--size", "1", "--name", "i1"))
    ok(volctl("create", "--size", "1", "--name", "n1"))
    iscsi = ok(volctl("connect", "i1", "--initiator", INITIATOR_1, "--json", service=service)).json()
    nvme = ok(volctl("connect", "n1", "--protocol", "nvmet_tcp", "--initiator", HOST, "--json", service=service)).json()
    assert iscsi["driver_volume_type"] == "iscsi" and nvme["driver_volume_type"] == "nvmeof"
    n1 = service.show("n1")
    assert nvme["data"]["nqn"] == nqn_of(n1) and nvme["data"]["ns_id"] == "10" and nvme["data"]["target_port"] == "4420"
    assert [(v["name"], v["protocol"]) for v in ok(volctl("list", "--json")).json()] == [("i1", "iscsi"), ("n1", "nvmet_tcp")]
    assert kernel.subsystems() == [nqn_of(n1)] and lio_of(service).targets() != []
    assert Doctor(service).examine().clean


def test_another_protocol_than_a_live_exports_is_refused_before_anything_changes(service, volctl, kernel):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    ok(volctl("export", "v1", "--protocol", "nvmet_tcp"))
    before = service.history("v1")
    for args in (("export", "v1", "--protocol", "iscsi"),
                 ("connect", "v1", "--protocol", "iser", "--initiator", INITIATOR_1)):
        refused = volctl(*args)
        assert refused.exit_code == 5 and "unexport" in refused.stderr and "nvmet_tcp" in refused.stderr
    assert service.history("v1") == before
    assert ok(volctl("export", "v1", "--protocol", "nvmet_tcp")).exit_code == 0  # the same protocol: nothing to do


@pytest.mark.parametrize("protocol, who, why", [
    ("nvmet_tcp", INITIATOR_1, "not a host NQN"),
    ("iscsi", HOST, "is a host NQN"),
])
def test_a_host_named_for_the_other_protocol_is_a_usage_error(service, volctl, protocol, who, why):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    refused = volctl("connect", "v1", "--protocol", protocol, "--initiator", who)
    assert refused.exit_code == 2 and why in refused.stderr and "\n" not in refused.stderr.strip()
    assert service.show("v1").provider_location is None  # nothing exported


def test_a_bad_host_nqn_is_refused_as_it_enters(volctl, service):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    before = service.history("v1")
    refused = volctl("connect", "v1", "--initiator", "nqn.2014-08.com.example")
    assert refused.exit_code == 2 and "host NQN" in refused.stderr
    assert service.history("v1") == before


def test_a_connector_names_the_host_by_its_nqn(service, volctl, tmp_path):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    connector = tmp_path / "connector.json"
    connector.write_text(json.dumps({"initiator": INITIATOR_1, "nqn": HOST, "host": "compute1", "multipath": False}))
    info = ok(volctl("connect", "v1", "--protocol", "nvmet_tcp", "--connector", str(connector), "--json")).json()
    assert info["driver_volume_type"] == "nvmeof"
    assert [c.initiator for c in service.show("v1").connections] == [HOST]


def test_an_nvme_attachment_names_the_host_nqn_when_the_connector_also_has_an_iscsi_initiator(service, volctl, tmp_path):
    ok(volctl("create", "--size", "1", "--name", "v1"))
    ok(volctl("reserve", "v1"))
    connector = tmp_path / "connector.json"  # what os-brick's get_connector_properties gives a host with both
    connector.write_text(json.dumps({"initiator": INITIATOR_1, "nqn": HOST, "host": "compute1", "multipath": False}))
    ok(volctl("connect", "v1", "--protocol", "nvmet_tcp", "--connector", str(connector)))
    attached = ok(volctl("attach", "v1", "--instance", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "--host", "compute1",
                         "--json")).json()
    assert [c.initiator for c in service.show("v1").connections] == [HOST]
    assert attached["attachments"][0]["initiator"] == HOST


# -- keys ---------------------------------------------------------------------------------------


def test_a_hosts_keys_are_made_once_stored_first_and_reused_for_every_volume(service, volctl, kernel):
    for name in ("n1", "n2"):
        ok(volctl("create", "--size", "1", "--name", name))
    first = ok(volctl("connect", "n1", "--protocol", "nvmet_tcp", "--initiator", HOST, "--json")).json()["data"]
    second = ok(volctl("connect", "n2", "--protocol", "nvmet_tcp", "--initiator", HOST, "--json")).json()["data"]
    assert first["auth_method"] == second["auth_method"] == "DH-HMAC-CHAP"
    assert (first["dhchap_secret"], first["dhchap_ctrl_secret"]) == (second["dhchap_secret"], second["dhchap_ctrl_secret"])
    assert valid_dhchap_secret(first["dhchap_secret"]) and first["dhchap_secret"] != first["dhchap_ctrl_secret"]
    assert kernel.attr("hosts", HOST, "dhchap_key") == first["dhchap_secret"]
    assert kernel.attr("hosts", HOST, "dhchap_ctrl_key") == first["dhchap_ctrl_secret"]
    notes = [e.detail for e in service.history("n1") if e.kind == "note"]
    assert any("generated DH-HMAC-CHAP keys for host" in n for n in notes)
    assert not any(first["dhchap_secret"] in (n or "") for n in notes)
    # reconnecting hands the same keys out again
    again = ok(volctl("connect", "n1", "--initiator", HOST, "--json")).json()["data"]
    assert again["dhchap_secret"] == first["dhchap_secret"]


def test_keys_only_in_connect_and_show_secrets(service, volctl):
    ok(volctl("create", "--size", "1", "--name", "n1"))
    keys = ok(volctl("connect", "n1", "--protocol", "nvmet_tcp", "--initiator", HOST, "--json")).json()["data"]
    secrets = (keys["dhchap_secret"], keys["dhchap_ctrl_secret"])
    plain = ok(volctl("show", "n1", "--json")).stdout
    person = ok(volctl("show", "n1")).stdout
    listed = ok(volctl("list", "--json")).stdout + ok(volctl("history", "n1", "--json")).stdout
    verbose = volctl("-v", "disconnect", "n1", "--initiator", HOST)
    assert not any(s in text for s in secrets for text in (plain, person, listed, verbose.stdout, verbose.stderr))
    ok(volctl("connect", "n1", "--initiator", HOST))
    shown = ok(volctl("show", "n1", "--json", "--show-secrets")).json()
    [connection] = shown["connections"]
    assert (connection["auth"], connection["dhchap_secret"], connection["dhchap_ctrl_secret"]) == ("DH-HMAC-CHAP", *secrets)
    assert shown["auth"] == "DH-HMAC-CHAP" and json.loads(plain)["auth"] == "DH-HMAC-CHAP"


@pytest.mark.parametrize("auth, kernel_has_it", [("off", True), ("auto", False)])
def test_without_authentication_the_connection_info_has_no_keys(make_service, tmp_path, auth, kernel_has_it, volctl):
    kernel = FakeNvmetKernel(tmp_path / "nvmet-noauth", auth=kernel_has_it)
    service = make_service(settings=Settings(lvm_udev="on", target_protocol="nvmet_tcp", nvmet_auth=auth))
    nvmet = service.targets.for_protocol("nvmet_tcp")
    nvmet.root, nvmet.fs = kernel.root, kernel
    service.create(size=1, name="n1")
    data = service.connect("n1", initiator=HOST).data["data"]
    assert not {"auth_method", "dhchap_secret", "dhchap_ctrl_secret"} & set(data)
    assert service.show("n1").connections[0].auth is None
    assert ok(volctl("show", "n1", "--json", service=service)).json()["auth"] is None


def test_auth_on_without_kernel_support_is_exit_7_and_changes_nothing(make_service, tmp_path, volctl):
    kernel = FakeNvmetKernel(tmp_path / "nvmet-noauth", auth=False)
    service = make_service(settings=Settings(lvm_udev="on", target_protocol="nvmet_tcp", nvmet_auth="on"))
    nvmet = service.targets.for_protocol("nvmet_tcp")
    nvmet.root, nvmet.fs = kernel.root, kernel
    service.create(size=1, name="n1")
    before = service.show("n1")
    for args in (("export", "n1"), ("connect", "n1", "--initiator", HOST)):
        refused = volctl(*args, service=service)
        assert refused.exit_code == 7 and "CONFIG_NVME_TARGET_AUTH" in refused.stderr
    assert service.show("n1").provider_location is None and kernel.subsystems() == [] and kernel.hosts() == []
    assert service.show("n1").connections == before.connections


# -- the detach side --------------------------------------------------------------------------


def test_disconnect_unexport_delete_leave_nothing_of_volctls_in_nvmet(service, volctl, kernel, tmp_path):
    ok(volctl("create", "--size", "1", "--name", "n1"))
    ok(volctl("reserve", "n1"))
    ok(volctl("connect", "n1", "--protocol", "nvmet_tcp", "--initiator", HOST))
    ok(volctl("attach", "n1", "--instance", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "--initiator", HOST))
    assert service.show("n1").attachments[0].initiator_over("nvmet_tcp") == HOST
    ok(volctl("disconnect", "n1", "--initiator", HOST))
    assert kernel.hosts() == [] and kernel.subsystems() != []
    ok(volctl("detach", "n1"))  # the last attachment: the export goes
    assert kernel.subsystems() == [] and kernel.ports() == [] and kernel.hosts() == []
    document = json.loads((tmp_path / "nvmet.json").read_text())
    assert (document["subsystems"], document["hosts"], document["ports"]) == ([], [], [])
    ok(volctl("delete", "n1"))
    assert Doctor(service).examine().clean


def test_multiattach_keeps_a_hosts_access_while_another_attachment_uses_it(service, volctl, kernel):
    ok(volctl("create", "--size", "1", "--name", "m1", "--multiattach"))
    for instance in ("6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"):
        ok(volctl("reserve", "m1"))
        ok(volctl("connect", "m1", "--protocol", "nvmet_tcp", "--initiator", HOST))
        ok(volctl("attach", "m1", "--instance", instance, "--initiator", HOST))
    kept = ok(volctl("disconnect", "m1", "--initiator", HOST))
    assert "kept" in kept.stderr and service.targets.for_protocol("nvmet_tcp").hosts(nqn_of(service.show("m1"))) == [HOST]


# -- doctor and restore ---------------------------------------------------------------------


def connected(service, name="n1", host=HOST):
    service.create(size=1, name=name)
    service.connect(name, initiator=host, protocol="nvmet_tcp")
    return service.show(name)


def test_restore_brings_back_subsystems_hosts_with_their_keys_and_ports(service, kernel):
    volume = connected(service)
    keys = service.host_secrets_of(volume)[HOST]
    kernel.clear()
    report = Restorer(service).run()
    assert (report.restored, report.exit_code) == (("n1",), 0)
    assert kernel.subsystems() == [nqn_of(volume)] and kernel.hosts() == [HOST] and kernel.ports() == ["1"]
    assert kernel.attr("hosts", HOST, "dhchap_key") == keys["dhchap_key"]
    assert Doctor(service).examine().clean
    assert Restorer(service).run().restored == ()  # all live: nothing to do


def test_doctor_finds_and_mends_an_export_without_taking_access_away(service, kernel):
    volume = connected(service)
    nqn = nqn_of(volume)
    kernel.write(kernel.root / "subsystems" / nqn / "namespaces/10/enable", "0")
    kernel.unlink(kernel.root / "ports/1/subsystems" / nqn)
    kernel.write(kernel.root / "hosts" / HOST / "dhchap_key", "DHHC-1:01:" + "A" * 48 + ":")
    report = Doctor(service).examine()
    assert {d.kind for d in report.drift} >= {"namespace", "port_unlinked", "host_keys"}
    repaired = Doctor(service).repair(report)
    assert repaired.clean, [(d.kind, d.error) for d in repaired.drift]
    assert kernel.attr("subsystems", nqn, "namespaces/10/enable") == "1"
    assert (kernel.root / "ports/1/subsystems" / nqn).is_symlink()
    assert kernel.attr("hosts", HOST, "dhchap_key") == service.host_secrets_of(volume)[HOST]["dhchap_key"]
    assert kernel.hosts() == [HOST] and Doctor(service).examine().clean


def test_a_subsystem_open_to_any_host_is_reported_and_left_to_the_operator(service, kernel):
    volume = connected(service)
    nqn = nqn_of(volume)
    kernel.unlink(kernel.root / "subsystems" / nqn / "allowed_hosts" / HOST)
    kernel.write(kernel.root / "subsystems" / nqn / "attr_allow_any_host", "1")
    report = Doctor(service).repair(Doctor(service).examine())
    open_ = [d for d in report.drift if d.kind == "open_to_any_host"]
    assert open_ and open_[0].repair is None and not report.clean
    assert kernel.attr("subsystems", nqn, "attr_allow_any_host") == "1"


def test_an_orphaned_volctl_subsystem_without_hosts_is_removed_one_with_hosts_kept(service, kernel):
    volume = connected(service)
    service.connect(volume.name, initiator=HOST)
    orphan = service.targets.for_protocol("nvmet_tcp")
    from volctl.model import Volume

    for vid, hosts in (("0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f", ()), ("1d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f", (HOST2,))):
        stray = Volume(id=vid, name="stray", size=1, status="available", attach_status="detached", multiattach=False,
                       volume_group="cinder-volumes", lv_name=f"volume-{vid}", lv_path=f"/dev/cinder-volumes/volume-{vid}",
                       provider_location=None, provider_auth=None, previous_status=None, created_at="t", updated_at="t")
        with orphan.changes():
            orphan.create_export(stray)
            for host in hosts:
                orphan.allow(stray, host, None)
    was_volctls(service, "0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f", "1d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f")
    report = Doctor(service).repair(Doctor(service).examine())
    orphans = {d.subject: d for d in report.drift if d.kind == "target_orphaned"}
    assert set(orphans) == {"nqn.nvme-subsystem-1-0d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f",
                            "nqn.nvme-subsystem-1-1d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f"}
    assert kernel.subsystems() == sorted([nqn_of(volume), "nqn.nvme-subsystem-1-1d5c1f7e-2a3b-4c4d-8e5f-6a7b8c9d0e1f"])


def test_switching_target_protocol_strands_nothing(make_service, service, kernel):
    connected(service, "n1")
    service.create(size=1, name="i1")
    service.connect("i1", {"initiator": INITIATOR_1})
    switched = make_service(settings=Settings(lvm_udev="on", target_protocol="nvmet_tcp"))
    assert switched.targets.owner(switched.show("i1")).family == "lio"
    switched.disconnect("i1", initiator=INITIATOR_1)  # through its own helper, whatever the setting
    assert lio_of(switched).hosts(lio_of(switched).target_name(switched.show("i1"))) == []
    assert Doctor(switched).examine().clean and Doctor(service).examine().clean


def test_a_restore_of_nvme_exports_only_asks_no_other_helper_anything(service, kernel, host):
    connected(service)
    kernel.clear()
    lio = lio_of(service)
    assert not lio.configfs.is_dir() or not any(lio.configfs.iterdir())
    lio.__dict__["configfs"] = lio.configfs / "absent"  # no iscsi_target_mod loaded: LIO asks cinder-rtstool
    before = len(host.commands("cinder-rtstool"))
    report = Restorer(service).run()
    assert report.restored == ("n1",)
    assert len(host.commands("cinder-rtstool")) == before  # LIO owns none of them: no listing, no save
    assert [(s.saved, "nvmet" in s.what.lower()) for s in report.saves] == [(False, False), (True, True)]


def test_nvme_portals_keep_the_configured_order(make_service, kernel):
    """target_ip_address first, the secondary addresses as listed (not sorted): version 2's portals."""
    order = ("10.0.0.9", "192.168.7.1", "10.0.0.3")
    service = make_service(settings=Settings(lvm_udev="on", target_protocol="nvmet_tcp", target_ip_address=order[0],
                                             target_secondary_ip_addresses=order[1:], nvmeof_conn_info_version=2))
    volume = service.create(size=1, name="n1").volume
    data = service.connect("n1", {"nqn": HOST}).data["data"]
    assert data["portals"] == [[ip, "4420", "tcp"] for ip in order]
    assert service.show("n1").provider_location == f"{','.join(order)}:4420 tcp {nqn_of(volume)} 10"


def test_dhchap_keys_never_leave_connect_and_show_secrets_on_any_command(service, volctl, kernel, db_path, caplog):
    """Every command over NVMe/TCP exports with known host keys (export, connect of a second host,
    extend, snapshots, restore after nvmet is cleared, doctor and its repair of a host's key,
    disconnect, unexport, delete), human, --json and -v: the keys are in no stdout but connect's
    and show --show-secrets', in no stderr, no log record and no history row."""
    import logging
    import sqlite3

    caplog.set_level(logging.DEBUG, logger="volctl")
    outputs = []

    def run(*args: str, expect: int = 0):
        result = volctl(*args, service=service)
        outputs.append((args, result))
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result

    run("create", "--size", "1", "--name", "n1")
    run("-v", "export", "n1", "--protocol", "nvmet_tcp")
    first = json.loads(run("-v", "connect", "n1", "--initiator", HOST, "--json").stdout)["data"]
    second = json.loads(run("connect", "n1", "--initiator", HOST2, "--json").stdout)["data"]
    secrets = {first["dhchap_secret"], first["dhchap_ctrl_secret"], second["dhchap_secret"], second["dhchap_ctrl_secret"]}
    assert len(secrets) == 4
    run("-v", "show", "n1", "--show-secrets", "--json")
    for extra in ((), ("-v",), ("--json",)):
        run(*extra, "show", "n1")
        run(*extra, "list")
        run(*extra, "history", "n1")
        run(*extra, "doctor")
    run("-v", "extend", "n1", "--size", "2")
    run("-v", "snapshot", "create", "n1", "--name", "s1")
    run("-v", "snapshot", "list", "--json")
    # a host's key changed behind volctl's back: doctor reports it, its repair writes the inventory's
    kernel.write(kernel.root / "hosts" / HOST / "dhchap_key", "DHHC-1:01:" + "A" * 48 + ":")
    run("-v", "doctor", expect=5)
    run("-v", "--json", "doctor", expect=5)
    run("-v", "doctor", "--repair")
    # restore: a key changed again, then nvmet cleared as a reboot leaves it
    kernel.write(kernel.root / "hosts" / HOST2 / "dhchap_key", "DHHC-1:01:" + "B" * 48 + ":")
    assert "the keys of" in json.dumps(run("-v", "--json", "restore", "n1").json()) or \
        any("the keys of" in (e.detail or "") for e in service.history("n1"))
    kernel.clear()
    run("-v", "restore")
    run("-v", "doctor")
    run("-v", "disconnect", "n1", "--initiator", HOST2)
    run("-v", "snapshot", "delete", "s1")
    run("-v", "unexport", "n1", "--json")
    run("-v", "history", "n1", "--json")
    run("-v", "delete", "n1")
    run("history", "n1")

    shown = 0
    for args, result in outputs:
        words = [a for a in args if not a.startswith("-")]
        may_show = words[0] == "connect" or "--show-secrets" in args
        for secret in secrets:
            assert secret not in result.stderr, (args, result.stderr)
            if may_show:
                shown += secret in result.stdout
            else:
                assert secret not in result.stdout, (args, result.stdout)
    assert shown >= 4  # the positive control: connect did hand them out
    texts = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert not any(s in t for s in secrets for t in texts)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                  if t != "host_credentials"]  # where the keys are kept, as provider_auth keeps a password
        rows = [row for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]
    finally:
        conn.close()
    assert rows and not any(s in str(row) for s in secrets for row in rows)
