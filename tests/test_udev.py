"""lvm_udev = "auto": the decision for each environment volctl meets, on made-up /run and /proc trees.

Each layout is what one kind of host or container really shows: /run/udev/control is a socket
udevd creates, /proc/PID/comm names the process, /proc/PID/ns/{ipc,pid} are links whose targets
name the namespace ("ipc:[4026531839]")."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from volctl.config import Settings, load_settings
from volctl.errors import EnvironmentProblem, UsageError
from volctl.lvm import host_for
from volctl.udev import UdevMode, decide

HOST_IPC, HOST_PID = "ipc:[4026531839]", "pid:[4026531836]"
CONTAINER_IPC, CONTAINER_PID = "ipc:[4026532301]", "pid:[4026532302]"


class Layout:
    def __init__(self, root: Path):
        self.run = root / "run"
        self.proc = root / "proc"
        self.run.mkdir()
        self.proc.mkdir()

    def control_socket(self) -> None:
        (self.run / "udev").mkdir()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.bind(str(self.run / "udev" / "control"))  # udevd's control socket, as a real socket file
        sock.close()

    def process(self, pid: int | str, comm: str, ipc: str, pidns: str) -> None:
        d = self.proc / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        (d / "ns" / "ipc").symlink_to(ipc)
        (d / "ns" / "pid").symlink_to(pidns)

    def me(self, ipc: str, pidns: str) -> None:
        self.process("self", "volctl", ipc, pidns)

    def decide(self, setting: str = "auto", environ: dict | None = None) -> UdevMode:
        return decide(setting, run=self.run, proc=self.proc, environ=environ or {})


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path)


def test_host_with_udevd_is_on(layout):
    layout.control_socket()
    layout.process(1, "systemd", HOST_IPC, HOST_PID)
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    mode = layout.decide()
    assert mode.sync is True
    assert "pid 312" in mode.reason


def test_host_without_udevd_is_off(layout):
    """A minimal host or a plain container: nothing made /run/udev/control."""
    layout.process(1, "bash", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    mode = layout.decide()
    assert mode.sync is False
    assert f"no {layout.run}/udev/control" in mode.reason


def test_udevd_running_without_its_control_socket_is_off(layout):
    """A udevd in volctl's own namespaces, but no /run/udev/control (a fresh /run, or udevd still
    starting): LVM's own test is that file, so LVM would not wait for udev, and neither does auto."""
    layout.process(1, "systemd", HOST_IPC, HOST_PID)
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    mode = layout.decide()
    assert mode.sync is False
    assert f"no {layout.run}/udev/control" in mode.reason


def test_a_dangling_control_link_counts_as_there(layout):
    """lexists, as LVM's access() of a socket bound in from elsewhere would find the name."""
    (layout.run / "udev").mkdir()
    (layout.run / "udev" / "control").symlink_to(layout.run / "elsewhere")
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    assert layout.decide().sync is True


def test_own_namespaces_unreadable_is_off_even_beside_an_unreadable_udevd(layout):
    """volctl cannot tell its own namespaces: off, whatever else /proc shows (an udevd whose
    namespaces are unreadable too must not count as 'the same')."""
    layout.control_socket()
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    (layout.proc / "312" / "ns" / "ipc").unlink()
    (layout.proc / "self").mkdir()  # no ns/ links
    mode = layout.decide()
    assert mode.sync is False and "volctl's namespaces are unknown" in mode.reason


def test_an_unreadable_proc_sees_no_udevd_and_is_off(layout, tmp_path):
    layout.control_socket()
    layout.me(HOST_IPC, HOST_PID)
    mode = decide("auto", run=layout.run, proc=tmp_path / "no-proc", environ={})
    assert mode.sync is False


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="lvm_udev must be one of auto, on, off"):
        decide("yes")


def test_stale_control_socket_without_udevd_is_off(layout):
    """udevd stopped (or the host's /run/udev bound into a container with its own PID namespace)."""
    layout.control_socket()
    layout.process(1, "sleep", CONTAINER_IPC, CONTAINER_PID)
    layout.me(CONTAINER_IPC, CONTAINER_PID)
    mode = layout.decide()
    assert mode.sync is False
    assert "no udevd is visible" in mode.reason


def test_container_sharing_host_pids_but_not_ipc_is_off(layout):
    """The hang case: udevd is visible and /run/udev is bound in, but its semaphores live in
    another IPC namespace, so LVM would wait for a cookie forever."""
    layout.control_socket()
    layout.process(1, "systemd", HOST_IPC, HOST_PID)
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(CONTAINER_IPC, HOST_PID)
    mode = layout.decide()
    assert mode.sync is False
    assert "another IPC or PID namespace" in mode.reason


def test_container_sharing_host_ipc_but_not_pids_is_off(layout):
    layout.control_socket()
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, CONTAINER_PID)
    assert layout.decide().sync is False


def test_container_with_host_ipc_and_pid_is_on(layout):
    """kolla's cinder-volume: privileged, ipc_mode host, pid host, /run bound in: udev works."""
    layout.control_socket()
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.process(4000, "cinder-volume", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    assert layout.decide().sync is True


def test_udevd_in_own_namespaces_among_others_is_on(layout):
    """A second udevd in some other container does not hide ours."""
    layout.control_socket()
    layout.process(90, "systemd-udevd", CONTAINER_IPC, CONTAINER_PID)
    layout.process(312, "udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    mode = layout.decide()
    assert mode.sync is True and "pid 312" in mode.reason


def test_process_that_vanishes_or_is_unreadable_is_skipped(layout):
    layout.control_socket()
    (layout.proc / "77").mkdir()  # exited between listdir and reading comm
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    (layout.proc / "312" / "ns" / "ipc").unlink()  # ns link not readable
    layout.me(HOST_IPC, HOST_PID)
    assert layout.decide().sync is False


def test_udev_worker_names_are_not_udevd(layout):
    layout.control_socket()
    layout.process(313, "(udev-worker)", HOST_IPC, HOST_PID)
    layout.process(314, "udevadm", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    assert layout.decide().sync is False


def test_dm_disable_udev_in_the_environment_is_off(layout):
    layout.control_socket()
    layout.process(312, "systemd-udevd", HOST_IPC, HOST_PID)
    layout.me(HOST_IPC, HOST_PID)
    mode = layout.decide(environ={"DM_DISABLE_UDEV": "1"})
    assert mode.sync is False and "DM_DISABLE_UDEV" in mode.reason


@pytest.mark.parametrize("setting, sync", [("on", True), ("off", False)])
def test_explicit_setting_wins_over_the_environment(layout, setting, sync):
    layout.me(HOST_IPC, HOST_PID)  # no udev at all: auto would say off
    mode = layout.decide(setting)
    assert mode.sync is sync and f'lvm_udev = "{setting}"' in mode.reason


def test_this_process_own_namespaces_are_read_from_the_real_proc():
    """The real /proc answers the same questions the made-up layouts do."""
    mode = decide("auto")
    assert mode.describe().startswith(f"lvm_udev: {mode.name} (auto: ")


# -- settings --------------------------------------------------------------------------------


def write(tmp_path, text: str) -> str:
    path = tmp_path / "volctl.toml"
    path.write_text(text)
    return str(path)


def test_defaults():
    assert (Settings().lvm_udev, Settings().lvm_conf_file) == ("auto", "")


def test_settings_are_read(tmp_path):
    settings = load_settings(write(tmp_path, 'lvm_udev = "off"\nlvm_conf_file = "/etc/cinder/lvm.conf"\n'))
    assert (settings.lvm_udev, settings.lvm_conf_file) == ("off", "/etc/cinder/lvm.conf")


@pytest.mark.parametrize("text, why", [
    ('lvm_udev = "no"', "lvm_udev: must be one of auto, on, off"),
    ('lvm_udev = false', "lvm_udev: must be a string"),
    ('lvm_conf_file = "etc/lvm.conf"', "must be an absolute path"),
    ('lvm_conf_file = "/etc/cinder/cinder-lvm.conf"', "named lvm.conf"),
])
def test_bad_settings_are_refused(tmp_path, text, why):
    with pytest.raises(UsageError, match=why):
        load_settings(write(tmp_path, text + "\n"))


def test_lvm_conf_file_becomes_lvm_system_dir(tmp_path):
    conf = tmp_path / "cinder" / "lvm.conf"
    conf.parent.mkdir()
    conf.write_text("devices { }\n")
    host = host_for("off", str(conf))
    assert host.env == {"DM_DISABLE_UDEV": "1", "LVM_SYSTEM_DIR": str(conf.parent)}
    assert host.describe()[1] == f"lvm_conf_file: LVM reads {conf} (LVM_SYSTEM_DIR)"
    assert host_for("on", str(conf)).env == {"LVM_SYSTEM_DIR": str(conf.parent)}


def test_missing_lvm_conf_file_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem, match="does not exist"):
        host_for("on", str(tmp_path / "lvm.conf"))


# -- doctor says which mode is in effect -----------------------------------------------------


@pytest.mark.parametrize("setting, line", [
    ("off", 'lvm_udev: off (lvm_udev = "off" in the config)'),
    ("on", 'lvm_udev: on (lvm_udev = "on" in the config)'),
])
def test_doctor_reports_the_mode_and_why(make_service, settings, setting, line):
    from dataclasses import replace

    from volctl.doctor import Doctor

    service = make_service(settings=replace(settings, lvm_udev=setting))
    service.inventory()  # doctor reads an existing inventory
    assert Doctor(service).examine().notes[0] == line


# -- the mode and lvm_conf_file reach every LVM command the service runs ------------------------------

LVM_PROGRAMS = {"lvcreate", "lvs", "vgs", "lvremove", "lvextend", "lvchange", "lvrename", "lvconvert"}


@pytest.mark.parametrize("lvm_type", ["default", "thin"])
@pytest.mark.parametrize("udev", ["off", "on"])
def test_every_lvm_command_of_a_whole_lifecycle_gets_the_udev_mode_and_lvm_conf_file(
        make_service, host, db_path, tmp_path, udev, lvm_type):
    """Every command of the CLI that runs LVM, its retries included, on the fake host that records
    each call's environment: each LVM program gets LVM_SYSTEM_DIR (lvm_conf_file's directory) and,
    with udev off, DM_DISABLE_UDEV=1; with udev on, no DM_DISABLE_UDEV."""
    from dataclasses import replace

    from click.testing import CliRunner

    from volctl.cli import App, cli

    conf = tmp_path / "cinder" / "lvm.conf"
    conf.parent.mkdir()
    conf.write_text("devices { }\n")
    settings = replace(Settings(), lvm_udev=udev, lvm_conf_file=str(conf), lvm_type=lvm_type)
    thick = lvm_type == "default"
    expected = {"LVM_SYSTEM_DIR": str(conf.parent), **({"DM_DISABLE_UDEV": "1"} if udev == "off" else {})}

    def run(*args: str, expect: int = 0) -> str:
        app = App(_service=make_service(settings=settings))
        result = CliRunner().invoke(cli, ["--db", str(db_path), *args], obj=app, catch_exceptions=False)
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result.stdout

    run("create", "--size", "1", "--name", "v1")
    run("reserve", "v1")
    run("connect", "v1", "--initiator", "iqn.1994-05.com.redhat:client1")
    run("attach", "v1", "--instance", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10")
    run("snapshot", "create", "v1", "--name", "s1", "--force")
    run("detach", "v1")
    run("create", "--snapshot", "s1", "--name", "n1", "--size", "2")
    run("create", "--source-volume", "v1", "--name", "c1")
    if thick:
        run("revert", "v1", "--snapshot", "s1")
    run("snapshot", "delete", "s1")
    run("extend", "v1", "--size", "2")
    host.add_lv(settings.volume_group, "legacy", 1)
    run("manageable", "--json")
    run("manage", "--source-name", "legacy", "--name", "m1")
    run("unmanage", "m1")
    run("export", "c1")
    c1 = host.lvs[(settings.volume_group, f"volume-{json.loads(run('show', 'c1', '--json'))['id']}")]
    c1["attr"] = c1["attr"][:4] + "-" + c1["attr"][5:]  # a reboot: its LV not active, its target gone
    host.targets.clear()
    host._mirror_configfs()
    run("restore")
    run("doctor", "--repair", "--stale-after", "0")
    host.fail(["lvremove"], times=1)  # the retry too
    for name in ("n1", "c1", "v1"):
        run("delete", name)
    run("doctor")

    ran = {call[0] for call in host.calls}
    assert {"lvcreate", "lvs", "lvremove", "lvextend", "lvchange", "lvrename"} <= ran
    assert ("lvconvert" in ran) is thick and "vgs" in ran  # thick: the admission's; thin: the new pool's too
    wrong = [(call, env) for call, env in zip(host.calls, host.envs) if call[0] in LVM_PROGRAMS and env != expected]
    assert not wrong, wrong
    lvremoves = [call for call in host.calls if call[0] == "lvremove"]
    assert any("ignore_suspended_devices" in " ".join(call) for call in lvremoves)  # the retry ran
