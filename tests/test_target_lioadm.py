"""LIO through cinder-rtstool: exact command lines, secrets handed over for masking, exact IQN
matching, configfs ACL listing, saveconfig.json parsing, and the host-wide LIO lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from volctl.errors import CommandFailed, EnvironmentProblem
from volctl.iscsi import Chap
from volctl.targets.lioadm import LioAdm as LioTarget
from volctl.targets.saved import SavedTarget
from volctl.locks import FileLock
from volctl.runner import CommandResult, Runner

PREFIX = "iqn.2010-10.org.openstack:"
VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
IQN = f"{PREFIX}volume-{VOL}"
DEV = f"/dev/cinder-volumes/volume-{VOL}"
CHAP = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
INITIATOR = "iqn.1994-05.com.redhat:client1"


class Recorder(Runner):
    """Records argv, secrets and whether the LIO lock was held at the moment of each call."""

    def __init__(self, lock_path: Path, stdout: dict[str, str] | None = None, fail: set[str] | None = None):
        super().__init__()
        self.lock_path = lock_path
        self.stdout = stdout or {}
        self.fail = fail or set()
        self.calls: list[tuple[list[str], list[str]]] = []
        self.locked_during_call: list[bool] = []

    def run(self, argv, *, secrets=(), ok_codes=(0,), timeout=None, on_stderr=None):
        argv = list(argv)
        self.calls.append((argv, list(secrets)))
        self.locked_during_call.append(_is_locked(self.lock_path))
        sub = argv[1]
        if sub in self.fail:
            raise CommandFailed(argv, 1, "cinder.cmd.rtstool.RtstoolError: Could not find target\n")
        return CommandResult(tuple(argv), 0, self.stdout.get(sub, ""), "", 0.0)


def _is_locked(path: Path) -> bool:
    """True when another holder has the flock: a fresh FileLock with wait=0 cannot take it."""
    try:
        with FileLock(path, wait=0).held():
            return False
    except EnvironmentProblem:
        return True


@pytest.fixture
def lock_path(tmp_path):
    return tmp_path / "lio.lock"


def make(tmp_path, lock_path, **kw):
    recorder = Recorder(lock_path, **kw)
    target = LioTarget(recorder, FileLock(lock_path, wait=5), configfs=tmp_path / "configfs", save_file=tmp_path / "saveconfig.json")
    return target, recorder


def test_create_exact_argv_and_secret(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": IQN + "\n"})
    target.create(DEV, IQN, CHAP, iser=False, ips=["127.0.0.1"], port=3260)
    assert rec.calls == [
        (["cinder-rtstool", "create", DEV, IQN, CHAP.username, CHAP.password, "False", "-p3260", "-a127.0.0.1"], [CHAP.password]),
        (["cinder-rtstool", "get-targets"], []),
    ]


def test_create_that_made_no_target_fails(tmp_path, lock_path):
    """rtstool create exits 0 and does nothing when a storage object of that name exists."""
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": IQN + "0\n"})
    with pytest.raises(CommandFailed, match="is not listed after create"):
        target.create(DEV, IQN, CHAP, iser=False, ips=["127.0.0.1"], port=3260)


def test_create_two_portals_and_iser(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": IQN + "\n"})
    target.create(DEV, IQN, CHAP, iser=True, ips=("10.0.0.5", "fd00::5"), port=3261)
    argv, secrets = rec.calls[0]
    assert argv == ["cinder-rtstool", "create", DEV, IQN, CHAP.username, CHAP.password, "True", "-p3261", "-a10.0.0.5,fd00::5"]
    assert secrets == [CHAP.password]


def test_add_initiator_exact_argv_and_secret(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path)
    target.add_initiator(IQN, CHAP, INITIATOR)
    assert rec.calls == [(["cinder-rtstool", "add-initiator", IQN, CHAP.username, CHAP.password, INITIATOR], [CHAP.password])]


def test_delete_initiator_exact_argv(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path)
    assert target.delete_initiator(IQN, INITIATOR) is True
    assert rec.calls == [(["cinder-rtstool", "delete-initiator", IQN, INITIATOR], [])]


def test_delete_initiator_already_gone(tmp_path, lock_path):
    out = f"delete_initiator: {INITIATOR} ACL not found. Continuing.\n"
    target, _ = make(tmp_path, lock_path, stdout={"delete-initiator": out})
    assert target.delete_initiator(IQN, INITIATOR) is False


def test_delete_save_and_get_targets_exact_argv(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path)
    target.delete(IQN)
    target.save()
    target.targets()
    assert [c[0] for c in rec.calls] == [
        ["cinder-rtstool", "delete", IQN],
        ["cinder-rtstool", "save", str(tmp_path / "saveconfig.json")],
        ["cinder-rtstool", "get-targets"],
    ]
    assert all(secrets == [] for _, secrets in rec.calls)


def test_targets_are_the_lines_of_get_targets(tmp_path, lock_path):
    out = f"{PREFIX}volume-10\n  {PREFIX}volume-100  \n\nnaa.5001405e8bfa2d4c\n"
    target, _ = make(tmp_path, lock_path, stdout={"get-targets": out})
    assert target.targets() == [f"{PREFIX}volume-10", f"{PREFIX}volume-100", "naa.5001405e8bfa2d4c"]


@pytest.mark.parametrize("name, present", [("volume-1", False), ("volume-10", True), ("volume-100", True), ("volume-1000", False), ("olume-10", False)])
def test_exists_matches_whole_lines_only(tmp_path, lock_path, name, present):
    out = f"{PREFIX}volume-10\n{PREFIX}volume-100\n"
    target, _ = make(tmp_path, lock_path, stdout={"get-targets": out})
    assert target.exists(f"{PREFIX}{name}") is present


def test_exists_on_empty_lio(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    assert target.exists(IQN) is False


def test_is_live_reads_configfs_and_starts_no_program(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": f"{IQN}\n"})
    (tmp_path / "configfs" / f"{PREFIX}volume-10" / "tpgt_1").mkdir(parents=True)
    assert target.is_live(f"{PREFIX}volume-10") is True
    assert target.is_live(f"{PREFIX}volume-1") is False  # a directory name, never a substring
    assert target.is_live(IQN) is False  # configfs is the kernel's view; get-targets is not asked
    assert rec.calls == []


def test_is_live_without_the_iscsi_fabric_in_configfs_asks_get_targets(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": f"{IQN}\n"})  # no configfs directory
    assert target.is_live(IQN) is True
    assert target.is_live(f"{PREFIX}volume-10") is False
    assert [argv for argv, _ in rec.calls] == [["cinder-rtstool", "get-targets"]] * 2


def test_rtstool_failure_propagates_and_releases_the_lock(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, fail={"add-initiator"})
    with pytest.raises(CommandFailed):
        target.add_initiator(IQN, CHAP, INITIATOR)
    assert rec.locked_during_call == [True]
    assert not _is_locked(lock_path)


def test_every_rtstool_call_holds_the_lio_lock(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path, stdout={"get-targets": f"{IQN}\n"})
    target.create(DEV, IQN, CHAP, iser=False, ips=["127.0.0.1"], port=3260)
    target.add_initiator(IQN, CHAP, INITIATOR)
    target.delete_initiator(IQN, INITIATOR)
    target.exists(IQN)
    target.targets()
    target.delete(IQN)
    target.save()
    assert len(rec.locked_during_call) == 8  # create checks get-targets after itself
    assert all(rec.locked_during_call)
    assert not _is_locked(lock_path)  # and it is let go after each call


def test_lock_wait_is_respected(tmp_path, lock_path):
    """While someone else holds the LIO lock, no rtstool command starts."""
    target, rec = make(tmp_path, lock_path)
    target.lock = FileLock(lock_path, wait=0.05)
    with FileLock(lock_path, wait=0).held():
        with pytest.raises(EnvironmentProblem) as info:
            target.save()
    assert str(lock_path) in str(info.value)
    assert rec.calls == []


# -- configfs ACLs ----------------------------------------------------------------------------


def test_acls_from_configfs(tmp_path, lock_path):
    target, rec = make(tmp_path, lock_path)
    acls = tmp_path / "configfs" / IQN / "tpgt_1" / "acls"
    for initiator in ("iqn.1994-05.com.redhat:client2", INITIATOR):
        (acls / initiator / "mapped_lun0").mkdir(parents=True)
    (tmp_path / "configfs" / IQN / "tpgt_1" / "lun" / "lun_0").mkdir(parents=True)
    (tmp_path / "configfs" / IQN / "fabric_statistics").mkdir()
    assert target.hosts(IQN) == [INITIATOR, "iqn.1994-05.com.redhat:client2"]
    assert rec.calls == []  # read from configfs, not through rtstool


def test_acls_of_a_missing_target_or_tpg_without_acls(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    (tmp_path / "configfs").mkdir()
    assert target.hosts(IQN) == []
    (tmp_path / "configfs" / IQN / "tpgt_1").mkdir(parents=True)
    assert target.hosts(IQN) == []
    (tmp_path / "configfs" / IQN / "tpgt_1" / "acls").mkdir()
    assert target.hosts(IQN) == []


def test_acls_do_not_mix_targets(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    (tmp_path / "configfs" / f"{PREFIX}volume-10" / "tpgt_1" / "acls" / INITIATOR).mkdir(parents=True)
    assert target.hosts(f"{PREFIX}volume-1") == []
    assert target.hosts(f"{PREFIX}volume-10") == [INITIATOR]


# -- saveconfig.json --------------------------------------------------------------------------


def saveconfig(targets):
    """A file shaped like rtslib-fb's RTSRoot.save_to_file output."""
    return {
        "fabric_modules": [],
        "storage_objects": [
            {
                "alua_tpgs": [{"alua_access_state": 0, "name": "default_tg_pt_gp", "tg_pt_gp_id": 0}],
                "attributes": {"block_size": 512, "emulate_tpu": 0, "queue_depth": 128},
                "dev": f"/dev/cinder-volumes/{iqn.split(':')[1]}",
                "name": iqn,
                "plugin": "block",
                "readonly": False,
                "write_back": False,
                "wwn": "2a5e9c0b-5f8d-4b64-9f0e-3c2d1a0b9e8f",
            }
            for iqn, _ in targets
        ],
        "targets": [
            {
                "fabric": "iscsi",
                "parameters": {"cmd_completion_affinity": "-1"},
                "tpgs": [
                    {
                        "attributes": {"authentication": 1, "generate_node_acls": 0, "demo_mode_write_protect": 1},
                        "enable": True,
                        "luns": [{"alias": "843b6e4a2f", "alua_tg_pt_gp_name": "default_tg_pt_gp", "index": 0,
                                  "storage_object": f"/backstores/block/{iqn}"}],
                        "node_acls": [
                            {
                                "attributes": {"dataout_timeout": 3},
                                "auth": {"mutual_password": "", "mutual_userid": "", "password": CHAP.password, "userid": CHAP.username},
                                "mapped_luns": [{"alias": "a1b2c3d4e5", "index": 0, "tpg_lun": 0, "write_protect": False}],
                                "node_wwn": initiator,
                            }
                            for initiator in initiators
                        ],
                        "parameters": {"AuthMethod": "CHAP,None", "HeaderDigest": "CRC32C,None"},
                        "portals": [{"ip_address": "127.0.0.1", "iser": False, "offload": False, "port": 3260}],
                        "tag": 1,
                    }
                ],
                "wwn": iqn,
            }
            for iqn, initiators in targets
        ],
    }


def test_saved_targets_parses_rtslib_saveconfig(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    other = f"{PREFIX}volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
    document = saveconfig([(IQN, [INITIATOR, "iqn.1993-08.org.debian:01:abcdef123456"]), (other, [])])
    (tmp_path / "saveconfig.json").write_text(json.dumps(document, indent=2, sort_keys=True))
    assert target.saved_targets() == [
        SavedTarget(IQN, (INITIATOR, "iqn.1993-08.org.debian:01:abcdef123456")),
        SavedTarget(other, ()),
    ]


def test_saved_targets_without_a_file_is_none(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    assert target.saved_targets() is None


def test_saved_targets_of_an_empty_lio(tmp_path, lock_path):
    target, _ = make(tmp_path, lock_path)
    (tmp_path / "saveconfig.json").write_text(json.dumps({"fabric_modules": [], "storage_objects": [], "targets": []}))
    assert target.saved_targets() == []


def test_save_drops_the_exclusive_key_debians_rtslib_cannot_restore(tmp_path, lock_path):
    """PyPI's rtslib 2.2.x writes "exclusive": true; Debian 12's 2.1.75 (rtslib-fb-targetctl.service)
    then skips the storage object, and the target comes back without its LUN (seen in the guest)."""
    save_file = tmp_path / "saveconfig.json"
    written = {"fabric_modules": [], "targets": [{"wwn": IQN, "tpgs": []}], "storage_objects": [
        {"name": IQN, "plugin": "block", "dev": DEV, "exclusive": True, "attributes": {"block_size": 512}},
        {"name": "other", "plugin": "block", "dev": "/dev/sdz", "exclusive": False},
    ]}

    class Saver(Recorder):
        def run(self, argv, **kw):
            if argv[1] == "save":
                Path(argv[2]).write_text(json.dumps(written))
            return super().run(argv, **kw)

    target = LioTarget(Saver(lock_path), FileLock(lock_path, wait=5), configfs=tmp_path / "configfs", save_file=save_file)
    target.save()
    document = json.loads(save_file.read_text())
    assert [so.get("exclusive", "absent") for so in document["storage_objects"]] == ["absent", False]
    assert document["storage_objects"][0]["attributes"] == {"block_size": 512} and document["targets"] == written["targets"]
    assert save_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- the service's flows as cinder-rtstool command lines (the behaviour suites assert them at the
# -- helper seam, once per helper: tests/test_service_lifecycle.py and the others) ----------------


def attached_on_the_fake_host(service):
    from conftest import INSTANCE_1

    volume = service.create(size=1, name="v1").volume
    service.reserve("v1")
    service.connect("v1", {"initiator": INITIATOR})
    service.attach("v1", instance=INSTANCE_1, host="compute1", mountpoint="/dev/vdb", initiator=INITIATOR)
    return volume


def test_detach_of_the_last_attachment_is_delete_then_save(service, host, save_file):
    iqn = PREFIX + attached_on_the_fake_host(service).lv_name
    host.calls.clear()
    service.detach("v1")
    assert host.calls == [["cinder-rtstool", "delete", iqn], ["cinder-rtstool", "save", str(save_file)]]


def test_disconnect_is_delete_initiator_then_save(service, host, save_file):
    iqn = PREFIX + service.create(size=1, name="v1").volume.lv_name
    service.connect("v1", {"initiator": INITIATOR})
    host.calls.clear()
    service.disconnect("v1", {"initiator": INITIATOR})
    assert host.calls == [["cinder-rtstool", "delete-initiator", iqn, INITIATOR], ["cinder-rtstool", "save", str(save_file)]]


def test_unexport_is_get_targets_delete_save(service, host, save_file):
    iqn = PREFIX + service.create(size=1, name="v1").volume.lv_name
    service.export("v1")
    host.calls.clear()
    service.unexport("v1")
    assert host.calls == [["cinder-rtstool", "get-targets"], ["cinder-rtstool", "delete", iqn],
                          ["cinder-rtstool", "save", str(save_file)]]


def test_delete_asks_get_targets_before_the_lvm_steps(service, host):
    service.create(size=1, name="v1")
    host.calls.clear()
    service.delete("v1")
    assert [c[0] for c in host.calls] == ["cinder-rtstool", "lvs", "dd", "lvremove"]
    assert host.calls[0] == ["cinder-rtstool", "get-targets"]


def test_a_failed_rtstool_call_is_filed_in_history_with_its_exit_code(service, host):
    """What the behaviour suites check through the world (failure_filed): the failed program, its
    exit code and its stderr, in the volume's history; and the error names the command."""
    attached_on_the_fake_host(service)
    host.fail(["cinder-rtstool", "delete"], exit_code=1, stderr="delete went wrong")
    with pytest.raises(CommandFailed) as e:
        service.detach("v1")
    assert "cinder-rtstool delete" in str(e.value) and "exit code 1" in str(e.value) and "delete went wrong" in str(e.value)
    failed = [e for e in service.history("v1") if e.kind == "command" and e.argv[:2] == ("cinder-rtstool", "delete")]
    assert [(f.exit_code, f.detail) for f in failed] == [(1, "delete went wrong")]


def test_export_again_without_the_iscsi_fabric_in_configfs_asks_get_targets_once(make_service, host, tmp_path):
    """No iscsi directory in configfs (target module not loaded): whether the target is live comes
    from one get-targets, then Cinder's own check after create."""
    service = make_service(configfs=tmp_path / "no-iscsi-fabric")
    iqn = PREFIX + service.create(size=1, name="v1").volume.lv_name
    service.export("v1")
    del host.targets[iqn]  # gone behind volctl's back; the inventory still says exported
    host.calls.clear()
    service.export("v1")
    assert [call[:2] for call in host.calls] == [
        ["cinder-rtstool", "get-targets"], ["cinder-rtstool", "create"], ["cinder-rtstool", "get-targets"], ["cinder-rtstool", "save"],
    ]
    assert iqn in host.targets


@pytest.mark.parametrize("command", ["export", "connect"])
def test_a_portal_in_use_leaves_a_half_made_target_that_the_service_removes(volctl, host, configfs, command):
    """rtstool makes the storage object, target, TPG and LUN before binding the portals: a port in
    use leaves all of them behind with exit 1 (and a second create would return at once, finding
    the storage object). The call that ran create deletes the target again and records no export;
    the same command works once the port is free. (Every helper's half-made target:
    tests/test_cli_failures.py.)"""
    args = ("export", "v1") if command == "export" else ("connect", "v1", "--initiator", INITIATOR)
    assert volctl("create", "--size", "1", "--name", "v1").exit_code == 0
    host.busy_portals.add("127.0.0.1:3260")
    r = volctl(*args)
    assert r.exit_code == 6, (r.exit_code, r.stdout, r.stderr)
    assert "cinder-rtstool create" in r.stderr and "exit code 1" in r.stderr and "Could not create NetworkPortal" in r.stderr
    creates = [i for i, c in enumerate(host.calls) if c[:2] == ["cinder-rtstool", "create"]]
    deletes = [i for i, c in enumerate(host.calls) if c[:2] == ["cinder-rtstool", "delete"]]
    assert creates and deletes and deletes[0] > creates[0], "the half-made target was never deleted"
    assert host.targets == {} and list(configfs.iterdir()) == []
    doc = volctl("show", "v1", "--json").json()
    assert (doc["status"], doc["provider_location"], doc["connections"]) == ("available", None, [])
    host.busy_portals.clear()
    assert volctl(*args).exit_code == 0
    assert set(host.targets) == {PREFIX + doc["lv_path"].split("/")[-1]}
