"""Every exit code of the contract, through the CLI: 2 usage, 3 not found, 4 taken, 5 state, 6 command, 7 tool."""

from __future__ import annotations

import json

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

UNKNOWN_UUID = "11111111-2222-4333-8444-555555555555"


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def create(volctl, name="v1", *extra) -> dict:
    return ok(volctl("create", "--size", "1", "--name", name, *extra, "--json")).json()


def show(volctl, ref="v1") -> dict:
    return ok(volctl("show", ref, "--json")).json()


def fails(result, code: int):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout  # stdout stays data; an error has none
    assert result.stderr.strip(), "an error says why on stderr"
    return result


def in_use(volctl, name="v1", *create_args, instance=INSTANCE_1, initiator=INITIATOR_1) -> dict:
    create(volctl, name, *create_args)
    ok(volctl("reserve", name))
    ok(volctl("connect", name, "--initiator", initiator))
    ok(volctl("attach", name, "--instance", instance, "--initiator", initiator))
    return show(volctl, name)


# -- 2: usage --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["0", "-1", "1.5", "ten", "1048577", "1g"])
def test_bad_size_is_usage(volctl, host, size):
    fails(volctl("create", "--size", size, "--json"), 2)
    assert host.calls == []
    assert ok(volctl("list", "--json")).json() == []


def test_missing_size_is_usage(volctl):
    fails(volctl("create", "--name", "v1"), 2)


@pytest.mark.parametrize("name", ["-lead", ".hidden", "has space", "a/b", "x" * 64, "ünï", ""])
def test_bad_name_is_usage(volctl, host, name):
    r = fails(volctl("create", "--size", "1", "--name", name), 2)
    assert "name" in r.stderr
    assert host.calls == []
    assert ok(volctl("list", "--json")).json() == []


@pytest.mark.parametrize("bad", ["not-a-uuid", "6f1c0e6a0b6e4c439a432f8f3c1d9e10", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e1",
                                 "../../etc/passwd"])
def test_bad_uuid_is_usage(volctl, host, bad):
    fails(volctl("create", "--size", "1", "--id", bad), 2)
    assert host.calls == []
    create(volctl)
    ok(volctl("reserve", "v1"))
    r = fails(volctl("attach", "v1", "--instance", bad), 2)
    assert "instance UUID" in r.stderr
    assert show(volctl)["status"] == "attaching"


def test_upper_case_uuid_is_taken_in_canonical_form(volctl, host):
    doc = ok(volctl("create", "--size", "1", "--id", UNKNOWN_UUID.upper(), "--json")).json()
    assert doc["id"] == UNKNOWN_UUID and doc["name"] == UNKNOWN_UUID
    assert host.commands("lvcreate")[0][2] == f"volume-{UNKNOWN_UUID}"


@pytest.mark.parametrize("initiator", ["client1", "iqn.1994-05.com", "iqn.94-05.com.redhat:c1", "iqn.1994-13.com.redhat:c1",
                                       "iqn.1994-05.com.red_hat:c1", "eui.123", "naa.123456789012345g", "iqn.1994-05.com.redhat:c 1"])
def test_bad_initiator_is_usage(volctl, host, initiator):
    create(volctl)
    host.calls.clear()
    r = fails(volctl("connect", "v1", "--initiator", initiator), 2)
    assert "initiator" in r.stderr
    fails(volctl("disconnect", "v1", "--initiator", initiator), 2)
    assert host.calls == []
    assert show(volctl)["provider_location"] is None


@pytest.mark.parametrize("args", [
    ["create", "--size", "1", "--bogus"],
    ["show", "v1", "--bogus"],
    ["--bogus", "list"],
    ["connect", "v1", "--initiator", INITIATOR_1, "--multipath=yes"],
    ["attach", "v1", "--instance", INSTANCE_1, "--mode", "rx"],
    ["no-such-command"],
])
def test_unknown_option_or_command_is_usage(volctl, args):
    create(volctl)
    fails(volctl(*args), 2)


def test_connector_that_is_not_json_is_usage(volctl, host, tmp_path):
    create(volctl)
    host.calls.clear()
    r = fails(volctl("connect", "v1", "--connector", "-", input="initiator=iqn.1994-05.com.redhat:client1"), 2)
    assert "not JSON" in r.stderr
    path = tmp_path / "c.json"
    path.write_text("{not json")
    fails(volctl("connect", "v1", "--connector", str(path)), 2)
    fails(volctl("connect", "v1", "--connector", "-", input="[1, 2]"), 2)
    fails(volctl("connect", "v1", "--connector", str(tmp_path / "missing.json")), 2)
    assert host.calls == []


def test_connector_without_initiator_is_usage(volctl, host):
    create(volctl)
    host.calls.clear()
    r = fails(volctl("connect", "v1", "--connector", "-", input=json.dumps({"host": "compute1", "ip": "192.0.2.1"})), 2)
    assert "initiator" in r.stderr
    r = fails(volctl("disconnect", "v1", "--connector", "-", input=json.dumps({"host": "compute1"})), 2)
    r = fails(volctl("connect", "v1", "--connector", "-", input=json.dumps({"initiator": "bogus"})), 2)
    assert host.calls == []


@pytest.mark.parametrize("command", ["connect", "disconnect"])
def test_both_or_neither_of_initiator_and_connector_is_usage(volctl, host, tmp_path, command):
    create(volctl)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"initiator": INITIATOR_1}))
    host.calls.clear()
    r = fails(volctl(command, "v1", "--initiator", INITIATOR_1, "--connector", str(path)), 2)
    assert "--initiator" in r.stderr and "--connector" in r.stderr
    fails(volctl(command, "v1"), 2)
    assert host.calls == []


def test_detach_with_several_attachments_needs_a_choice(volctl, host):
    in_use(volctl, "shared", "--multiattach")
    ok(volctl("reserve", "shared"))
    ok(volctl("connect", "shared", "--initiator", INITIATOR_2))
    ok(volctl("attach", "shared", "--instance", INSTANCE_2, "--initiator", INITIATOR_2))
    ids = [a["id"] for a in show(volctl, "shared")["attachments"]]
    host.calls.clear()
    r = fails(volctl("detach", "shared"), 2)
    for attachment_id in ids:
        assert attachment_id in r.stderr
    assert "--attachment" in r.stderr and "--instance" in r.stderr
    assert host.calls == []
    assert show(volctl, "shared")["status"] == "in-use"


def test_extend_to_a_smaller_or_equal_size_is_usage(volctl, host):
    ok(volctl("create", "--size", "5", "--name", "v1"))
    host.calls.clear()
    r = fails(volctl("extend", "v1", "--size", "4"), 2)
    assert "larger" in r.stderr
    fails(volctl("extend", "v1", "--size", "5"), 2)
    fails(volctl("extend", "v1", "--size", "0"), 2)
    assert host.calls == []
    assert show(volctl)["size"] == 5 and show(volctl)["status"] == "available"


@pytest.mark.parametrize("args", [["--status", "bogus"], ["--status", "available", "--attach-status", "bogus"]])
def test_reset_state_to_an_unknown_status_is_usage(volctl, args):
    create(volctl)
    fails(volctl("reset-state", "v1", *args), 2)
    assert show(volctl)["status"] == "available"


def test_list_unknown_status_is_usage(volctl):
    fails(volctl("list", "--status", "bogus"), 2)


def test_attach_bad_mountpoint_is_usage(volctl):
    create(volctl)
    ok(volctl("reserve", "v1"))
    fails(volctl("attach", "v1", "--instance", INSTANCE_1, "--mountpoint", ""), 2)
    assert show(volctl)["attachments"] == []


# -- 3: not found ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["show", "nope"], ["show", UNKNOWN_UUID], ["reserve", "nope"], ["unreserve", "nope"], ["export", "nope"],
    ["connect", "nope", "--initiator", INITIATOR_1], ["attach", "nope", "--instance", INSTANCE_1], ["detach", "nope"],
    ["disconnect", "nope", "--initiator", INITIATOR_1], ["unexport", "nope"], ["delete", "nope"],
    ["extend", "nope", "--size", "2"], ["history", "nope"], ["reset-state", "nope", "--status", "available"],
])
def test_no_such_volume(volctl, host, args):
    r = fails(volctl(*args), 3)
    assert "nope" in r.stderr or UNKNOWN_UUID in r.stderr
    assert host.calls == []


def test_no_such_attachment(volctl):
    in_use(volctl)
    r = fails(volctl("detach", "v1", "--attachment", UNKNOWN_UUID), 3)
    assert UNKNOWN_UUID in r.stderr
    r = fails(volctl("detach", "v1", "--instance", INSTANCE_2), 3)
    assert INSTANCE_2 in r.stderr
    assert show(volctl)["status"] == "in-use"


# -- 4: already exists ------------------------------------------------------------------------


def test_name_taken(volctl, host):
    first = create(volctl)
    host.calls.clear()
    r = fails(volctl("create", "--size", "2", "--name", "v1"), 4)
    assert "v1" in r.stderr and "name" in r.stderr
    assert host.calls == []
    assert [v["id"] for v in ok(volctl("list", "--json")).json()] == [first["id"]]


def test_id_taken(volctl, host):
    ok(volctl("create", "--size", "1", "--id", UNKNOWN_UUID))
    host.calls.clear()
    r = fails(volctl("create", "--size", "1", "--id", UNKNOWN_UUID, "--name", "other"), 4)
    assert UNKNOWN_UUID in r.stderr
    assert host.calls == []
    assert len(ok(volctl("list", "--json")).json()) == 1


# -- 5: state does not allow ------------------------------------------------------------------


def test_state_errors_name_expected_and_current(volctl):
    in_use(volctl)
    cases = {
        ("reserve", "v1"): ("'available'", "'in-use'"),
        ("unreserve", "v1"): ("'attaching'", "'in-use'"),
        ("unexport", "v1"): ("'available'", "'in-use'"),
        ("delete", "v1"): ("'available'", "'in-use'"),
        ("attach", "v1", "--instance", INSTANCE_2): ("'attaching'", "'in-use'"),
        ("unmanage", "v1"): ("'available'", "'in-use'"),
    }
    for args, (expected, current) in cases.items():
        r = fails(volctl(*args), 5)
        assert expected in r.stderr and current in r.stderr, (args, r.stderr)
    assert show(volctl)["status"] == "in-use"


def test_attach_without_reserve_is_refused(volctl):
    create(volctl)
    r = fails(volctl("attach", "v1", "--instance", INSTANCE_1), 5)
    assert "'attaching'" in r.stderr and "'available'" in r.stderr
    assert show(volctl)["attachments"] == []


def test_detach_of_an_available_volume_is_refused(volctl):
    create(volctl)
    r = fails(volctl("detach", "v1"), 5)
    assert "'in-use'" in r.stderr and "'available'" in r.stderr


@pytest.mark.parametrize("status", ["maintenance", "creating", "deleting", "error", "error_deleting", "error_extending"])
def test_export_and_connect_refused_in_states_without_a_usable_lv(volctl, host, status):
    create(volctl)
    ok(volctl("reset-state", "v1", "--status", status))
    host.calls.clear()
    r = fails(volctl("export", "v1"), 5)
    assert f"'{status}'" in r.stderr
    fails(volctl("connect", "v1", "--initiator", INITIATOR_1), 5)
    assert host.calls == []


def test_disconnect_refused_in_maintenance(volctl):
    create(volctl)
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    ok(volctl("reset-state", "v1", "--status", "maintenance"))
    r = fails(volctl("disconnect", "v1", "--initiator", INITIATOR_1), 5)
    assert "'maintenance'" in r.stderr


# -- 6: external command failed ---------------------------------------------------------------


def test_command_failure_names_command_exit_code_and_stderr(volctl, host):
    host.fail(["lvcreate"], exit_code=5, stderr='  Volume group "cinder-volumes" has insufficient free space\n')
    r = fails(volctl("create", "--size", "1", "--name", "v1", "--json"), 6)
    assert "lvcreate -n volume-" in r.stderr
    assert "exit code 5" in r.stderr
    assert "insufficient free space" in r.stderr


def test_command_failure_masks_the_chap_password(volctl, host):
    create(volctl)
    ok(volctl("export", "v1"))
    password = ok(volctl("show", "v1", "--show-secrets", "--json")).json()["provider_auth"].split()[2]

    def echo_password(argv):
        if argv[:2] == ["cinder-rtstool", "add-initiator"]:
            host.fail(["cinder-rtstool", "add-initiator"], exit_code=1,
                      stderr=f"RTSLibError: cannot set chap_password {argv[4]} for {argv[3]}\n", times=1)

    host.before_call = echo_password
    r = fails(volctl("connect", "v1", "--initiator", INITIATOR_1), 6)
    assert "add-initiator" in r.stderr and "exit code 1" in r.stderr and "RTSLibError" in r.stderr
    assert password not in r.stderr
    assert "***" in r.stderr
    history = ok(volctl("history", "v1", "--json")).stdout
    assert password not in history
    assert password not in ok(volctl("history", "v1")).stdout


def test_verbose_does_not_leak_the_password(tmp_path):
    """Real volctl processes (in-process, -v's log never reaches the captured stderr): the debug
    log is there, naming every cinder-rtstool call, and the password is in none of it, even when
    the failing tool echoes its whole argv on stderr."""
    from fakebin import FakeBin

    fb = FakeBin(tmp_path / "host")
    fb.ok("create", "--size", "1", "--name", "v1")
    r = fb.ok("-v", "connect", "v1", "--initiator", INITIATOR_1, "--json")
    password = r.json()["data"]["auth_password"]
    for call in ("create", "add-initiator", "save"):
        assert f"run: cinder-rtstool {call} " in r.stderr or f"run: cinder-rtstool {call}\n" in r.stderr, r.stderr
    assert f"{r.json()['data']['auth_username']} *** " in r.stderr  # the argv is logged, masked
    assert password not in r.stderr
    failed = fb.run("-v", "connect", "v1", "--initiator", INITIATOR_2,
                    env={"FAKEHOST_FAIL": "cinder-rtstool add-initiator"})
    assert failed.exit_code == 6 and "run: cinder-rtstool add-initiator " in failed.stderr, str(failed)
    assert "simulated failure: cinder-rtstool add-initiator" in failed.stderr
    assert password not in failed.stderr


# -- 7: environment -------------------------------------------------------------------------


def test_missing_rtstool(volctl, host):
    create(volctl)
    host.missing.add("cinder-rtstool")
    r = fails(volctl("export", "v1"), 7)
    assert "cinder-rtstool" in r.stderr and "not found" in r.stderr
    fails(volctl("connect", "v1", "--initiator", INITIATOR_1), 7)
    doc = show(volctl)
    assert doc["status"] == "available" and doc["provider_location"] is None
    assert host.targets == {}


def test_missing_lvcreate(volctl, host):
    host.missing.add("lvcreate")
    r = fails(volctl("create", "--size", "1", "--name", "v1"), 7)
    assert "lvcreate" in r.stderr
    # the row is not half-written: it is in Cinder's named error state, and history says why
    doc = show(volctl)
    assert doc["status"] == "error"
    events = ok(volctl("history", "v1", "--json")).json()
    assert events[-1]["to_status"] == "error" and "lvcreate" in events[-1]["detail"]
    assert host.lvs == {}


def test_unreadable_named_config_file(volctl, db_path, tmp_path):
    from click.testing import CliRunner

    from volctl.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(db_path), "--config", str(tmp_path / "missing.toml"), "list"])
    assert result.exit_code == 2
    assert "missing.toml" in result.stderr


def test_corrupt_inventory_is_environment(volctl, db_path):
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"this is not an SQLite database, not even close" * 100)
    r = fails(volctl("list", "--json"), 7)
    assert str(db_path) in r.stderr
    fails(volctl("create", "--size", "1"), 7)


# -- 1: internal error ----------------------------------------------------------------------


def test_unexpected_error_is_one_line_and_verbose_adds_the_traceback(volctl, monkeypatch):
    create(volctl)
    from volctl.service import VolumeService

    def broken(self, ref):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(VolumeService, "show", broken)
    r = volctl("show", "v1")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["Error: internal error: RuntimeError: kaboom"]
    r = volctl("-v", "show", "v1")
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "kaboom" in r.stderr


# -- the compare-and-swap across processes ----------------------------------------------------


def test_concurrent_reserves_in_separate_processes_exactly_one_wins(volctl, db_path, tmp_path):
    import os
    import subprocess
    import sys

    create(volctl)
    config = tmp_path / "volctl.toml"
    config.write_text("")
    env = {**os.environ, "VOLCTL_CONFIG": str(config), "VOLCTL_DB": str(db_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "volctl", "reserve", "v1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 5, 5, 5, 5, 5], results
    assert show(volctl)["status"] == "attaching"
    reserves = [e for e in ok(volctl("history", "v1", "--json")).json() if e["action"] == "reserve"]
    assert len(reserves) == 1
