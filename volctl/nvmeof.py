"""The one module that knows NVMe over Fabrics: subsystem and host NQNs, DH-HMAC-CHAP secrets, and
Cinder's byte formats for an NVMe/TCP export (its `NVMeOF` target: provider_location and the
connection info, versions 1 and 2). Pure: no I/O.

The nvmet helper that makes the exports is volctl/targets/nvmet.py. Facts and sources:
../shared/reference/nvme-facts.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from volctl.errors import UsageError, quoted

PROTOCOL = "nvmet_tcp"  # Cinder's target_protocol value
TRANSPORT = "tcp"
DRIVER_VOLUME_TYPE = "nvmeof"  # Cinder's constants.NVMEOF_VARIANT_2
AUTH_METHOD = "DH-HMAC-CHAP"
NQN_MAX_BYTES = 223  # NVMe base specification, 4.7 (NVMe Qualified Names)
MAX_NSID = 8192  # nvmetcli's limit; Cinder's help for nvmet_ns_id says the same
# nqn.yyyy-mm.<reverse domain>:<string>, or the UUID form nvme-cli writes to /etc/nvme/hostnqn.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_NQN = re.compile(rf"nqn\.[0-9]{{4}}-(?:0[1-9]|1[0-2])\.{_LABEL}(?:\.{_LABEL})+:[!-~]+")
_UUID_NQN = re.compile(r"nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# DH-HMAC-CHAP secrets, as nvme-cli's gen-dhchap-key and the kernel read them (nvme-facts.md §5):
# "DHHC-1:<hh>:" + base64(key + CRC-32 of the key, least significant byte first) + ":"; hh 01
# has both ends transform the key with SHA-256 and the NQN before use. 32 random bytes.
DHCHAP_HASH_ID = "01"
DHCHAP_KEY_BYTES = 32


def looks_like_nqn(value: str) -> bool:
    return value.startswith("nqn.")


def host_nqn(value: str) -> str:
    """A host's NQN, as the host gives it (NQNs compare exactly): the NVMe specification's
    `nqn.yyyy-mm.reverse-domain:...` form or `nqn.2014-08.org.nvmexpress:uuid:<uuid>`, at most
    223 bytes. '/' and whitespace are refused (a host NQN is a configfs directory name)."""
    if not isinstance(value, str) or not value:
        raise UsageError("invalid host NQN: empty")
    if len(value.encode("utf-8", "surrogatepass")) > NQN_MAX_BYTES:
        raise UsageError(f"invalid host NQN {quoted(value)}: longer than {NQN_MAX_BYTES} bytes")
    if value.startswith("nqn.2014-08.org.nvmexpress:uuid:"):
        ok = _UUID_NQN.fullmatch(value)
    else:
        ok = _HOST_NQN.fullmatch(value) and "/" not in value
    if not ok:
        raise UsageError(f"invalid host NQN {quoted(value)}: nqn.YYYY-MM.reversed.domain:name (e.g. "
                         "nqn.2014-08.com.example:host1) or nqn.2014-08.org.nvmexpress:uuid:<UUID>")
    return value


@dataclass(frozen=True)
class NvmeConfig:
    """What Cinder's NVMeOF target reads from its configuration, under volctl's names."""

    prefix: str = "nvme-subsystem-1"
    ips: tuple[str, ...] = ("127.0.0.1",)
    port: int = 4420
    port_id: int = 1
    ns_id: int = 10
    conn_info_version: int = 1

    def nqn(self, volume_id: str) -> str:
        """Cinder's _get_target_nqn (one subsystem per volume): nqn.<prefix>-<volume id>."""
        return f"nqn.{self.prefix}-{volume_id}"

    def volume_id_of(self, nqn: str) -> str | None:
        """The volume id a subsystem named by this prefix was made for; None for another name."""
        head = f"nqn.{self.prefix}-"
        return nqn[len(head):] if nqn.startswith(head) else None

    def port_ids(self) -> tuple[int, ...]:
        """One nvmet port per address, numbered from port_id (Cinder's _ensure_port_exports)."""
        return tuple(range(self.port_id, self.port_id + len(self.ips)))


def provider_location(ips: tuple[str, ...] | list[str], port: int, nqn: str, ns_id: int) -> str:
    """Cinder's get_nvmeof_location: "<ip>[,<ip2>]:<port> tcp <nqn> <ns_id>"."""
    return f"{','.join(ips)}:{port} {TRANSPORT} {nqn} {ns_id}"


@dataclass(frozen=True)
class Location:
    ips: tuple[str, ...]
    port: str  # Cinder hands these out as the strings it split them from
    transport: str
    nqn: str
    ns_id: str


def parse_provider_location(value: str) -> Location:
    """Cinder's _get_connection_properties_from_vol parsing, but the port split off at the last
    ':' (Cinder's split(':') breaks on an IPv6 address, whose NVMe/TCP port it never makes)."""
    connection, transport, nqn, ns_id = value.split(" ")
    ips, _, port = connection.rpartition(":")
    return Location(tuple(ips.split(",")), port, transport, nqn, ns_id)


def recorded_nqn(provider_location: str | None) -> str | None:
    if not provider_location:
        return None
    parts = provider_location.split(" ")
    return parts[2] if len(parts) == 4 else None


@dataclass(frozen=True)
class HostKeys:
    """A host's DH-HMAC-CHAP secrets: its own (it proves itself with it) and the controller's
    (the target proves itself with it: bidirectional). One pair per host NQN; in nvmet a host's
    keys serve every subsystem that allows it."""

    host_key: str
    ctrl_key: str

    def __repr__(self) -> str:  # never in a traceback or a debug print
        return "HostKeys(host_key='***', ctrl_key='***')"

    __str__ = __repr__


def dhchap_secret() -> str:
    import base64
    import secrets
    import zlib

    key = secrets.token_bytes(DHCHAP_KEY_BYTES)
    crc = zlib.crc32(key).to_bytes(4, "little")
    return f"DHHC-1:{DHCHAP_HASH_ID}:{base64.b64encode(key + crc).decode()}:"


def generate_host_keys() -> HostKeys:
    return HostKeys(dhchap_secret(), dhchap_secret())


_DHCHAP = re.compile(r"DHHC-1:0[0-3]:[A-Za-z0-9+/]{48,}={0,2}:")


def valid_dhchap_secret(value: str) -> bool:
    """The kernel's rules (common/auth.c nvme_auth_extract_key): 36, 52 or 68 bytes after base64,
    the last four the CRC-32 of the rest."""
    import base64
    import binascii
    import zlib

    if not _DHCHAP.fullmatch(value):
        return False
    try:
        raw = base64.b64decode(value[10:-1], validate=True)
    except binascii.Error:
        return False
    return len(raw) in (36, 52, 68) and zlib.crc32(raw[:-4]).to_bytes(4, "little") == raw[-4:]


def connection_properties(*, volume_id: str, location: str, version: int, keys: HostKeys | None) -> dict:
    """Cinder's NVMeOF _get_connection_properties for a volume's provider_location (vol_uuid:
    the volume id, as _get_nvme_uuid gives name_id), plus the host's DH-HMAC-CHAP secrets when its
    export authenticates."""
    loc = parse_provider_location(location)
    if version == 2:
        data: dict = {"target_nqn": loc.nqn, "vol_uuid": volume_id,
                      "portals": [[ip, loc.port, loc.transport] for ip in loc.ips], "ns_id": loc.ns_id}
    else:
        data = {"target_portal": loc.ips[0], "target_port": loc.port, "nqn": loc.nqn,
                "transport_type": loc.transport, "ns_id": loc.ns_id}
    if keys is not None:
        data.update(auth_method=AUTH_METHOD, dhchap_secret=keys.host_key, dhchap_ctrl_secret=keys.ctrl_key)
    return data
