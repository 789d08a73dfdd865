"""The units shipped in systemd/: systemd itself checks them (`systemd-analyze verify`); the boot
unit is ordered after everything `volctl restore` needs, including the host's own LIO restore
unit, which clears every live target when it starts; the metrics timer runs the metrics service
each minute. scripts/setup installs systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "volctl-restore.service"
METRICS = REPO / "systemd" / "volctl-metrics.service"
TIMER = REPO / "systemd" / "volctl-metrics.timer"


def unit_values(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    # systemd allows a key more than once (two After= lines add up), so no configparser
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).extend(value.split())
    return values


@pytest.mark.parametrize("units, command", [((UNIT,), "restore"),
                                            ((METRICS, TIMER), "metrics --output /var/lib/prometheus/node-exporter/volctl.prom")])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, units, command):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/setup installs Debian's systemd package"
    # The units run /usr/local/bin/volctl, where README installs it; here, this checkout's.
    volctl = Path(sys.executable).parent / "volctl"
    copies = []
    for unit in units:
        text = unit.read_text()
        if unit.suffix == ".service":
            assert f"ExecStart=/usr/local/bin/volctl {command}\n" in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace("ExecStart=/usr/local/bin/volctl", f"ExecStart={volctl}"))
        copies.append(copy)
    done = subprocess.run([analyze, "verify", *map(str, copies)], capture_output=True, text=True, timeout=120)
    # verify exits 0 even for an unknown key or a bad value; it says so on stderr
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if any(copy.name in line or str(copy) in line for copy in copies)]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


def test_ordered_after_configfs_file_systems_lvm_and_the_hosts_lio_and_nvmet_units():
    values = unit_values(UNIT.read_text())
    after = set(values["Unit.After"])
    assert {"sys-kernel-config.mount", "local-fs.target", "lvm2-monitor.service",
            "rtslib-fb-targetctl.service", "target.service", "nvmet.service"} <= after
    assert values["Unit.Requires"] == ["sys-kernel-config.mount"]
    # nvmetcli's nvmet.service clears every subsystem when it stops or restarts: restore after it
    assert set(values["Unit.PartOf"]) == {"rtslib-fb-targetctl.service", "target.service", "nvmet.service"}
    assert values["Service.Type"] == ["oneshot"] and values["Install.WantedBy"] == ["multi-user.target"]


def test_the_metrics_timer_runs_the_metrics_service_each_minute_from_boot():
    timer, service = unit_values(TIMER.read_text()), unit_values(METRICS.read_text())
    assert timer["Timer.OnUnitActiveSec"] == ["1min"] and timer["Timer.OnBootSec"] == ["1min"]
    assert "Timer.Unit" not in timer and TIMER.stem == METRICS.stem  # a timer starts its own name's service
    assert timer["Install.WantedBy"] == ["timers.target"] and "Install.WantedBy" not in service
    assert service["Service.Type"] == ["oneshot"]
