"""The boot unit shipped in systemd/: systemd itself checks it (`systemd-analyze verify`), and it
is ordered after everything `volctl restore` needs, including the host's own LIO restore unit,
which clears every live target when it starts. scripts/setup installs systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "volctl-restore.service"


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


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/setup installs Debian's systemd package"
    # The unit runs /usr/local/bin/volctl, where README installs it; here, this checkout's.
    volctl = Path(sys.executable).parent / "volctl"
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/volctl restore\n" in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("ExecStart=/usr/local/bin/volctl", f"ExecStart={volctl}"))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120)
    # verify exits 0 even for an unknown key or a bad value; it says so on stderr
    problems = [line for line in (done.stdout + done.stderr).splitlines() if copy.name in line or str(copy) in line]
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
