"""Validators for every value an operator or a config file hands us. Pure; each raises UsageError."""

from __future__ import annotations

import ipaddress
import re
import uuid

from volctl.errors import UsageError

MAX_GIB = 1_048_576
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# RFC 3720 3.2.6.3.1: iqn.<yyyy-mm>.<reversed domain>[:<unique>]. The domain needs two labels
# because rtslib's own check wants two dots after the date; '_' is refused by rtslib too.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_IQN = re.compile(rf"iqn\.[0-9]{{4}}-(?:0[1-9]|1[0-2])\.{_LABEL}(?:\.{_LABEL})+(?::[a-z0-9.:-]*[a-z0-9])?")
_EUI = re.compile(r"eui\.[0-9a-f]{16}")
# RFC 3980 allows 16 or 32 hex digits, but LIO (rtslib normalize_wwn) takes only the 16-digit
# form with NAA type 1, 2, 5 or c-f; a name LIO would refuse is refused here first.
_NAA = re.compile(r"naa\.[125c-f][0-9a-f]{15}")
ISCSI_NAME_MAX_BYTES = 223
_VG = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
_LV = _VG


def volume_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise UsageError(f"invalid volume name {value!r}: use 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    return value


def size_gib(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GIB:
        raise UsageError(f"invalid size {value!r}: a whole number of GiB from 1 to {MAX_GIB}")
    return value


def uuid_str(value: str, what: str = "UUID") -> str:
    """Canonical lower-case 8-4-4-4-12 form only: ids end up in LV names and IQNs."""
    lowered = value.lower()
    if not _UUID.fullmatch(lowered):
        raise UsageError(f"invalid {what} {value!r}: expected the form 6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10")
    return str(uuid.UUID(lowered))


def initiator_name(value: str) -> str:
    """An iSCSI initiator name (iqn./eui./naa.), returned in the lower-case form LIO stores."""
    if not isinstance(value, str) or not value:
        raise UsageError("invalid initiator name: empty")
    name = value.lower()
    if len(name.encode()) > ISCSI_NAME_MAX_BYTES:
        raise UsageError(f"invalid initiator name {value!r}: longer than {ISCSI_NAME_MAX_BYTES} bytes")
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
        raise UsageError(f"invalid initiator name {value!r}: {hint}")
    return name


def ip_address(value: str, what: str = "IP address") -> str:
    try:
        return str(ipaddress.ip_address(value))
    except (ValueError, TypeError):
        raise UsageError(f"invalid {what} {value!r}") from None


def port(value: int, what: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise UsageError(f"invalid {what} {value!r}: a whole number from 1 to 65535")
    return value


def vg_name(value: str) -> str:
    if not isinstance(value, str) or not _VG.fullmatch(value) or value in (".", ".."):
        raise UsageError(f"invalid volume group name {value!r}")
    return value


def lv_name(value: str) -> str:
    if not _LV.fullmatch(value) or value in (".", "..") or value.startswith("snapshot"):
        raise UsageError(f"invalid logical volume name {value!r}")
    return value


def mountpoint(value: str) -> str:
    if not value or len(value) > 255 or any(c in value for c in "\0\n\r"):
        raise UsageError(f"invalid mountpoint {value!r}")
    return value


def sanitize_hostname(value: str) -> str:
    """Cinder's volume_utils.sanitize_hostname: latin-1 only, ' ' and '_' to '-', lower-case."""
    text = value.encode("latin-1", "ignore").decode("latin-1")
    text = re.sub(r"[ _]", "-", text)
    text = re.sub(r"[^\w.-]+", "", text)
    return text.lower().strip(".-")
