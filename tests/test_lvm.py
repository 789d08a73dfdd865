"""LVM wrapper: Cinder's exact command lines, and parsing of what lvm2 2.03 really prints."""

from __future__ import annotations

import os
import stat
from typing import Callable

import pytest

from volctl.errors import CommandFailed
from volctl.lvm import GIB, LVM_TIMEOUT, ZERO_TIMEOUT, LogicalVolume, Lvm, LvmHost, ThinPool, VolumeGroup
from volctl.runner import CommandResult, Runner
from volctl.udev import UdevMode

VG = "cinder-volumes"
VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
LV = f"volume-{VOL}"
LV_FIELDS = "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv"

# `lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv cinder-volumes`
# as lvm2 2.03.16 prints it (two-space indent, one row per line, every value a string).
LVS_ALL = """\
  {
      "report": [
          {
              "lv": [
                  {"vg_name":"cinder-volumes", "lv_name":"cinder-volumes-pool", "lv_size":"101997903872", "lv_attr":"twi-aotz--", "lv_path":"", "pool_lv":""},
                  {"vg_name":"cinder-volumes", "lv_name":"volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b", "lv_size":"2147483648", "lv_attr":"Vwi-aotz--", "lv_path":"/dev/cinder-volumes/volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b", "pool_lv":"cinder-volumes-pool"},
                  {"vg_name":"cinder-volumes", "lv_name":"volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "lv_size":"1073741824", "lv_attr":"-wi-ao----", "lv_path":"/dev/cinder-volumes/volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "pool_lv":""}
              ]
          }
      ]
  }
"""

# The same for one LV, with log/report_command_log=1, which adds a "log" section after the report.
LVS_ONE_WITH_LOG = """\
  {
      "report": [
          {
              "lv": [
                  {"vg_name":"cinder-volumes", "lv_name":"volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "lv_size":"1073741824", "lv_attr":"-wi-a-----", "lv_path":"/dev/cinder-volumes/volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "pool_lv":""}
              ]
          }
      ]
      ,
      "log": [
          {"log_seq_num":"1", "log_type":"status", "log_context":"processing", "log_object_type":"cmd", "log_object_name":"", "log_object_id":"", "log_object_group":"", "log_object_group_id":"", "log_message":"success", "log_errno":"0", "log_ret_code":"1"}
      ]
  }
"""

# `lvs -o <usage fields> <vg>` as lvm2 2.03.16 prints it: the percentages and the metadata size only
# where they apply (a pool; an active thin LV), the group's size and free space on every row.
LVS_USAGE = """\
  {
      "report": [
          {
              "lv": [
                  {"vg_name":"cinder-volumes", "lv_name":"cinder-volumes-pool", "lv_size":"101997903872", "lv_attr":"twi-aotz--", "data_percent":"12.50", "metadata_percent":"3.25", "lv_metadata_size":"104857600", "lv_health_status":"", "pool_lv":"", "vg_size":"107369988096", "vg_free":"5163188224"},
                  {"vg_name":"cinder-volumes", "lv_name":"volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b", "lv_size":"2147483648", "lv_attr":"Vwi-aotz--", "data_percent":"25.00", "metadata_percent":"", "lv_metadata_size":"", "lv_health_status":"", "pool_lv":"cinder-volumes-pool", "vg_size":"107369988096", "vg_free":"5163188224"},
                  {"vg_name":"cinder-volumes", "lv_name":"_snapshot-5f0c6a1e-2b7d-4c39-9d8e-0a1b2c3d4e5f", "lv_size":"2147483648", "lv_attr":"Vwi---tz-k", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_health_status":"", "pool_lv":"cinder-volumes-pool", "vg_size":"107369988096", "vg_free":"5163188224"},
                  {"vg_name":"cinder-volumes", "lv_name":"volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "lv_size":"1073741824", "lv_attr":"-wi-ao----", "data_percent":"", "metadata_percent":"", "lv_metadata_size":"", "lv_health_status":"", "pool_lv":"", "vg_size":"107369988096", "vg_free":"5163188224"}
              ]
          }
      ]
  }
"""

LVS_EMPTY = """\
  {
      "report": [
          {
              "lv": [
              ]
          }
      ]
  }
"""

VGS = """\
  {
      "report": [
          {
              "vg": [
                  {"vg_name":"cinder-volumes", "vg_size":"%d", "vg_free":"%d"}
              ]
          }
      ]
  }
"""

Respond = Callable[[list[str]], tuple[int, str, str]]


class RecordingRunner(Runner):
    """Answers from a script and records every call; behaves like Runner on exit codes."""

    def __init__(self, respond: Respond | None = None):
        super().__init__()
        self.respond = respond or (lambda argv: (0, "", ""))
        self.calls: list[dict] = []

    def run(self, argv, *, secrets=(), ok_codes=(0,), timeout=None, on_stderr=None, env=None):
        argv = list(argv)
        self.calls.append({"argv": argv, "ok_codes": tuple(ok_codes), "timeout": timeout, "on_stderr": on_stderr,
                           "env": env})
        code, out, err = self.respond(argv)
        if on_stderr and err:
            on_stderr(err)
        result = CommandResult(tuple(argv), code, out, err, 0.0)
        if code not in ok_codes:
            raise CommandFailed(argv, code, err)
        return result

    @property
    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls]


def ok(stdout: str = "", stderr: str = ""):
    return CommandResult((), 0, stdout, stderr, 0.0)


@pytest.fixture
def runner():
    return Runner()


# -- create / extend with pytest-mock on a real Runner -------------------------------------------


def test_create_thick_exact_argv(runner, mocker):
    run = mocker.patch.object(runner, "run", return_value=ok())
    Lvm(runner, VG).create(LV, 10)
    run.assert_called_once_with(["lvcreate", "-n", LV, VG, "-L", "10g"], env={}, timeout=LVM_TIMEOUT)


def test_create_thin_exact_argv(runner, mocker):
    run = mocker.patch.object(runner, "run", return_value=ok())
    Lvm(runner, VG).create(LV, 3, thin_pool=f"{VG}-pool")
    run.assert_called_once_with(["lvcreate", "-T", "-V", "3g", "-n", LV, f"{VG}/{VG}-pool"], env={}, timeout=LVM_TIMEOUT)


def test_create_failure_propagates(runner, mocker):
    failure = CommandFailed(["lvcreate"], 5, '  Volume group "cinder-volumes" has insufficient free space (10 extents): 256 required.\n')
    mocker.patch.object(runner, "run", side_effect=failure)
    with pytest.raises(CommandFailed) as info:
        Lvm(runner, VG).create(LV, 1)
    assert info.value is failure


def test_extend_exact_argv(runner, mocker):
    run = mocker.patch.object(runner, "run", return_value=ok())
    Lvm(runner, VG).extend(LV, 20)
    run.assert_called_once_with(["lvextend", "-L", "20g", f"{VG}/{LV}"], env={}, timeout=LVM_TIMEOUT)


def test_activate_exact_argv(runner, mocker):
    """Cinder's ensure_export: -K activates an LV with the activation-skip flag too (thin snapshots)."""
    run = mocker.patch.object(runner, "run", return_value=ok())
    Lvm(runner, VG).activate(LV)
    run.assert_called_once_with(["lvchange", "-a", "y", "--yes", "-K", f"{VG}/{LV}"], env={}, timeout=LVM_TIMEOUT)


def test_path():
    assert Lvm(Runner(), VG).path(LV) == f"/dev/{VG}/{LV}"


# -- snapshots, activation, merge (Cinder's brick: create_lv_snapshot, activate_lv, revert) ---------

SNAP = "_snapshot-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
# device-mapper names: every '-' of the VG and of the LV doubled, '-' between them
SNAP_DM = "/dev/mapper/cinder--volumes-_snapshot--0b9d1f5e--7c2a--4e8b--b1d3--5a6c7e8f9a0b"
LV_DM = "/dev/mapper/cinder--volumes-volume--6f1c0e6a--0b6e--4c43--9a43--2f8f3c1d9e10"


def test_thick_snapshot_exact_argv():
    """A COW store as large as the origin: Cinder's -L <volume size>g."""
    runner = RecordingRunner()
    Lvm(runner, VG).snapshot(SNAP, LV, 3)
    assert runner.argvs == [["lvcreate", "--name", SNAP, "--snapshot", f"{VG}/{LV}", "-L", "3g"]]
    assert runner.calls[0]["timeout"] == LVM_TIMEOUT


def test_thin_snapshot_exact_argv_has_no_size():
    runner = RecordingRunner()
    Lvm(runner, VG).snapshot(SNAP, LV)
    assert runner.argvs == [["lvcreate", "--name", SNAP, "--snapshot", f"{VG}/{LV}"]]


@pytest.mark.parametrize("permanent, flags", [(False, ["-K"]), (True, ["-k", "n"])])
def test_activate_ignores_or_clears_the_activation_skip_flag(permanent, flags):
    """-K activates this once (a snapshot before it is read); -k n clears the flag for good (a new
    volume made from a thin snapshot, so that vgchange -aay brings it up at boot)."""
    runner = RecordingRunner()
    Lvm(runner, VG).activate(LV, permanent=permanent)
    assert runner.argvs == [["lvchange", "-a", "y", "--yes", *flags, f"{VG}/{LV}"]]


def test_rename_exact_argv():
    """Cinder's rename_volume for manage_existing: lvrename VG OLD NEW."""
    runner = RecordingRunner()
    Lvm(runner, VG).rename("legacy-db", LV)
    assert runner.argvs == [["lvrename", VG, "legacy-db", LV]]


def test_deactivate_exact_argv():
    runner = RecordingRunner()
    Lvm(runner, VG).deactivate(LV)
    assert runner.argvs == [["lvchange", "-a", "n", f"{VG}/{LV}"]]


def test_extend_of_a_thick_origin_deactivates_around_lvextend():
    runner = RecordingRunner()
    Lvm(runner, VG).extend(LV, 20, thick_origin=True)
    assert runner.argvs == [
        ["lvchange", "-a", "n", f"{VG}/{LV}"],
        ["lvextend", "-L", "20g", f"{VG}/{LV}"],
        ["lvchange", "-a", "y", "--yes", "-K", f"{VG}/{LV}"],
    ]


def test_extend_of_a_thick_origin_that_fails_activates_it_again_and_reports_the_resize():
    """Left inactive, the volume could be neither exported nor its snapshots read."""
    def respond(argv):
        if argv[0] == "lvextend":
            return 5, "", "  Insufficient free space: 2560 extents needed, but only 10 available\n"
        return (5, "", "  activation failed\n") if argv[:3] == ["lvchange", "-a", "y"] else (0, "", "")

    runner = RecordingRunner(respond)
    with pytest.raises(CommandFailed) as info:
        Lvm(runner, VG).extend(LV, 20, thick_origin=True)
    assert info.value.argv[0] == "lvextend" and "Insufficient free space" in str(info.value)
    assert [a[:3] for a in runner.argvs] == [["lvchange", "-a", "n"], ["lvextend", "-L", "20g"], ["lvchange", "-a", "y"]]


def test_extend_of_a_thick_origin_that_cannot_be_deactivated_does_not_resize():
    runner = RecordingRunner(lambda argv: (5, "", f"  Logical volume {VG}/{LV} in use.\n") if argv[0] == "lvchange" else (0, "", ""))
    with pytest.raises(CommandFailed):
        Lvm(runner, VG).extend(LV, 20, thick_origin=True)
    assert runner.argvs == [["lvchange", "-a", "n", f"{VG}/{LV}"]]


def test_merge_exact_argv_waits_as_long_as_a_copy():
    """lvconvert --merge returns when the merge is done: as long as copying the COW store back."""
    runner = RecordingRunner()
    Lvm(runner, VG).merge(SNAP)
    assert runner.argvs == [["lvconvert", "--merge", f"{VG}/{SNAP}"]]
    assert runner.calls[0]["timeout"] == ZERO_TIMEOUT


def test_mapper_path_doubles_each_dash_and_adds_the_layer():
    lvm = Lvm(Runner(), VG)
    assert lvm.mapper_path(SNAP) == SNAP_DM
    assert lvm.mapper_path(SNAP, "-cow") == SNAP_DM + "-cow"
    assert Lvm(Runner(), "vg0").mapper_path("lv") == "/dev/mapper/vg0-lv"


def test_copy_exact_argv_is_cinders_copy_volume():
    """O_DIRECT on both sides, count in bytes (the source's size), progress from dd's status lines."""
    seen: list[int] = []
    runner = RecordingRunner(lambda argv: (0, "", f"\r{GIB} bytes (1.1 GB, 1.0 GiB) copied, 1 s, 1 GB/s\n"))
    Lvm(runner, VG).copy(SNAP, LV, 2 * GIB, seen.append)
    assert runner.argvs == [["dd", f"if={SNAP_DM}", f"of={LV_DM}", f"count={2 * GIB}", "bs=1M", "iflag=count_bytes,direct",
                             "oflag=direct", "status=progress"]]
    assert runner.calls[0]["timeout"] == ZERO_TIMEOUT
    assert seen == [GIB, 2 * GIB]


def test_zero_of_a_cow_store_exact_argv():
    """delete_snapshot's clear (lp1191812): /dev/zero never with iflag=direct, which it cannot do."""
    runner = RecordingRunner()
    lvm = Lvm(runner, VG)
    lvm.zero(lvm.mapper_path(SNAP, "-cow"), GIB)
    assert runner.argvs == [["dd", "if=/dev/zero", f"of={SNAP_DM}-cow", f"count={GIB}", "bs=1M", "iflag=count_bytes",
                             "oflag=direct", "status=progress"]]
    assert runner.calls[0]["timeout"] == ZERO_TIMEOUT


def test_snapshot_kinds_from_lv_attr():
    def lv(attr):
        return LogicalVolume(VG, LV, GIB, attr, f"/dev/{VG}/{LV}")

    assert lv("owi-a-s---").is_thick_origin and lv("Owi-a-s---").is_thick_origin
    assert lv("swi-a-s---").is_thick_snapshot and lv("Swi-a-s---").is_thick_snapshot
    assert not lv("-wi-a-----").is_thick_origin and not lv("Vwi---tz-k").is_thick_snapshot
    assert lv("Vwi---tz-k").is_thin_volume and not lv("Vwi---tz-k").is_active


# -- thin pool ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "free_bytes, pool_gib",
    [
        (100 * GIB, 95),
        (100 * GIB + 512 * 1024**2, 95),  # 95.475 GiB -> whole GiB, rounded down
        (21 * GIB, 19),  # 19.95
        (2 * GIB, 1),  # 1.9
        (1078 * 1024**2, 1),  # just over 1 GiB after 95 %
    ],
)
def test_create_thin_pool_is_95_percent_of_free_in_whole_gib(free_bytes, pool_gib):
    runner = RecordingRunner(lambda argv: (0, VGS % (200 * GIB, free_bytes), "") if argv[0] == "vgs" else (0, "", ""))
    Lvm(runner, VG).create_thin_pool(f"{VG}-pool")
    assert runner.argvs == [
        ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free", VG],
        ["lvcreate", "-T", "-L", f"{pool_gib}g", f"{VG}/{VG}-pool"],
    ]


def test_create_thin_pool_refuses_a_full_vg():
    runner = RecordingRunner(lambda argv: (0, VGS % (10 * GIB, GIB), ""))
    with pytest.raises(CommandFailed) as info:
        Lvm(runner, VG).create_thin_pool(f"{VG}-pool")
    assert "less than 1 GiB free" in str(info.value)
    assert [a[0] for a in runner.argvs] == ["vgs"]  # no lvcreate attempted


def test_volume_group_parses_vgs():
    runner = RecordingRunner(lambda argv: (0, VGS % (107369988096, 5364514816), ""))
    assert Lvm(runner, VG).volume_group() == VolumeGroup(VG, 107369988096, 5364514816)


def test_volume_group_missing_from_report():
    runner = RecordingRunner(lambda argv: (0, '  {\n      "report": [\n          {\n              "vg": [\n              ]\n          }\n      ]\n  }\n', ""))
    with pytest.raises(CommandFailed):
        Lvm(runner, VG).volume_group()


# -- remove ------------------------------------------------------------------------------------

REMOVE = ["lvremove", "--config", "activation { retry_deactivation = 1} ", "-f", f"{VG}/{LV}"]
REMOVE_RETRY = [
    "lvremove", "--config", "activation { retry_deactivation = 1} devices { ignore_suspended_devices = 1}", "-f", f"{VG}/{LV}",
]


def test_remove_exact_argv():
    runner = RecordingRunner()
    Lvm(runner, VG).remove(LV)
    assert runner.argvs == [REMOVE]


def test_remove_retries_after_udev_settle():
    attempts = []

    def respond(argv):
        if argv[0] == "lvremove":
            attempts.append(argv)
            if len(attempts) == 1:
                return 5, "", f'  Logical volume {VG}/{LV} contains a filesystem in use.\n'
        return 0, "", ""

    runner = RecordingRunner(respond)
    Lvm(runner, VG).remove(LV)
    assert runner.argvs == [REMOVE, ["udevadm", "settle"], REMOVE_RETRY]
    assert 0 in runner.calls[1]["ok_codes"]


def test_remove_second_failure_raises():
    def respond(argv):
        return (5, "", f"  Logical volume {VG}/{LV} in use.\n") if argv[0] == "lvremove" else (0, "", "")

    runner = RecordingRunner(respond)
    with pytest.raises(CommandFailed) as info:
        Lvm(runner, VG).remove(LV)
    assert info.value.argv == REMOVE_RETRY
    assert len(runner.argvs) == 3


# -- clear (dd) ---------------------------------------------------------------------------------


def dd_argv(size):
    return ["dd", "if=/dev/zero", f"of=/dev/{VG}/{LV}", f"count={size}", "bs=1M", "iflag=count_bytes", "oflag=direct", "status=progress"]


def test_clear_exact_argv_without_progress():
    runner = RecordingRunner()
    Lvm(runner, VG).clear(LV, 2 * GIB)
    assert runner.argvs == [dd_argv(2 * GIB)]
    assert runner.calls[0]["timeout"] == ZERO_TIMEOUT
    assert runner.calls[0]["on_stderr"] is None


def test_clear_progress_from_dd_status_lines():
    size = 2 * GIB
    # GNU dd with status=progress: '\r' + stats, padded, overwritten in place; a newline before the summary.
    chunks = [
        "\r536870912 bytes (537 MB, 512 MiB) copied, 1 s, 537 MB/s",
        "\r805306368 bytes (805 MB, 768 MiB) copied, 1.5 s, 537 MB/s\r1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2 s, 537 MB/s",
        "\r16106127",  # a line split across two reads
        "36 bytes (1.6 GB, 1.5 GiB) copied, 3 s, 537 MB/s\r2147",
        "483648 bytes (2.1 GB, 2.0 GiB) copied, 4 s, 537 MB/s\n2048+0 records in\n2048+0 records out\n",
        "2147483648 bytes (2.1 GB, 2.0 GiB) copied, 4.00301 s, 536 MB/s\n",
    ]
    seen: list[int] = []

    class Streaming(RecordingRunner):
        def run(self, argv, **kw):
            self.calls.append({"argv": list(argv), **kw})
            for chunk in chunks:
                kw["on_stderr"](chunk)
            return ok(stderr="".join(chunks))

    runner = Streaming()
    Lvm(runner, VG).clear(LV, size, on_progress=seen.append)
    assert runner.argvs == [dd_argv(size)]
    # A chunk reports only complete lines; the newest one in it wins.
    assert seen == [805306368, 1073741824, 1610612736, 2147483648, 2147483648, size]
    assert seen == sorted(seen)


def test_clear_failure_propagates():
    runner = RecordingRunner(lambda argv: (1, "", f"dd: error writing '/dev/{VG}/{LV}': No space left on device\n"))
    with pytest.raises(CommandFailed):
        Lvm(runner, VG).clear(LV, GIB, on_progress=lambda n: None)


def test_clear_streams_progress_through_a_real_process(tmp_path, monkeypatch):
    """End to end through the real Runner: a stand-in `dd` on PATH prints what GNU dd prints."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "args"
    fake = bin_dir / "dd"
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{args_file}"\n'
        "printf '\\r1048576 bytes (1.0 MB, 1.0 MiB) copied, 1 s, 1.0 MB/s' >&2\n"
        "printf '\\r2097152 bytes (2.1 MB, 2.0 MiB) copied, 2 s, 1.0 MB/s\\n' >&2\n"
        "printf '3+0 records in\\n3+0 records out\\n3145728 bytes (3.1 MB, 3.0 MiB) copied, 3 s, 1.0 MB/s\\n' >&2\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    seen: list[int] = []
    Lvm(Runner(timeout=20), VG).clear(LV, 3 * 1024**2, on_progress=seen.append)
    assert args_file.read_text().splitlines() == dd_argv(3 * 1024**2)[1:]
    assert seen[-1] == 3 * 1024**2
    assert 2097152 in seen and seen == sorted(seen)


# -- get / list ----------------------------------------------------------------------------------


def lvs_argv(target):
    return ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", LV_FIELDS, target]


@pytest.mark.parametrize("stdout", [LVS_ONE_WITH_LOG, LVS_ONE_WITH_LOG.replace('\n      ,\n      "log"', ',\n      "log"')])
def test_get_parses_real_lvs_json(stdout):
    runner = RecordingRunner(lambda argv: (0, stdout, ""))
    lv = Lvm(runner, VG).get(LV)
    assert runner.argvs == [lvs_argv(f"{VG}/{LV}")]
    assert lv == LogicalVolume(vg=VG, name=LV, size_bytes=GIB, attr="-wi-a-----", path=f"/dev/{VG}/{LV}", pool="")
    assert not lv.is_thin_pool and not lv.is_thin_volume


@pytest.mark.parametrize(
    "stderr",
    [
        f'  Failed to find logical volume "{VG}/{LV}"\n',
        f'  Volume group "{VG}" not found\n  Cannot process volume group {VG}\n',
    ],
)
def test_get_missing_returns_none(stderr):
    runner = RecordingRunner(lambda argv: (5, LVS_EMPTY, stderr))
    assert Lvm(runner, VG).get(LV) is None


def test_get_other_failure_raises():
    stderr = "  /dev/sdb: read failed after 0 of 4096 at 0: Input/output error\n  WARNING: Failed to read metadata.\n"
    runner = RecordingRunner(lambda argv: (5, "", stderr))
    with pytest.raises(CommandFailed) as info:
        Lvm(runner, VG).get(LV)
    assert info.value.returncode == 5


def test_get_empty_report_is_none():
    runner = RecordingRunner(lambda argv: (0, LVS_EMPTY, ""))
    assert Lvm(runner, VG).get(LV) is None


def test_list_parses_pool_thin_and_thick():
    runner = RecordingRunner(lambda argv: (0, LVS_ALL, "  WARNING: Sum of all thin volume sizes exceeds the size of thin pool.\n"))
    lvs = Lvm(runner, VG).list()
    assert runner.argvs == [lvs_argv(VG)]
    assert [lv.name for lv in lvs] == [f"{VG}-pool", "volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b", LV]
    pool, thin, thick = lvs
    assert pool.is_thin_pool and pool.size_bytes == 101997903872 and pool.path == ""
    assert thin.is_thin_volume and thin.pool == f"{VG}-pool" and thin.size_bytes == 2 * GIB
    assert thick == LogicalVolume(VG, LV, GIB, "-wi-ao----", f"/dev/{VG}/{LV}", "")
    assert all(isinstance(lv.size_bytes, int) for lv in lvs)


USAGE_FIELDS = ("vg_name,lv_name,lv_size,lv_attr,data_percent,metadata_percent,lv_metadata_size,lv_health_status,"
                "pool_lv,vg_size,vg_free")


def test_usage_is_one_lvs_of_the_group_with_what_each_lv_holds_and_its_pools():
    runner = RecordingRunner(lambda argv: (0, LVS_USAGE, ""))
    usage = Lvm(runner, VG).usage()
    assert runner.argvs == [["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", USAGE_FIELDS, VG]]
    assert usage.group == VolumeGroup(VG, 107369988096, 5163188224)
    assert usage.held_bytes == {
        f"{VG}-pool": 101997903872,  # a pool holds its whole size in the group
        "volume-0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b": GIB // 2,  # 25 % of 2 GiB
        "_snapshot-5f0c6a1e-2b7d-4c39-9d8e-0a1b2c3d4e5f": 0,  # inactive: lvs shows no use
        "volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10": GIB,  # thick: its size
    }
    assert usage.pools == (ThinPool(VG, f"{VG}-pool", 101997903872, 12.5, 3.25, 104857600, ""),)


def test_usage_of_a_group_with_no_lv_asks_vgs():
    answers = {"lvs": LVS_EMPTY, "vgs": VGS % (100 * GIB, 100 * GIB)}
    runner = RecordingRunner(lambda argv: (0, answers[argv[0]], ""))
    usage = Lvm(runner, VG).usage()
    assert [a[0] for a in runner.argvs] == ["lvs", "vgs"]
    assert usage.group == VolumeGroup(VG, 100 * GIB, 100 * GIB) and usage.held_bytes == {} and usage.pools == ()


def test_list_empty_vg():
    assert Lvm(RecordingRunner(lambda argv: (0, LVS_EMPTY, "")), VG).list() == []


def test_list_accepts_json_std_numbers():
    """--reportformat json_std prints numbers as numbers; the parser takes both."""
    stdout = LVS_ONE_WITH_LOG.replace('"lv_size":"1073741824"', '"lv_size":1073741824')
    assert Lvm(RecordingRunner(lambda argv: (0, stdout, "")), VG).list()[0].size_bytes == GIB


# -- the udev mode, lvm_conf_file and the timeout reach every LVM command -----------------------

OFF = LvmHost(UdevMode(False, "test"), system_dir="/etc/cinder")
ON = LvmHost(UdevMode(True, "test"))
LVM_PROGRAMS = {"lvcreate", "lvextend", "lvremove", "lvs", "vgs", "lvchange", "lvconvert", "lvrename"}


def _answer(argv):
    if argv[0] == "vgs":
        return 0, VGS % (100 * GIB, 50 * GIB), ""
    if argv[0] == "lvs":
        return 0, LVS_USAGE if "vg_free" in argv[-2] else LVS_ALL, ""
    return 0, "", ""


# Every public method of Lvm, called so that each LVM program it can start is started.
EVERY_METHOD = {
    "create": lambda lvm: (lvm.create(LV, 1), lvm.create(LV, 1, thin_pool=f"{VG}-pool")),
    "create_thin_pool": lambda lvm: lvm.create_thin_pool(f"{VG}-pool"),
    "remove": lambda lvm: lvm.remove(LV),
    "get": lambda lvm: lvm.get(LV),
    "list": lambda lvm: lvm.list(),
    "volume_group": lambda lvm: lvm.volume_group(),
    "clear": lambda lvm: lvm.clear(LV, GIB),
    "path": lambda lvm: lvm.path(LV),
    "activate": lambda lvm: (lvm.activate(LV), lvm.activate(LV, permanent=True)),
    "deactivate": lambda lvm: lvm.deactivate(LV),
    "extend": lambda lvm: (lvm.extend(LV, 2), lvm.extend(LV, 3, thick_origin=True)),
    "snapshot": lambda lvm: (lvm.snapshot(SNAP, LV, 1), lvm.snapshot(SNAP, LV)),
    "merge": lambda lvm: lvm.merge(SNAP),
    "mapper_path": lambda lvm: lvm.mapper_path(SNAP, "-cow"),
    "zero": lambda lvm: lvm.zero(lvm.mapper_path(SNAP, "-cow"), GIB),
    "copy": lambda lvm: lvm.copy(SNAP, LV, GIB),
    "rename": lambda lvm: lvm.rename("legacy-db", LV),
    "thin_pool": lambda lvm: lvm.thin_pool(f"{VG}-pool"),
    "usage": lambda lvm: lvm.usage(),
}
# LVM commands that run as long as a copy of the data, not as a metadata change
LONG = {"lvconvert": ZERO_TIMEOUT}


def test_every_public_method_is_covered_below():
    public = {name for name in vars(Lvm) if not name.startswith("_") and callable(getattr(Lvm, name))}
    assert public == set(EVERY_METHOD), "a new Lvm method needs a line in EVERY_METHOD"


@pytest.mark.parametrize("host, env", [(OFF, {"DM_DISABLE_UDEV": "1", "LVM_SYSTEM_DIR": "/etc/cinder"}), (ON, {})])
def test_every_lvm_command_carries_the_mode_and_the_timeout(host, env):
    fail_first_remove = []

    def respond(argv):
        if argv[0] == "lvremove" and not fail_first_remove:  # exercise the retry's argv too
            fail_first_remove.append(argv)
            return 5, "", "  Logical volume in use.\n"
        return _answer(argv)

    runner = RecordingRunner(respond)
    for call in EVERY_METHOD.values():
        call(Lvm(runner, VG, host))
    lvm_calls = [c for c in runner.calls if c["argv"][0] in LVM_PROGRAMS]
    assert {c["argv"][0] for c in lvm_calls} == LVM_PROGRAMS
    assert sum(c["argv"][0] == "lvremove" for c in lvm_calls) == 2
    for c in lvm_calls:
        assert (c["env"], c["timeout"]) == (env, LONG.get(c["argv"][0], LVM_TIMEOUT)), c["argv"]
    others = [c for c in runner.calls if c["argv"][0] not in LVM_PROGRAMS]
    assert {c["argv"][0] for c in others} == ({"dd"} if host is OFF else {"dd", "udevadm"})


def test_remove_retry_skips_udevadm_settle_without_udev():
    """No udevd to wait for, and a container may not even have udevadm."""
    attempts = []

    def respond(argv):
        attempts.append(argv)
        return (5, "", "  in use\n") if len(attempts) == 1 else (0, "", "")

    runner = RecordingRunner(respond)
    Lvm(runner, VG, OFF).remove(LV)
    assert runner.argvs == [REMOVE, REMOVE_RETRY]


def _fake_program(tmp_path, monkeypatch, name: str, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / name
    fake.write_text("#!/bin/sh\n" + body)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_the_mode_reaches_a_real_lvm_process(tmp_path, monkeypatch):
    seen = tmp_path / "env"
    _fake_program(tmp_path, monkeypatch, "lvcreate", f'echo "$DM_DISABLE_UDEV|$LVM_SYSTEM_DIR|$LC_ALL" > "{seen}"\n')
    monkeypatch.delenv("DM_DISABLE_UDEV", raising=False)
    Lvm(Runner(), VG, OFF).create(LV, 1)
    assert seen.read_text() == "1|/etc/cinder|C\n"
    Lvm(Runner(), VG, ON).create(LV, 1)
    assert seen.read_text() == "||C\n"


@pytest.mark.parametrize("host, hint", [(ON, True), (OFF, False)])
def test_a_hanging_lvm_command_fails_naming_it(tmp_path, monkeypatch, host, hint):
    """An lvcreate stuck on a udev cookie becomes exit 6 with the command line, not a stall."""
    from dataclasses import replace
    import time

    _fake_program(tmp_path, monkeypatch, "lvcreate", "exec sleep 30\n")
    started = time.monotonic()
    with pytest.raises(CommandFailed) as info:
        Lvm(Runner(), VG, replace(host, timeout=0.5)).create(LV, 1)
    assert time.monotonic() - started < 10
    assert info.value.exit_code == 6
    assert str(info.value).startswith(f"command failed: lvcreate -n {LV} {VG} -L 1g: timed out after 0.5 s")
    assert ('lvm_udev = "off"' in str(info.value)) is hint
