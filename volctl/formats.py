"""Cinder's byte formats: provider_location, provider_auth, CHAP credentials, connection info. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

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
    data.update(
        encrypted=False,
        qos_specs=None,
        access_mode=access_mode,
        cacheable=False,
        enforce_multipath=bool(connector.get("enforce_multipath", False)),
    )
    return {"driver_volume_type": protocol, "data": data}
