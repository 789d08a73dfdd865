"""Which file volctl saves the LIO config to (lio_save_file), on a Debian-like and an upstream-like
host laid out under a tmp root, and doctor's report when the host's LIO unit restores another."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import INITIATOR_1, lio_of

from volctl.config import Settings, load_settings
from volctl.doctor import Doctor
from volctl.errors import UsageError
from volctl.savefile import DEBIAN_SAVE_FILE, UPSTREAM_SAVE_FILE, default_save_file, restore_unit

DEBIAN_UNIT = """[Unit]
Description=Restore LIO kernel target configuration
Requires=sys-kernel-config.mount
After=sys-kernel-config.mount network.target local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=mkdir -p /etc/rtslib-fb-target
ExecStart=/usr/bin/targetctl restore
ExecStop=/usr/bin/targetctl clear
"""
UPSTREAM_UNIT = DEBIAN_UNIT.replace("ExecStart=mkdir -p /etc/rtslib-fb-target\n", "")


def lay_out(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name.lstrip("/")
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


def test_debian_unit_means_debians_file(tmp_path):
    root = lay_out(tmp_path, {"/lib/systemd/system/rtslib-fb-targetctl.service": DEBIAN_UNIT})
    assert default_save_file(root) == DEBIAN_SAVE_FILE
    unit = restore_unit(root)
    assert (unit.name, unit.save_file) == ("rtslib-fb-targetctl.service", DEBIAN_SAVE_FILE)


def test_debian_directory_alone_means_debians_file(tmp_path):
    """python3-rtslib-fb's directory without its unit (e.g. targetcli-fb's backups dir)."""
    root = lay_out(tmp_path, {"/etc/rtslib-fb-target/": ""})
    assert restore_unit(root) is None
    assert default_save_file(root) == DEBIAN_SAVE_FILE


def test_upstream_unit_or_nothing_means_etc_target(tmp_path):
    assert default_save_file(tmp_path) == UPSTREAM_SAVE_FILE
    root = lay_out(tmp_path, {"/usr/lib/systemd/system/target.service": UPSTREAM_UNIT, "/etc/target/": ""})
    assert default_save_file(root) == UPSTREAM_SAVE_FILE
    assert restore_unit(root).name == "target.service"


def test_a_unit_restoring_a_named_file_is_followed(tmp_path):
    override = DEBIAN_UNIT.replace("ExecStart=/usr/bin/targetctl restore", "ExecStart=/usr/bin/targetctl restore /srv/lio.json")
    root = lay_out(tmp_path, {"/lib/systemd/system/rtslib-fb-targetctl.service": DEBIAN_UNIT,
                              "/etc/systemd/system/rtslib-fb-targetctl.service": override})
    assert default_save_file(root) == "/srv/lio.json"


def test_the_setting_wins_and_must_be_absolute(tmp_path):
    root = lay_out(tmp_path / "host", {"/lib/systemd/system/rtslib-fb-targetctl.service": DEBIAN_UNIT})
    assert Settings().save_file(root) == Path(DEBIAN_SAVE_FILE)
    assert Settings(lio_save_file="/srv/x.json").save_file(root) == Path("/srv/x.json")
    config = tmp_path / "volctl.toml"
    config.write_text('lio_save_file = "/var/lib/lio/saveconfig.json"\n')
    assert load_settings(str(config)).lio_save_file == "/var/lib/lio/saveconfig.json"
    config.write_text('lio_save_file = "saveconfig.json"\n')
    with pytest.raises(UsageError, match="absolute"):
        load_settings(str(config))


def test_service_saves_to_the_file_of_the_host_layout(make_service, tmp_path):
    """No save_file override: the path comes from the host layout (test_iscsi checks `save PATH`)."""
    debian = lay_out(tmp_path / "debian", {"/lib/systemd/system/rtslib-fb-targetctl.service": DEBIAN_UNIT})
    assert lio_of(make_service(save_file=None, host_root=debian)).save_file == Path(DEBIAN_SAVE_FILE)
    upstream = lay_out(tmp_path / "upstream", {"/lib/systemd/system/target.service": UPSTREAM_UNIT})
    assert lio_of(make_service(save_file=None, host_root=upstream)).save_file == Path(UPSTREAM_SAVE_FILE)


def test_doctor_reports_a_unit_restoring_a_file_volctl_does_not_write(make_service, tmp_path, save_file):
    root = lay_out(tmp_path / "debian", {"/lib/systemd/system/rtslib-fb-targetctl.service": DEBIAN_UNIT})
    service = make_service(host_root=root)  # save_file: the tmp file, not Debian's
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    report = Doctor(service).examine()
    [item] = [d for d in report.drift if d.kind == "restore_unit"]
    assert DEBIAN_SAVE_FILE in item.detail and str(save_file) in item.detail and item.repair is None
    assert not report.clean
    assert not Doctor(service).repair(report).clean  # nothing volctl can settle by itself


def test_doctor_is_quiet_when_volctl_saves_where_the_unit_restores(make_service, tmp_path, save_file):
    unit = DEBIAN_UNIT.replace("targetctl restore", f"targetctl restore {save_file}")
    root = lay_out(tmp_path / "debian", {"/lib/systemd/system/rtslib-fb-targetctl.service": unit})
    service = make_service(host_root=root)
    service.create(size=1, name="v1")
    service.connect("v1", {"initiator": INITIATOR_1})
    assert Doctor(service).examine().clean
