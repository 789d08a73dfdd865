"""Settings: defaults, TOML overrides, and every way a config file can be wrong (exit 2, one line)."""

from __future__ import annotations

import pytest

from volctl import config
from volctl.config import Settings, load_settings
from volctl.errors import ExitCode, UsageError


@pytest.fixture(autouse=True)
def _no_system_config(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "DEFAULT_CONFIG", str(tmp_path / "absent" / "volctl.toml"))


def write(tmp_path, text: str | bytes, name="volctl.toml"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def refused(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_settings(path)
    assert info.value.exit_code == ExitCode.USAGE == 2
    message = str(info.value)
    assert "\n" not in message
    assert path in message
    return message


def test_defaults_follow_the_contract():
    s = Settings()
    assert s.volume_group == "cinder-volumes"
    assert s.lvm_type == "default"
    assert s.volume_name_template == "volume-%s"
    assert s.target_helper == "lioadm"
    assert s.target_prefix == "iqn.2010-10.org.openstack:"
    assert s.target_ip_address == "127.0.0.1"
    assert s.target_secondary_ip_addresses == ()
    assert s.target_port == 3260
    assert s.target_protocol == "iscsi"
    assert s.volume_clear == "zero"
    assert s.portal_ips == ("127.0.0.1",)
    assert s.thin_pool == "cinder-volumes-pool"
    assert s.lv_name("abc") == "volume-abc"
    # NVMe/TCP: Cinder's nvmet names and numbers (devstack's prefix, nvmet's usual port)
    assert (s.nvmet_target_prefix, s.nvmet_target_port, s.nvmet_port_id, s.nvmet_ns_id) == ("nvme-subsystem-1", 4420, 1, 10)
    assert (s.nvmeof_conn_info_version, s.nvmet_auth, s.nvmet_save_file) == (1, "auto", "/etc/nvmet/config.json")


def test_nvme_settings_are_read(tmp_path):
    text = ('target_protocol = "nvmet_tcp"\nnvmet_target_prefix = "nvme-host-a"\nnvmet_target_port = 4421\n'
            'nvmet_port_id = 3\nnvmet_ns_id = 1\nnvmeof_conn_info_version = 2\nnvmet_auth = "on"\n'
            'nvmet_save_file = "/srv/nvmet.json"\ntarget_secondary_ip_addresses = ["10.0.0.5"]\n')
    s = load_settings(write(tmp_path, text))
    assert (s.target_protocol, s.nvmet_target_prefix, s.nvmet_target_port, s.nvmet_port_id, s.nvmet_ns_id,
            s.nvmeof_conn_info_version, s.nvmet_auth, s.nvmet_save_file) == \
        ("nvmet_tcp", "nvme-host-a", 4421, 3, 1, 2, "on", "/srv/nvmet.json")


def test_missing_default_file_means_defaults():
    assert load_settings(None) == Settings()


def test_default_file_is_read_when_present(monkeypatch, tmp_path):
    path = write(tmp_path, 'volume_group = "vg-from-default"\n')
    monkeypatch.setattr(config, "DEFAULT_CONFIG", path)
    assert load_settings(None).volume_group == "vg-from-default"


def test_missing_named_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(UsageError) as info:
        load_settings(str(missing))
    assert str(missing) in str(info.value)
    assert info.value.exit_code == 2


def test_directory_as_config_is_an_error(tmp_path):
    with pytest.raises(UsageError):
        load_settings(str(tmp_path))


def test_toml_overrides(tmp_path):
    path = write(
        tmp_path,
        """
volume_group = "stack-volumes"
lvm_type = "thin"
volume_name_template = "vol-%s"
target_prefix = "IQN.2010-10.Org.OpenStack:"
target_ip_address = "10.0.0.5"
target_secondary_ip_addresses = ["10.0.0.6", "FD00::0005"]
target_port = 3261
target_protocol = "iser"
volume_clear = "none"
""",
    )
    s = load_settings(path)
    assert s == Settings(
        volume_group="stack-volumes",
        lvm_type="thin",
        volume_name_template="vol-%s",
        target_prefix="iqn.2010-10.org.openstack:",  # stored lower-case, as LIO stores IQNs
        target_ip_address="10.0.0.5",
        target_secondary_ip_addresses=("10.0.0.6", "fd00::5"),  # canonical form
        target_port=3261,
        target_protocol="iser",
        volume_clear="none",
    )
    assert s.portal_ips == ("10.0.0.5", "10.0.0.6", "fd00::5")
    assert s.thin_pool == "stack-volumes-pool"


@pytest.mark.parametrize("helper", ["lioadm", "rtslib"])
def test_target_helper_choices(tmp_path, helper):
    assert load_settings(write(tmp_path, f'target_helper = "{helper}"\n')) == Settings(target_helper=helper)


def test_partial_file_keeps_other_defaults(tmp_path):
    s = load_settings(write(tmp_path, "target_port = 3262\n"))
    assert s == Settings(target_port=3262)


def test_empty_file_is_defaults(tmp_path):
    assert load_settings(write(tmp_path, "")) == Settings()


@pytest.mark.parametrize("key", ["volume_groups", "iscsi_target_prefix", "lvm_mirrors"])
def test_unknown_key_is_named(tmp_path, key):
    message = refused(tmp_path, f'{key} = "x"\n')
    assert repr(key) in message or key in message


def test_unknown_table_is_refused(tmp_path):
    assert "lvm" in refused(tmp_path, '[lvm]\nvolume_group = "x"\n')


@pytest.mark.parametrize(
    "line, key",
    [
        ('target_port = "3260"', "target_port"),
        ("target_port = true", "target_port"),
        ("target_port = 3260.0", "target_port"),
        ("volume_group = 5", "volume_group"),
        ("lvm_type = true", "lvm_type"),
        ('target_secondary_ip_addresses = "10.0.0.6"', "target_secondary_ip_addresses"),
        ("target_secondary_ip_addresses = [1, 2]", "target_secondary_ip_addresses"),
        ("target_ip_address = [\"10.0.0.5\"]", "target_ip_address"),
    ],
)
def test_wrong_types(tmp_path, line, key):
    assert key in refused(tmp_path, line + "\n")


@pytest.mark.parametrize(
    "line, named",
    [
        ('target_ip_address = "300.1.1.1"', "300.1.1.1"),
        ('target_ip_address = "localhost"', "localhost"),
        ('target_secondary_ip_addresses = ["10.0.0.5", "10.0.0.256"]', "10.0.0.256"),
        ('target_secondary_ip_addresses = ["127.0.0.1"]', "target_secondary_ip_addresses"),  # twice
        ("target_port = 0", "target_port"),
        ("target_port = 65536", "target_port"),
        ('target_prefix = "not an iqn:"', "target_prefix"),
        ('target_prefix = "iqn.2010-10.org_openstack:"', "target_prefix"),
        ('target_prefix = "iqn.2010-13.org.openstack:"', "target_prefix"),
        ('volume_name_template = "volume-%d"', "volume_name_template"),
        ('volume_name_template = "volume"', "volume_name_template"),
        ('volume_name_template = "%s-%s"', "volume_name_template"),
        ('volume_name_template = "volume-%s%%"', "volume_name_template"),
        ('volume_name_template = "snapshot-%s"', "volume_name_template"),  # LVM reserves snapshot*
        ('volume_name_template = "vol ume-%s"', "volume_name_template"),
        ('volume_name_template = "vol_%s"', "target_prefix"),  # a fine LV name, but '_' is no IQN character
        ('volume_name_template = "Volume-%s"', "volume_name_template"),  # LIO would store the IQN lower-cased
        ('lvm_type = "auto"', "lvm_type"),
        ('lvm_type = "thick"', "lvm_type"),
        ('volume_clear = "shred"', "volume_clear"),
        ('target_protocol = "nvmet_rdma"', "target_protocol"),  # Cinder's RDMA variant: not volctl's
        ("nvmet_target_port = 0", "nvmet_target_port"),
        ("nvmet_port_id = 0", "nvmet_port_id"),
        ("nvmet_port_id = 8192\ntarget_secondary_ip_addresses = [\"10.0.0.5\"]", "nvmet_port_id"),  # no id left for the second
        ("nvmet_ns_id = 0", "nvmet_ns_id"),
        ("nvmet_ns_id = 8193", "nvmet_ns_id"),
        ("nvmeof_conn_info_version = 3", "nvmeof_conn_info_version"),
        ('nvmet_auth = "maybe"', "nvmet_auth"),
        ('nvmet_save_file = "config.json"', "nvmet_save_file"),
        ('nvmet_save_file = ""', "nvmet_save_file"),
        ('nvmet_target_prefix = "has space"', "nvmet_target_prefix"),
        ('nvmet_target_prefix = "a/b"', "nvmet_target_prefix"),
        (f'nvmet_target_prefix = "{"x" * 190}"', "nvmet_target_prefix"),
        ('target_protocol = "nvmet_tcp"\ntarget_secondary_ip_addresses = ["10.0.0.5"]', "nvmeof_conn_info_version"),
        ('target_helper = "tgtadm"', "target_helper"),
        ('volume_group = "-vg"', "-vg"),
        ('volume_group = "vg/x"', "vg/x"),
    ],
)
def test_bad_values(tmp_path, line, named):
    assert named in refused(tmp_path, line + "\n")


@pytest.mark.parametrize("text", ["volume_group = \n", "volume_group = 'a'\nvolume_group = 'b'\n", "[[x]\n", b"volume_group = \"\xff\"\n",
                                  "target_port = " + "9" * 5000 + "\n",  # past int()'s digit limit: ValueError
                                  "x = " + "[" * 50_000 + "]" * 50_000 + "\n",  # tomllib recurses: RecursionError
                                  "target_port = 3260.0.0\n"])
def test_malformed_toml_is_one_line_usage_error(tmp_path, text):
    message = refused(tmp_path, text)
    assert "TOML" in message


def test_config_that_never_ends_is_refused_without_reading_it_all(tmp_path):
    with pytest.raises(UsageError) as info:
        load_settings("/dev/zero")
    assert "larger than 1024 KiB" in str(info.value)


# -- space: Cinder's over-subscription options and the thin pool limits -----------------------------


def test_space_defaults_are_cinders_and_the_documented_limits():
    s = Settings()
    assert (s.max_over_subscription_ratio, s.reserved_percentage) == (20.0, 0)  # Cinder's defaults
    assert (s.thin_pool_max_data_percent, s.thin_pool_max_metadata_percent) == (90.0, 80.0)  # README, Configuration
    assert s.report_discard_supported == "thin"  # thin volumes advertise UNMAP (README, Configuration)


@pytest.mark.parametrize("line, expected", [
    ("max_over_subscription_ratio = 1", 1.0), ("max_over_subscription_ratio = 1.5", 1.5),
    ("max_over_subscription_ratio = 'auto'", "auto"), ("reserved_percentage = 100", 100),
    ("thin_pool_max_data_percent = 100", 100.0), ("thin_pool_max_metadata_percent = 0.5", 0.5),
    ("report_discard_supported = true", True), ("report_discard_supported = false", False),
    ("report_discard_supported = 'thin'", "thin"),
])
def test_space_settings_are_read(tmp_path, line, expected):
    key = line.split(" = ")[0]
    assert getattr(load_settings(write(tmp_path, line + "\n")), key) == expected


@pytest.mark.parametrize("line", [
    "max_over_subscription_ratio = 0.99", "max_over_subscription_ratio = 0", "max_over_subscription_ratio = -1",
    "max_over_subscription_ratio = '20.0'", "max_over_subscription_ratio = 'AUTO'", "max_over_subscription_ratio = ''",
    "max_over_subscription_ratio = nan", "max_over_subscription_ratio = inf", "max_over_subscription_ratio = true",
    "max_over_subscription_ratio = [20.0]",
    "reserved_percentage = -1", "reserved_percentage = 101", "reserved_percentage = 5.0", "reserved_percentage = '5'",
    "reserved_percentage = true",
    "thin_pool_max_data_percent = 0", "thin_pool_max_data_percent = -5", "thin_pool_max_data_percent = 100.5",
    "thin_pool_max_data_percent = '90'", "thin_pool_max_data_percent = nan", "thin_pool_max_data_percent = inf",
    "thin_pool_max_data_percent = false", "thin_pool_max_metadata_percent = 0.0", "thin_pool_max_metadata_percent = 150",
    "thin_pool_max_metadata_percent = -inf", "thin_pool_max_metadata_percent = [80]",
    "report_discard_supported = 1", "report_discard_supported = 0", "report_discard_supported = 'THIN'",
    "report_discard_supported = 'true'", "report_discard_supported = ''", "report_discard_supported = [true]",
])
def test_bad_space_settings_are_refused_naming_the_key(tmp_path, line):
    assert line.split(" = ")[0] in refused(tmp_path, line + "\n")
