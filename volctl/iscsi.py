"""The one module that knows iSCSI: target names (IQNs), initiator names, the write-ahead CHAP
rule, portals and the iSER flag, and Cinder's byte formats for an iSCSI export
(provider_location, provider_auth, the connection info). Pure: no I/O.

The iSCSI target template that uses them is volctl/targets/iscsi.py, as Cinder's
`volume/targets/iscsi.py`; volctl/lvm.py is the other outside world of the seed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from volctl.connection import manager_options
from volctl.errors import UsageError, quoted

PROTOCOLS = ("iscsi", "iser")
# RFC 3720 3.2.6.3.1: iqn.<yyyy-mm>.<reversed domain>[:<unique>]. The domain needs two labels
# because rtslib's own check wants two dots after the date; '_' is refused by rtslib too.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_IQN = re.compile(rf"iqn\.[0-9]{{4}}-(?:0[1-9]|1[0-2])\.{_LABEL}(?:\.{_LABEL})+(?::[a-z0-9.:-]*[a-z0-9])?")
_EUI = re.compile(r"eui\.[0-9a-f]{16}")
# RFC 3980 allows 16 or 32 hex digits, but LIO (rtslib normalize_wwn) takes only the 16-digit
# form with NAA type 1, 2, 5 or c-f; a name LIO would refuse is refused here first.
_NAA = re.compile(r"naa\.[125c-f][0-9a-f]{15}")
NAME_MAX_BYTES = 223
WWN_PREFIXES = ("iqn.", "eui.", "naa.")


@dataclass(frozen=True)
class IscsiConfig:
    """What Cinder's ISCSITarget reads from its configuration: the target names and the portals."""

    prefix: str = "iqn.2010-10.org.openstack:"
    ips: tuple[str, ...] = ("127.0.0.1",)
    port: int = 3260
    protocol: str = "iscsi"  # or "iser"
    lv_template: str = "volume-%s"  # volume_name_template: an IQN is prefix + LV name

    def iqn(self, lv_name: str) -> str:
        """Cinder's iscsi_target_prefix + the LV name."""
        return self.prefix + lv_name

    def volume_id_of(self, iqn: str) -> str | None:
        """The volume id of a target named as volctl names them; None for any other name."""
        head, _, tail = self.lv_template.partition("%s")
        pattern = re.escape(self.prefix + head) + "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})" + re.escape(tail)
        found = re.fullmatch(pattern, iqn)
        return found.group(1) if found else None


def initiator_name(value: str) -> str:
    """An iSCSI initiator name (iqn./eui./naa.), returned in the lower-case form LIO stores."""
    if not isinstance(value, str) or not value:
        raise UsageError("invalid initiator name: empty")
    name = value.lower()
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise UsageError(f"invalid initiator name {quoted(value)}: longer than {NAME_MAX_BYTES} bytes")
    if name.startswith("iqn."):
        ok = _IQN.fullmatch(name)
        hint = "iqn.YYYY-MM.reversed.domain[:unique], e.g. iqn.1994-05.com.redhat:client1"
    elif name.startswith("eui."):
        ok = _EUI.fullmatch(name)
        hint = "eui. followed by 16 hex digits"
    elif name.startswith("naa."):
        ok = _NAA.fullmatch(name)
        hint = "naa. followed by 16 hex digits, the first 1, 2, 5 or c-f (LIO takes no 32-digit NAA)"
    else:
        ok, hint = None, "it must start with iqn., eui. or naa."
    if not ok:
        raise UsageError(f"invalid initiator name {quoted(value)}: {hint}")
    return name

# cinder/volume/volume_utils.py: no 0, 1, I, O or l, so a person can read them back.
SYMBOL_GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")
ALPHABET = "".join(SYMBOL_GROUPS)
USERNAME_LENGTH = 20
PASSWORD_LENGTH = 16


@dataclass(frozen=True)
class Chap:
    username: str
    password: str

    def __repr__(self) -> str:  # never let a traceback or a debug print show the password
        return f"Chap(username={self.username!r}, password='***')"

    __str__ = __repr__


def _random_symbols(length: int) -> str:
    """At least one symbol of each group, like Cinder's generate_password, but drawn with `secrets`."""
    import secrets  # deferred: only export/connect make credentials; read commands need not import it

    chars = [secrets.choice(group) for group in SYMBOL_GROUPS]
    chars += [secrets.choice(ALPHABET) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def generate_chap() -> Chap:
    return Chap(_random_symbols(USERNAME_LENGTH), _random_symbols(PASSWORD_LENGTH))


def provider_auth(chap: Chap) -> str:
    return f"CHAP {chap.username} {chap.password}"


def parse_provider_auth(value: str | None) -> Chap | None:
    if not value:
        return None
    method, username, password = value.split(" ", 3)[:3]
    if method != "CHAP":
        raise ValueError(f"unsupported auth method {method!r}")
    return Chap(username, password)


def portal(ip: str, port: int) -> str:
    """Cinder's sanitize_host: an IPv6 address goes in brackets."""
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def credentials(provider_auth: str | None) -> tuple[Chap, bool]:
    """The volume's CHAP, or new ones (True) that the caller stores before any target has them:
    a crash cannot then leave a target whose credentials nobody knows (Cinder reuses them on
    every later export the same way, _get_target_chap_auth)."""
    chap = parse_provider_auth(provider_auth)
    return (chap, False) if chap is not None else (generate_chap(), True)


def provider_location(ips: tuple[str, ...] | list[str], port: int, iqn: str, lun: int = 0) -> str:
    """LIO's target id is the IQN itself (the get-targets line), so the IQN appears twice."""
    portals = ";".join(portal(ip, port) for ip in ips)
    return f"{portals},{iqn} {iqn} {lun}"


@dataclass(frozen=True)
class Location:
    portals: tuple[str, ...]
    iqn: str
    lun: int


def parse_provider_location(value: str) -> Location:
    """Cinder's _get_iscsi_properties parsing, including its lenient LUN."""
    results = value.split(" ")
    portals = tuple(results[0].split(",")[0].split(";"))
    try:
        lun = int(results[2])
    except (IndexError, ValueError):  # Cinder's own fallback; '²'.isdigit() is True but int() refuses it
        lun = 0
    return Location(portals=portals, iqn=results[1], lun=lun)


def recorded_iqn(provider_location: str | None) -> str | None:
    """The target a recorded export names, None when there is none (or it is not an IQN's)."""
    if not provider_location:
        return None
    parts = provider_location.split(" ")
    return parts[1] if len(parts) > 1 else None


def connection_info(
    *,
    volume_id: str,
    location: str,
    auth: str | None,
    protocol: str,
    connector: dict,
    access_mode: str,
    force_multipath: bool = False,
) -> dict:
    """initialize_connection's result plus the manager's _parse_connection_options additions."""
    loc = parse_provider_location(location)
    data: dict = {"target_discovered": False, "target_portal": loc.portals[0], "target_iqn": loc.iqn, "target_lun": loc.lun}
    if len(loc.portals) > 1 or connector.get("multipath") or force_multipath:
        data["target_portals"] = list(loc.portals)
        data["target_iqns"] = [loc.iqn] * len(loc.portals)
        data["target_luns"] = [loc.lun] * len(loc.portals)
    data["volume_id"] = volume_id
    chap = parse_provider_auth(auth)
    if chap:
        data.update(auth_method="CHAP", auth_username=chap.username, auth_password=chap.password)
    data.update(manager_options(connector, access_mode))
    return {"driver_volume_type": protocol, "data": data}
