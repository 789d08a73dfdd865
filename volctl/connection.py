"""What Cinder's volume manager adds to every protocol's connection info (its
_parse_connection_options and the enforce_multipath line after it, cinder/volume/manager.py), for
a volume with no type, no QoS and no encryption, as every volctl volume is."""

from __future__ import annotations


def manager_options(connector: dict, access_mode: str) -> dict:
    return {
        "encrypted": False,
        "qos_specs": None,
        "access_mode": access_mode,
        "cacheable": False,
        "enforce_multipath": bool(connector.get("enforce_multipath", False)),
    }
