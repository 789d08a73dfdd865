"""The seed flow through the real CLI: create -> reserve -> export -> connect -> attach, with the exact
external command lines, Cinder's byte formats, human and JSON output of every command."""

from __future__ import annotations

import json
import re

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from volctl.config import Settings

ALPHABET = set("23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
PREFIX = "iqn.2010-10.org.openstack:"
VOLUME_KEYS = {"id", "name", "size", "status", "attach_status", "multiattach", "lv_path", "provider_location",
               "created_at", "updated_at", "attachments"}
ATTACHMENT_KEYS = {"id", "instance_uuid", "attached_host", "mountpoint", "attach_mode", "attach_status", "attach_time"}


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def create(volctl, name="v1", *extra) -> dict:
    return ok(volctl("create", "--size", "1", "--name", name, *extra, "--json")).json()


def secrets_of(volctl, ref="v1") -> tuple[str, str]:
    auth = ok(volctl("show", ref, "--show-secrets", "--json")).json()["provider_auth"]
    method, user, password = auth.split(" ")
    assert method == "CHAP"
    return user, password


def iqn_of(volume_id: str) -> str:
    return f"{PREFIX}volume-{volume_id}"


def assert_volume_shape(doc: dict) -> None:
    assert VOLUME_KEYS <= set(doc), VOLUME_KEYS - set(doc)
    assert isinstance(doc["size"], int) and isinstance(doc["multiattach"], bool)
    assert isinstance(doc["attachments"], list)
    for attachment in doc["attachments"]:
        assert ATTACHMENT_KEYS <= set(attachment), ATTACHMENT_KEYS - set(attachment)


def seed(volctl, name="v1", *create_args) -> tuple[dict, dict]:
    vol = create(volctl, name, *create_args)
    ok(volctl("reserve", name))
    ok(volctl("export", name))
    info = ok(volctl("connect", name, "--initiator", INITIATOR_1, "--json")).json()
    ok(volctl("attach", name, "--instance", INSTANCE_1, "--host", "compute1", "--mountpoint", "/dev/vdb"))
    return vol, info


# -- the seed flow ---------------------------------------------------------------------------


def test_seed_flow_runs_exactly_cinders_command_lines(volctl, host, save_file):
    vol = create(volctl)
    vid, iqn, lv = vol["id"], iqn_of(vol["id"]), f"volume-{vol['id']}"
    # the admission's vgs (does the group have the room?), then Cinder's lvcreate
    assert host.calls == [["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free",
                           "cinder-volumes"],
                          ["lvcreate", "-n", lv, "cinder-volumes", "-L", "1g"]]

    host.calls.clear()
    ok(volctl("reserve", "v1"))
    assert host.calls == []

    ok(volctl("export", "v1"))
    user, password = secrets_of(volctl)
    # whether the target is already there comes from configfs; get-targets after create is Cinder's check
    assert host.calls == [
        ["cinder-rtstool", "create", f"/dev/cinder-volumes/{lv}", iqn, user, password, "False", "-p3260", "-a127.0.0.1"],
        ["cinder-rtstool", "get-targets"],
        ["cinder-rtstool", "save", str(save_file)],
    ]

    host.calls.clear()
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    assert host.calls == [
        ["cinder-rtstool", "add-initiator", iqn, user, password, INITIATOR_1],
        ["cinder-rtstool", "save", str(save_file)],
    ]

    host.calls.clear()
    ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--host", "compute1", "--mountpoint", "/dev/vdb"))
    assert host.calls == []

    shown = ok(volctl("show", vid, "--json")).json()
    assert shown["status"] == "in-use" and shown["attach_status"] == "attached"
    assert shown["provider_location"] == f"127.0.0.1:3260,{iqn} {iqn} 0"
    assert shown["lv_path"] == f"/dev/cinder-volumes/{lv}"
    # the host: one LV, one target with the volume's CHAP on the initiator's ACL, saved
    assert ("cinder-volumes", lv) in host.lvs
    assert host.targets[iqn].device == f"/dev/cinder-volumes/{lv}"
    assert host.targets[iqn].portals == ("127.0.0.1:3260",)
    assert host.targets[iqn].acls == {INITIATOR_1: (user, password)}
    assert host.saved[iqn].acls == {INITIATOR_1: (user, password)}


def test_provider_auth_is_cinders_chap_shape(volctl):
    create(volctl)
    ok(volctl("export", "v1"))
    user, password = secrets_of(volctl)
    assert len(user) == 20 and len(password) == 16
    assert set(user) <= ALPHABET and set(password) <= ALPHABET
    shown = ok(volctl("show", "v1", "--show-secrets", "--json")).json()
    assert shown["provider_auth"] == f"CHAP {user} {password}"
    # without --show-secrets the password is masked, the user is not
    masked = ok(volctl("show", "v1", "--json")).json()["provider_auth"]
    assert password not in masked and masked.startswith(f"CHAP {user} ")


def test_connect_json_is_cinders_connection_info(volctl, host):
    vol, info = seed(volctl)
    user, password = secrets_of(volctl)
    iqn = iqn_of(vol["id"])
    assert info == {
        "driver_volume_type": "iscsi",
        "data": {
            "target_discovered": False,
            "target_portal": "127.0.0.1:3260",
            "target_iqn": iqn,
            "target_lun": 0,
            "volume_id": vol["id"],
            "auth_method": "CHAP",
            "auth_username": user,
            "auth_password": password,
            "encrypted": False,
            "qos_specs": None,
            "access_mode": "rw",
            "cacheable": False,
            "enforce_multipath": False,
        },
    }


def test_connect_human_output_has_the_facts_on_stdout(volctl):
    vol = create(volctl)
    r = ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    user, password = secrets_of(volctl)
    lines = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert lines["driver_volume_type"] == "iscsi"
    assert lines["target_iqn"] == iqn_of(vol["id"])
    assert lines["target_portal"] == "127.0.0.1:3260"
    assert lines["target_lun"] == "0"
    assert lines["auth_username"] == user and lines["auth_password"] == password
    assert "CHAP password" in r.stderr and password not in r.stderr


@pytest.mark.parametrize("how", ["flag", "connector"])
def test_multipath_requested_gives_portal_lists_with_one_portal(volctl, tmp_path, how):
    vol = create(volctl)
    if how == "flag":
        r = volctl("connect", "v1", "--initiator", INITIATOR_1, "--multipath", "--json")
    else:
        path = tmp_path / "connector.json"
        path.write_text(json.dumps({"initiator": INITIATOR_1, "multipath": True, "host": "compute1"}))
        r = volctl("connect", "v1", "--connector", str(path), "--json")
    data = ok(r).json()["data"]
    iqn = iqn_of(vol["id"])
    assert data["target_portal"] == "127.0.0.1:3260"
    assert data["target_portals"] == ["127.0.0.1:3260"]
    assert data["target_iqns"] == [iqn]
    assert data["target_luns"] == [0]


def test_single_portal_without_multipath_has_no_lists(volctl):
    create(volctl)
    data = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")).json()["data"]
    assert not {"target_portals", "target_iqns", "target_luns"} & set(data)


def test_enforce_multipath_comes_from_the_connector(volctl):
    create(volctl)
    connector = {"initiator": INITIATOR_1, "multipath": True, "enforce_multipath": True}
    data = ok(volctl("connect", "v1", "--connector", "-", "--json", input=json.dumps(connector))).json()["data"]
    assert data["enforce_multipath"] is True


class TestTwoPortals:
    @pytest.fixture
    def settings(self):
        return Settings(target_secondary_ip_addresses=("127.0.0.2",))

    def test_export_binds_both_portals_and_lists_them(self, volctl, host):
        vol = create(volctl)
        iqn = iqn_of(vol["id"])
        info = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")).json()
        create_call = next(c for c in host.calls if c[:2] == ["cinder-rtstool", "create"])
        assert create_call[-2:] == ["-p3260", "-a127.0.0.1,127.0.0.2"]
        assert host.targets[iqn].portals == ("127.0.0.1:3260", "127.0.0.2:3260")
        shown = ok(volctl("show", "v1", "--json")).json()
        assert shown["provider_location"] == f"127.0.0.1:3260;127.0.0.2:3260,{iqn} {iqn} 0"
        data = info["data"]
        assert data["target_portal"] == "127.0.0.1:3260"
        assert data["target_portals"] == ["127.0.0.1:3260", "127.0.0.2:3260"]
        assert data["target_iqns"] == [iqn, iqn]
        assert data["target_luns"] == [0, 0]


class TestPortalsInTheConfiguredOrder:
    """target_ip_address first, then the secondary addresses as listed, however they sort."""

    ORDER = ("10.0.0.9", "192.168.7.1", "10.0.0.3", "fd00::5", "10.0.0.20")

    @pytest.fixture
    def settings(self, tmp_path):
        from volctl.config import load_settings

        path = tmp_path / "volctl.toml"
        secondary = ", ".join(f'"{ip}"' for ip in self.ORDER[1:])
        path.write_text(f'target_ip_address = "{self.ORDER[0]}"\ntarget_secondary_ip_addresses = [{secondary}]\n'
                        'lvm_udev = "on"\n')
        return load_settings(str(path))

    def test_connection_info_and_provider_location_keep_the_configured_order(self, volctl, host):
        vol = create(volctl)
        iqn = iqn_of(vol["id"])
        portals = [f"[{ip}]:3260" if ":" in ip else f"{ip}:3260" for ip in self.ORDER]
        assert portals != sorted(portals)
        data = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")).json()["data"]
        assert data["target_portal"] == portals[0]
        assert data["target_portals"] == portals
        assert data["target_iqns"] == [iqn] * 5 and data["target_luns"] == [0] * 5
        shown = ok(volctl("show", "v1", "--json")).json()
        assert shown["provider_location"] == f"{';'.join(portals)},{iqn} {iqn} 0"
        assert host.targets[iqn].portals == tuple(portals)
        # a second host, and the connect of an exported volume, read them back in the same order
        again = ok(volctl("connect", "v1", "--initiator", INITIATOR_2, "--json")).json()["data"]
        assert again["target_portals"] == portals


def test_connector_from_stdin(volctl, host):
    vol = create(volctl)
    connector = {"initiator": INITIATOR_2, "host": "compute2", "ip": "192.0.2.7", "platform": "x86_64",
                 "os_type": "linux", "multipath": False, "enforce_multipath": False}
    info = ok(volctl("connect", "v1", "--connector", "-", "--json", input=json.dumps(connector))).json()
    assert info["data"]["target_iqn"] == iqn_of(vol["id"])
    assert INITIATOR_2 in host.targets[iqn_of(vol["id"])].acls
    shown = ok(volctl("show", "v1", "--json")).json()
    assert [c["initiator"] for c in shown["connections"]] == [INITIATOR_2]


def test_initiator_is_stored_in_lios_lower_case(volctl, host):
    vol = create(volctl)
    ok(volctl("connect", "v1", "--initiator", "iqn.1994-05.com.RedHat:Client1"))
    assert list(host.targets[iqn_of(vol["id"])].acls) == ["iqn.1994-05.com.redhat:client1"]


def test_export_is_idempotent(volctl, host):
    vol = create(volctl)
    first = ok(volctl("export", "v1", "--json")).json()
    creds = secrets_of(volctl)
    host.calls.clear()
    r = ok(volctl("export", "v1"))
    assert not [c for c in host.calls if c[:2] == ["cinder-rtstool", "create"]]
    assert "already exported" in r.stderr
    second = ok(volctl("export", "v1", "--json")).json()
    assert second["provider_location"] == first["provider_location"]
    assert secrets_of(volctl) == creds
    assert list(host.targets) == [iqn_of(vol["id"])]


def test_credentials_survive_unexport_and_export(volctl, host):
    vol = create(volctl)
    ok(volctl("export", "v1"))
    creds = secrets_of(volctl)
    ok(volctl("unexport", "v1"))
    assert host.targets == {}
    assert ok(volctl("show", "v1", "--json")).json()["provider_location"] is None
    assert secrets_of(volctl) == creds  # provider_auth kept, as Cinder's remove_export keeps it
    ok(volctl("export", "v1"))
    assert secrets_of(volctl) == creds
    create_calls = [c for c in host.calls if c[:2] == ["cinder-rtstool", "create"]]
    assert len(create_calls) == 2 and create_calls[0][4:6] == create_calls[1][4:6] == list(creds)
    assert iqn_of(vol["id"]) in host.targets


def test_connect_exports_when_needed_and_reuses_an_export(volctl, host):
    create(volctl)
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    ok(volctl("connect", "v1", "--initiator", INITIATOR_2))
    assert len([c for c in host.calls if c[:2] == ["cinder-rtstool", "create"]]) == 1


def test_connect_rolls_back_the_export_it_created(volctl, host):
    vol = create(volctl)
    host.fail(["cinder-rtstool", "add-initiator"], exit_code=1, stderr="RtstoolError: boom")
    r = volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")
    assert r.exit_code == 6
    assert r.stdout == ""
    assert "add-initiator" in r.stderr and "exit code 1" in r.stderr and "RtstoolError: boom" in r.stderr
    iqn = iqn_of(vol["id"])
    assert iqn not in host.targets
    assert ["cinder-rtstool", "delete", iqn] in host.calls
    shown = ok(volctl("show", "v1", "--json")).json()
    assert shown["provider_location"] is None
    assert shown["status"] == "available"
    assert shown["connections"] == []


def test_attach_records_the_attachment(volctl):
    vol = create(volctl)
    ok(volctl("reserve", "v1"))
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    doc = ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--host", "Compute_1 X", "--mountpoint", "/dev/vdb",
                    "--json")).json()
    assert_volume_shape(doc)
    assert doc["status"] == "in-use" and doc["attach_status"] == "attached"
    [a] = doc["attachments"]
    assert a["instance_uuid"] == INSTANCE_1
    assert a["attached_host"] == "compute-1-x"
    assert a["mountpoint"] == "/dev/vdb"
    assert a["attach_mode"] == "rw"
    assert a["attach_status"] == "attached"
    assert a["attach_time"]
    assert a.get("initiator") == INITIATOR_1
    assert doc["id"] == vol["id"]


def test_attach_is_idempotent_per_instance(volctl):
    seed(volctl)
    before = ok(volctl("show", "v1", "--json")).json()
    r = ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--host", "compute1"))
    assert "already attached" in r.stderr
    after = ok(volctl("show", "v1", "--json")).json()
    assert [a["id"] for a in after["attachments"]] == [a["id"] for a in before["attachments"]]
    assert after["status"] == "in-use"


def test_second_instance_is_refused_without_multiattach(volctl):
    seed(volctl)
    r = volctl("attach", "v1", "--instance", INSTANCE_2)
    assert r.exit_code == 5
    assert "'in-use'" in r.stderr and "'attaching'" in r.stderr and "multiple attachments" in r.stderr
    assert len(ok(volctl("show", "v1", "--json")).json()["attachments"]) == 1
    r = volctl("reserve", "v1")
    assert r.exit_code == 5 and "'in-use'" in r.stderr and "'available'" in r.stderr


def test_attach_read_only_is_recorded_and_reported_on_connect(volctl):
    create(volctl)
    ok(volctl("reserve", "v1"))
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    doc = ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--mode", "ro", "--json")).json()
    assert doc["attachments"][0]["attach_mode"] == "ro"
    info = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")).json()
    assert info["data"]["access_mode"] == "ro"


def test_connector_mode_sets_access_mode(volctl):
    create(volctl)
    info = ok(volctl("connect", "v1", "--connector", "-", "--json",
                     input=json.dumps({"initiator": INITIATOR_1, "mode": "ro"}))).json()
    assert info["data"]["access_mode"] == "ro"


def test_reserve_is_a_compare_and_swap_with_cinders_message(volctl):
    create(volctl)
    doc = ok(volctl("reserve", "v1", "--json")).json()
    assert doc["status"] == "attaching"
    r = volctl("reserve", "v1")
    assert r.exit_code == 5
    assert "reserve" in r.stderr and "'available'" in r.stderr and "'attaching'" in r.stderr
    shared = create(volctl, "shared", "--multiattach")
    assert shared["multiattach"] is True
    ok(volctl("reserve", "shared"))
    r = volctl("reserve", "shared")
    assert r.exit_code == 5 and "'available' or 'in-use'" in r.stderr and "'attaching'" in r.stderr


def test_iser_protocol_is_passed_to_rtstool_and_reported(volctl, make_service, host):
    service = make_service(settings=Settings(target_protocol="iser"))
    vol = ok(volctl("create", "--size", "1", "--name", "v1", "--json", service=service)).json()
    info = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json",
                     service=make_service(settings=Settings(target_protocol="iser")))).json()
    assert info["driver_volume_type"] == "iser"
    create_call = next(c for c in host.calls if c[:2] == ["cinder-rtstool", "create"])
    assert create_call[6] == "True"
    assert host.targets[iqn_of(vol["id"])].iser


# -- JSON and human output of every command -----------------------------------------------------


def test_json_before_and_after_the_command(volctl):
    create(volctl)
    after = volctl("show", "v1", "--json")
    before = volctl("--json", "show", "v1")
    assert after.exit_code == before.exit_code == 0
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert after.stderr == before.stderr == ""
    assert_volume_shape(after.json())


def test_list_json_is_an_empty_array_when_empty(volctl):
    r = ok(volctl("list", "--json"))
    assert json.loads(r.stdout) == [] and r.stdout.strip() == "[]"
    r = ok(volctl("--json", "list"))
    assert json.loads(r.stdout) == []


def test_list_json_and_filter(volctl):
    a = create(volctl, "a")
    b = create(volctl, "b")
    ok(volctl("reserve", "b"))
    docs = ok(volctl("list", "--json")).json()
    assert [d["id"] for d in docs] == [a["id"], b["id"]]
    for d in docs:
        assert_volume_shape(d)
    assert [d["name"] for d in ok(volctl("list", "--status", "attaching", "--json")).json()] == ["b"]
    assert ok(volctl("list", "--status", "in-use", "--json")).json() == []


def test_list_human(volctl):
    r = ok(volctl("list"))
    assert r.stdout == "" and "no volumes" in r.stderr
    vol = create(volctl, "db1", "--multiattach")
    r = ok(volctl("list"))
    header = r.stdout.splitlines()[0].split()
    assert header == ["ID", "NAME", "SIZE", "STATUS", "ATTACH", "MULTI", "ATTACHMENTS", "PROTOCOL"]
    row = r.stdout.splitlines()[1].split()
    assert row == [vol["id"], "db1", "1G", "available", "detached", "yes", "0", "-"]
    ok(volctl("export", "db1"))
    assert ok(volctl("list")).stdout.splitlines()[1].split()[7] == "iscsi"


def test_list_human_columns_line_up_for_awk_and_eyes(volctl):
    create(volctl, "a")
    create(volctl, "a-much-longer-name.x", "--size", "10")
    ok(volctl("reserve", "a"))
    lines = ok(volctl("list")).stdout.splitlines()
    assert len(lines) == 3 and all(line == line.rstrip() for line in lines)
    # every column starts where its header starts; SIZE ends where its header ends
    for word in ("NAME", "STATUS", "ATTACH ", "MULTI", "ATTACHMENTS"):
        start = lines[0].index(word)
        assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines[1:]), (word, lines)
    size_end = lines[0].index("SIZE") + len("SIZE")
    assert [line[:size_end].split()[-1] for line in lines[1:]] == ["1G", "10G"]
    assert lines[1].split()[3:5] == ["attaching", "detached"]


def test_every_command_json_document(volctl, tmp_path):
    """Each command prints exactly one JSON document on stdout and nothing for a person there."""
    doc = create(volctl, "v1")
    assert_volume_shape(doc)
    assert doc["status"] == "available" and doc["attach_status"] == "detached" and doc["size"] == 1
    assert doc["attachments"] == [] and doc["provider_location"] is None and doc["multiattach"] is False
    assert doc["name"] == "v1" and re.fullmatch(r"[0-9a-f-]{36}", doc["id"])
    assert doc["lv_path"] == f"/dev/cinder-volumes/volume-{doc['id']}"

    steps = [
        (["reserve", "v1"], "attaching"),
        (["unreserve", "v1"], "available"),
        (["reserve", "v1"], "attaching"),
        (["export", "v1"], "attaching"),
    ]
    for args, status in steps:
        d = ok(volctl(*args, "--json")).json()
        assert_volume_shape(d)
        assert d["status"] == status, args
    info = ok(volctl("connect", "v1", "--initiator", INITIATOR_1, "--json")).json()
    assert set(info) == {"driver_volume_type", "data"}
    d = ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--json")).json()
    assert_volume_shape(d)
    assert d["status"] == "in-use" and len(d["attachments"]) == 1
    d = ok(volctl("detach", "v1", "--json")).json()
    assert_volume_shape(d)
    assert d["status"] == "available" and d["provider_location"] is None
    d = ok(volctl("disconnect", "v1", "--initiator", INITIATOR_1, "--json")).json()
    assert_volume_shape(d)
    d = ok(volctl("unexport", "v1", "--json")).json()
    assert_volume_shape(d)
    d = ok(volctl("extend", "v1", "--size", "2", "--json")).json()
    assert_volume_shape(d)
    assert d["size"] == 2 and d["status"] == "available"
    d = ok(volctl("reset-state", "v1", "--status", "error", "--json")).json()
    assert d["status"] == "error"
    events = ok(volctl("history", "v1", "--json")).json()
    assert isinstance(events, list) and events
    for e in events:
        assert {"at", "kind", "action", "from_status", "to_status", "argv", "exit_code", "detail"} <= set(e)
    d = ok(volctl("delete", "v1", "--json")).json()
    assert d == {"id": doc["id"], "name": "v1", "deleted": True}
    assert ok(volctl("list", "--json")).json() == []


def test_every_command_human_output(volctl):
    r = ok(volctl("create", "--size", "1", "--name", "v1"))
    vid = re.search(r"created v1 \(([0-9a-f-]{36})\)", r.stderr).group(1)
    assert re.search(r"^status\s+available\s*$", r.stdout, re.M)
    assert re.search(rf"^id\s+{vid}\s*$", r.stdout, re.M)
    assert re.search(r"^size\s+1 GiB\s*$", r.stdout, re.M)

    r = ok(volctl("reserve", "v1"))
    assert "reserved v1" in r.stderr and re.search(r"^status\s+attaching", r.stdout, re.M)
    r = ok(volctl("unreserve", "v1"))
    assert "unreserved v1: available" in r.stderr
    ok(volctl("reserve", "v1"))
    r = ok(volctl("export", "v1"))
    iqn = iqn_of(vid)
    assert f"exported v1: 127.0.0.1:3260,{iqn} {iqn} 0" in r.stderr
    assert re.search(rf"^provider_location\s+127\.0\.0\.1:3260,{re.escape(iqn)} ", r.stdout, re.M)
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    r = ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--host", "compute1", "--mountpoint", "/dev/vdb"))
    att = re.search(r"attached v1: attachment ([0-9a-f-]{36})", r.stderr).group(1)
    assert re.search(rf"^attachment\s+{att} attached instance {INSTANCE_1} host compute1 at /dev/vdb \(rw\)", r.stdout, re.M)
    assert re.search(rf"^acl\s+{re.escape(INITIATOR_1)}", r.stdout, re.M)

    r = ok(volctl("show", "v1"))
    assert re.search(r"^status\s+in-use", r.stdout, re.M) and r.stderr == ""
    user, password = secrets_of(volctl)
    assert password not in r.stdout and f"CHAP {user} ***" in r.stdout
    r = ok(volctl("show", "v1", "--show-secrets"))
    assert f"CHAP {user} {password}" in r.stdout

    r = ok(volctl("detach", "v1"))
    assert f"detached {att} from v1; export removed" in r.stderr
    assert re.search(r"^status\s+available", r.stdout, re.M)
    r = ok(volctl("disconnect", "v1", "--initiator", INITIATOR_1))
    assert "not exported" in r.stderr
    ok(volctl("export", "v1"))
    r = ok(volctl("unexport", "v1"))
    assert "unexported v1" in r.stderr
    r = ok(volctl("extend", "v1", "--size", "3"))
    assert "extended v1 to 3 GiB" in r.stderr
    r = ok(volctl("reset-state", "v1", "--status", "error"))
    assert "reset v1 to error" in r.stderr
    r = ok(volctl("history", "v1"))
    assert r.stdout.splitlines()[0].split()[:3] == ["TIME", "KIND", "ACTION"]
    assert "lvcreate -n volume-" in r.stdout and "reset-state" in r.stdout
    assert password not in r.stdout
    r = ok(volctl("delete", "v1"))
    assert r.stdout.strip() == f"deleted v1 ({vid})"


# -- the whole cycle ------------------------------------------------------------------------


@pytest.mark.parametrize("teardown", [
    [["detach", "v1"]],  # detach of the last attachment takes the export and its ACLs with it
    [["disconnect", "v1", "--initiator", INITIATOR_1], ["detach", "v1"]],  # nova's order
    [["detach", "v1"], ["disconnect", "v1", "--initiator", INITIATOR_1], ["unexport", "v1"]],
], ids=["detach", "disconnect-detach", "detach-disconnect-unexport"])
def test_full_cycle_leaves_nothing_on_the_host(volctl, host, teardown):
    vol, info = seed(volctl)
    assert host.lvs and host.targets and host.saved
    for args in teardown:
        ok(volctl(*args))
    ok(volctl("delete", "v1"))
    assert host.lvs == {}
    assert host.targets == {}
    assert host.saved == {}
    assert ok(volctl("list", "--json")).json() == []
    r = volctl("show", "v1")
    assert r.exit_code == 3
    # history outlives the volume, by name and by id
    by_name = ok(volctl("history", "v1", "--json")).json()
    by_id = ok(volctl("history", vol["id"], "--json")).json()
    assert by_name == by_id
    assert by_name[-1]["action"] == "delete" and by_name[-1]["to_status"] == "deleted"
    password = info["data"]["auth_password"]
    assert password not in json.dumps(by_name)
