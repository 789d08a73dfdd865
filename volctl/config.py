"""Settings: built-in defaults overlaid by the TOML file. Names follow Cinder's options."""

from __future__ import annotations

import math
from pathlib import Path

from volctl import validate
from volctl.errors import EnvironmentProblem, UsageError, quoted
from volctl.record import Record
from volctl.targets import HELPERS

DEFAULT_DB = "/var/lib/volctl/volctl.db"
DEFAULT_CONFIG = "/etc/volctl/volctl.toml"
CONFIG_MAX_BYTES = 1024 * 1024  # a real volctl.toml is a few hundred bytes
# No new thin LV once the pool's data or metadata is this full (README, Configuration: lvm2 warns
# from 80 %; full metadata needs an offline repair, full data stops every volume's writes).
DATA_PERCENT_DEFAULT = 90.0
METADATA_PERCENT_DEFAULT = 80.0


class Settings(Record):
    """Every setting, with Cinder's defaults. lvm_conf_file "": LVM's own /etc/lvm/lvm.conf;
    lio_save_file "": the file the host's LIO restore unit reads (volctl/savefile.py)."""

    volume_group: str
    lvm_type: str
    volume_name_template: str
    target_helper: str
    target_prefix: str
    target_ip_address: str
    target_secondary_ip_addresses: tuple[str, ...]
    target_port: int
    target_protocol: str
    volume_clear: str
    lvm_udev: str
    lvm_conf_file: str
    lio_save_file: str
    nvmet_target_prefix: str
    nvmet_target_port: int
    nvmet_port_id: int
    nvmet_ns_id: int
    nvmeof_conn_info_version: int
    nvmet_auth: str
    nvmet_save_file: str
    max_over_subscription_ratio: float | str
    reserved_percentage: int
    thin_pool_max_data_percent: float
    thin_pool_max_metadata_percent: float
    report_discard_supported: str | bool

    def __init__(self, volume_group: str = "cinder-volumes", lvm_type: str = "default",
                 volume_name_template: str = "volume-%s", target_helper: str = "lioadm",
                 target_prefix: str = "iqn.2010-10.org.openstack:", target_ip_address: str = "127.0.0.1",
                 target_secondary_ip_addresses: tuple[str, ...] = (), target_port: int = 3260,
                 target_protocol: str = "iscsi", volume_clear: str = "zero", lvm_udev: str = "auto",
                 lvm_conf_file: str = "", lio_save_file: str = "", nvmet_target_prefix: str = "nvme-subsystem-1",
                 nvmet_target_port: int = 4420, nvmet_port_id: int = 1, nvmet_ns_id: int = 10,
                 nvmeof_conn_info_version: int = 1, nvmet_auth: str = "auto",
                 nvmet_save_file: str = "/etc/nvmet/config.json", max_over_subscription_ratio: float | str = 20.0,
                 reserved_percentage: int = 0, thin_pool_max_data_percent: float = DATA_PERCENT_DEFAULT,
                 thin_pool_max_metadata_percent: float = METADATA_PERCENT_DEFAULT,
                 report_discard_supported: str | bool = "thin"):
        self._init(locals())

    @property
    def portal_ips(self) -> tuple[str, ...]:
        return (self.target_ip_address, *self.target_secondary_ip_addresses)

    @property
    def thin_pool(self) -> str:
        return f"{self.volume_group}-pool"

    def lv_name(self, volume_id: str) -> str:
        return self.volume_name_template % volume_id

    @staticmethod
    def snapshot_lv_name(snapshot_id: str) -> str:
        """Cinder's snapshot_name_template 'snapshot-%s' through its _escape_snapshot: lvm2 reserves
        names that start with "snapshot", so the LV is '_snapshot-<id>'."""
        return f"_snapshot-{snapshot_id}"

    @staticmethod
    def clone_snapshot_lv_name(volume_id: str) -> str:
        """The temporary snapshot a thick clone copies from (Cinder's 'clone-snap-<new id>')."""
        return f"clone-snap-{volume_id}"

    def save_file(self, root: Path | str = "/") -> Path:
        """Where every `cinder-rtstool save` goes and what doctor reads."""
        from volctl.savefile import default_save_file

        return Path(self.lio_save_file or default_save_file(root))


PROTOCOLS = ("iscsi", "iser", "nvmet_tcp")
_CHOICES = {
    "lvm_type": ("default", "thin"),
    "target_helper": HELPERS,
    "target_protocol": PROTOCOLS,
    "volume_clear": ("zero", "none"),
    "lvm_udev": ("auto", "on", "off"),
    "nvmeof_conn_info_version": (1, 2),
    "nvmet_auth": ("auto", "on", "off"),
}
# Whole-number settings, and the range each may take (nvmetcli caps port ids and nsids at 8192).
_INTEGERS = {"target_port": (1, 65535), "nvmet_target_port": (1, 65535), "nvmet_port_id": (1, 8192),
             "nvmet_ns_id": (1, 8192), "nvmeof_conn_info_version": (1, 2), "reserved_percentage": (0, 100)}
# Settings that take any number (TOML integer or float); the ratio also takes Cinder's "auto".
_NUMBERS = ("max_over_subscription_ratio", "thin_pool_max_data_percent", "thin_pool_max_metadata_percent")
_NQN_MAX_BYTES = 223
_EXAMPLE_ID = "00000000-0000-4000-8000-000000000000"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(settings: Settings, source: str) -> Settings:
    def bad(key: str, why: str) -> UsageError:
        return UsageError(f"{source}: {key}: {why}")

    for key, choices in _CHOICES.items():
        if getattr(settings, key) not in choices:
            raise bad(key, f"must be one of {', '.join(map(str, choices))}, not {quoted(str(getattr(settings, key)))}")
    for key, (low, high) in _INTEGERS.items():
        if not low <= getattr(settings, key) <= high:
            raise bad(key, f"must be from {low} to {high}, not {getattr(settings, key)}")
    ratio = settings.max_over_subscription_ratio
    if ratio != "auto" and not (_is_number(ratio) and math.isfinite(ratio) and ratio >= 1.0):
        raise bad("max_over_subscription_ratio", f"must be a number of at least 1.0 or \"auto\" (as Cinder's), not {quoted(ratio)}")
    discard = settings.report_discard_supported
    if not (discard == "thin" or isinstance(discard, bool)):  # 1 == True: a bool, not any value equal to one
        raise bad("report_discard_supported", f"must be \"thin\" (thin volumes advertise UNMAP), true or false, not {quoted(discard)}")
    for key in ("thin_pool_max_data_percent", "thin_pool_max_metadata_percent"):
        value = getattr(settings, key)
        if not (_is_number(value) and 0 < value <= 100):
            raise bad(key, f"must be a number above 0 and at most 100, not {quoted(value)}")
    try:
        validate.vg_name(settings.volume_group)
        validate.port(settings.target_port, "target_port")
        ips = [validate.ip_address(ip, "target IP address") for ip in settings.portal_ips]
    except UsageError as e:
        raise UsageError(f"{source}: {e}") from None
    if len(set(ips)) != len(ips):
        raise bad("target_secondary_ip_addresses", "a portal IP is listed twice")
    conf = settings.lvm_conf_file
    if conf and (not conf.startswith("/") or Path(conf).name != "lvm.conf"):
        raise bad("lvm_conf_file", f"{quoted(conf)} must be an absolute path to a file named lvm.conf "
                                   "(LVM reads lvm.conf from the directory in LVM_SYSTEM_DIR)")
    for key in ("lio_save_file", "nvmet_save_file"):
        if getattr(settings, key) and not getattr(settings, key).startswith("/"):
            raise bad(key, f"must be an absolute path, not {quoted(getattr(settings, key))}")
    if not settings.nvmet_save_file:
        raise bad("nvmet_save_file", "must name a file")
    if settings.nvmet_port_id + len(ips) - 1 > _INTEGERS["nvmet_port_id"][1]:
        raise bad("nvmet_port_id", "leaves no port id for every address (one per address, at most 8192)")
    prefix = settings.nvmet_target_prefix
    if not prefix or any(c.isspace() or c == "/" or not c.isprintable() for c in prefix) \
            or len(f"nqn.{prefix}-{_EXAMPLE_ID}".encode()) > _NQN_MAX_BYTES:
        raise bad("nvmet_target_prefix", f"{quoted(prefix)}: 'nqn.' + it + '-' + a volume id must be an NQN "
                                         f"(printable, no whitespace or '/', at most {_NQN_MAX_BYTES} bytes)")
    if settings.target_protocol == "nvmet_tcp" and len(ips) > 1 and settings.nvmeof_conn_info_version == 1:
        raise bad("nvmeof_conn_info_version", "secondary addresses need 2 for NVMe/TCP (as Cinder's)")
    template = settings.volume_name_template
    if template.count("%s") != 1 or "%" in template.replace("%s", ""):
        raise bad("volume_name_template", "must hold exactly one %s and no other %")
    try:
        example_lv = validate.lv_name(template % _EXAMPLE_ID)
    except UsageError:
        raise bad("volume_name_template", f"{quoted(template)} does not give a valid LV name") from None
    if example_lv != example_lv.lower():  # LIO lower-cases target IQNs; get-targets/delete would never match
        raise bad("volume_name_template", f"{quoted(template)} must be lower-case: the LV name is part of the target IQN")
    from volctl import iscsi  # deferred: without a config file (the default) nothing needs it

    try:
        iscsi.initiator_name(settings.target_prefix + example_lv)
    except UsageError:
        raise bad("target_prefix", f"{quoted(settings.target_prefix)} + an LV name is not a valid iSCSI name") from None
    return Settings(**{**vars(settings), "target_ip_address": ips[0], "target_secondary_ip_addresses": tuple(ips[1:]),
                       "target_prefix": settings.target_prefix.lower()})


def load_settings(path: str | None) -> Settings:
    """path None means the default file, which may be absent; a named file must exist."""
    named = path is not None
    target = Path(path if named else DEFAULT_CONFIG)
    shown = quoted(str(target))
    try:
        with open(target, "rb") as f:
            raw = f.read(CONFIG_MAX_BYTES + 1)  # bounded: --config /dev/zero must not eat the memory
    except FileNotFoundError:
        if named:
            raise UsageError(f"config file {shown} does not exist") from None
        return Settings()
    except PermissionError:
        raise EnvironmentProblem(f"config file {shown}: permission denied") from None
    except IsADirectoryError:
        raise UsageError(f"config file {shown} is a directory") from None
    except OSError as e:
        raise UsageError(f"config file {shown}: {e.strerror}") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise UsageError(f"config file {shown} is larger than {CONFIG_MAX_BYTES // 1024} KiB")
    import tomllib  # deferred: without a config file (the default) nothing needs it

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{shown}: not valid TOML: {e}") from None
    except RecursionError:
        raise UsageError(f"{shown}: not valid TOML: nested too deeply") from None
    except ValueError as e:  # tomllib lets int()'s digit limit through: `target_port = 999...9`
        raise UsageError(f"{shown}: not a usable TOML value: {e}") from None
    known = set(Settings._fields)
    values: dict[str, object] = {}
    for key, value in data.items():
        if key not in known:
            raise UsageError(f"{shown}: unknown setting {quoted(key)}")
        if key == "target_secondary_ip_addresses":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{shown}: {key}: must be a list of IP address strings")
            value = tuple(value)
        elif key in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"{shown}: {key}: must be a whole number")
        elif key in _NUMBERS:
            if not _is_number(value) and not (key == "max_over_subscription_ratio" and value == "auto"):
                raise UsageError(f"{shown}: {key}: must be a number" + (' or "auto"' if key == "max_over_subscription_ratio" else ""))
            value = value if value == "auto" else float(value)
        elif key == "report_discard_supported":
            pass  # "thin", true or false: _check says which
        elif not isinstance(value, str):
            raise UsageError(f"{shown}: {key}: must be a string")
        values[key] = value
    return _check(Settings(**values), shown)
