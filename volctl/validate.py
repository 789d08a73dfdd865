"""Validators for every value an operator or a config file hands us. Pure; each raises UsageError.

Text from the command line arrives as str; anything volctl turns into a number, a name or a
connector is checked here, once, and every message quotes the value through `quoted`, so an
error stays one line whatever bytes the operator typed."""

from __future__ import annotations

import json
import math
import re

from volctl.errors import UsageError, quoted

MAX_GIB = 1_048_576
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VG = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
_LV = _VG


_ASCII_DIGITS = re.compile(r"[0-9]+")
_ASCII_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
HOST_MAX = 255  # Cinder's volume_attachment.attached_host is String(255)
CONNECTOR_MAX_BYTES = 64 * 1024  # os-brick's connector properties are well under 2 KiB
# The connector keys volctl reads, with the JSON type each must have (os-brick's connector properties).
_CONNECTOR_TYPES: dict[str, tuple[type, ...]] = {
    "initiator": (str,), "nqn": (str,), "host": (str,), "multipath": (bool,), "enforce_multipath": (bool,), "mode": (str,),
}


def looks_like_uuid(value: str) -> bool:
    return bool(_UUID.fullmatch(value.lower()))


def volume_name(value: str, what: str = "volume") -> str:
    if not _NAME.fullmatch(value):
        raise UsageError(f"invalid {what} name {quoted(value)}: use 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    if looks_like_uuid(value):
        raise UsageError(f"invalid {what} name {quoted(value)}: a name shaped like a UUID would be ambiguous with {what} ids")
    return value


def volume_ref(value: str, what: str = "volume") -> str:
    """VOL (or SNAP): an id (any case, returned canonical) or a name; anything else cannot name one."""
    if looks_like_uuid(value):
        return value.lower()  # already the canonical 8-4-4-4-12 form, as str(uuid.UUID(...)) gives it
    if not _NAME.fullmatch(value):
        raise UsageError(f"invalid {what} {quoted(value)}: give a {what} id (UUID) or name")
    return value


def snapshot_name(value: str) -> str:
    return volume_name(value, "snapshot")


def snapshot_ref(value: str) -> str:
    return volume_ref(value, "snapshot")


def size_gib(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GIB:
        raise UsageError(f"invalid size {quoted(value)}: a whole number of GiB from 1 to {MAX_GIB}")
    return value


def size_text(text: str) -> int:
    """GIB from the command line: ASCII digits only (int() would also take '١', '５', '1_0', ' 5')."""
    if not _ASCII_DIGITS.fullmatch(text):
        raise UsageError(f"invalid size {quoted(text)}: a whole number of GiB from 1 to {MAX_GIB}, in ASCII digits")
    return size_gib(int(text))


def seconds_text(text: str, what: str = "seconds") -> float:
    """A non-negative, finite number of seconds in ASCII digits: float() would take 'nan', 'inf', '1e9'."""
    if not _ASCII_DECIMAL.fullmatch(text) or not math.isfinite(float(text)):
        raise UsageError(f"invalid {what} {quoted(text)}: a number of seconds such as 300 or 2.5")
    return float(text)


def uuid_str(value: str, what: str = "UUID") -> str:
    """Canonical lower-case 8-4-4-4-12 form only: ids end up in LV names and IQNs."""
    if not isinstance(value, str) or not looks_like_uuid(value):
        raise UsageError(f"invalid {what} {quoted(value)}: expected the form 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10")
    return value.lower()  # the canonical form: what str(uuid.UUID(...)) gives


def ip_address(value: str, what: str = "IP address") -> str:
    import ipaddress  # deferred: only settings and connectors hold addresses, and every command imports this module

    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise UsageError(f"invalid {what} {quoted(value)}") from None


def port(value: int, what: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise UsageError(f"invalid {what} {quoted(value)}: a whole number from 1 to 65535")
    return value


def vg_name(value: str) -> str:
    if not isinstance(value, str) or not _VG.fullmatch(value) or value in (".", ".."):
        raise UsageError(f"invalid volume group name {quoted(value)}")
    return value


def lv_name(value: str) -> str:
    if not _LV.fullmatch(value) or value in (".", "..") or value.startswith("snapshot"):
        raise UsageError(f"invalid logical volume name {quoted(value)}")
    return value


def mountpoint(value: str) -> str:
    if not value or len(value) > 255 or not value.isprintable():
        raise UsageError(f"invalid mountpoint {quoted(value)}: 1-255 printable characters, e.g. /dev/vdb")
    return value


def output_file(value: str, is_directory: bool) -> str:
    """A file to write (metrics --output); is_directory: whether the path names one now."""
    if not value or len(value) > 4096 or not value.isprintable() or value.endswith("/") or is_directory:
        raise UsageError(f"invalid --output {quoted(value)}: a file's path, such as "
                         "/var/lib/prometheus/node-exporter/volctl.prom (printable, not a directory)")
    return value


def host_name(value: str) -> str:
    """--host / a connector's host, as Cinder stores it; one that sanitizes to nothing names no host."""
    # Cinder would silently drop a control character; here it is a typo or an injection to refuse.
    sanitized = sanitize_hostname(value) if isinstance(value, str) and value.isprintable() else ""
    if not sanitized or len(sanitized) > HOST_MAX:
        raise UsageError(f"invalid host {quoted(value)}: a host name such as compute1, at most {HOST_MAX} characters")
    return sanitized


def attach_mode(value: str) -> str:
    if value not in ("rw", "ro"):
        raise UsageError(f"invalid mode {quoted(value)}: rw or ro")
    return value


def parse_connector(data: bytes, source: str) -> dict:
    """os-brick's connector properties as UTF-8 JSON, bounded in size and depth."""
    if len(data) > CONNECTOR_MAX_BYTES:
        raise UsageError(f"connector from {source} is larger than {CONNECTOR_MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"connector from {source} is not UTF-8: byte {quoted(data[e.start:e.start + 1])} at offset {e.start}") from None
    try:
        connector = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                               parse_float=_finite_float, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        raise UsageError(f"connector from {source} is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except _NotPlainJson as e:
        raise UsageError(f"connector from {source} {e}") from None
    except RecursionError:
        raise UsageError(f"connector from {source} is nested too deeply") from None
    try:  # a \\udcXX escape decodes to a lone surrogate: the JSON spelling of a byte that is not UTF-8
        json.dumps(connector, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"connector from {source} holds {quoted(e.object[e.start:e.end])}, which is not a character") from None
    return connector_dict(connector, source)


class _NotPlainJson(ValueError):
    """JSON that Python's parser takes but RFC 8259 or volctl's inventory cannot: stored again
    with json.dumps it would not read back the same, or at all."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _NotPlainJson(f"gives {quoted(key)} twice")
        found[key] = value
    return found


def _no_constant(name: str) -> float:
    raise _NotPlainJson(f"holds {name}, which JSON has no number for")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotPlainJson(f"holds {quoted(text[:20])}, a number too large for a float")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 64:  # int() refuses past 4300 digits with a ValueError; no connector needs 64
        raise _NotPlainJson(f"holds an integer of {len(text)} digits")
    return int(text)


def connector_dict(connector: object, source: str = "--connector") -> dict:
    """Cinder's validate_connector, for either protocol: an `initiator` (iSCSI) or an `nqn` (NVMe-oF,
    os-brick's key), plus a type check of every key volctl reads. os-brick's properties carry both
    on a host that has both; the export's helper checks the one it uses (host_of), so an odd
    `nqn` does not stop an iSCSI connect."""
    if not isinstance(connector, dict):
        raise UsageError(f"connector from {source} must be a JSON object")
    if connector.get("initiator") is None and connector.get("nqn") is None:
        raise UsageError(f"connector from {source} has no 'initiator' (iSCSI) or 'nqn' (NVMe/TCP): "
                         "the export needs the host's name")
    for key, types in _CONNECTOR_TYPES.items():
        value = connector.get(key)
        if key in connector and value is not None and not isinstance(value, types):
            wanted = "true or false" if types == (bool,) else "a string"
            raise UsageError(f"connector from {source}: {key!r} must be {wanted}, not {quoted(value)}")
    from volctl import iscsi  # deferred, as ipaddress above

    checked = dict(connector)
    if connector.get("initiator") is not None:
        checked["initiator"] = iscsi.initiator_name(connector["initiator"])
    if connector.get("mode") is not None:
        attach_mode(connector["mode"])
    if connector.get("host") is not None:
        host_name(connector["host"])
    return checked


def host_id(value: str) -> str:
    """`--initiator ID`: an iSCSI initiator name or a host NQN (the export's protocol decides which
    it must be), in the form its target stores."""
    from volctl import iscsi, nvmeof

    return nvmeof.host_nqn(value) if nvmeof.looks_like_nqn(value) else iscsi.initiator_name(value)


def sanitize_hostname(value: str) -> str:
    """Cinder's volume_utils.sanitize_hostname: latin-1 only, ' ' and '_' to '-', lower-case."""
    text = value.encode("latin-1", "ignore").decode("latin-1")
    text = re.sub(r"[ _]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text)
    return text.lower().strip(".-")
