"""Space, as pure arithmetic: the admission of Cinder's capacity filter, made stricter, and what
doctor says of a thin pool. The numbers come from one `lvs` of the pool (lvm.ThinPool) or `vgs`
(lvm.VolumeGroup), and from what the inventory has provisioned; nothing here runs anything.

Cinder's rules (cinder/scheduler/sched_utils.py, filters/capacity_filter.py; thin-facts §1), in GiB:
reserved = floor(total × reserved_percentage / 100); a thin pool admits while
provisioned + requested ≤ (total − reserved) × max_over_subscription_ratio; a thick group while
requested ≤ free − reserved. volctl adds what Cinder never looks at: the pool's data and metadata
use against thin_pool_max_data_percent / thin_pool_max_metadata_percent, and its health.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from volctl.config import Settings
from volctl.lvm import ThinPool, VolumeGroup
from volctl.model import GIB

MIB = 1024**2
AUTO_INITIAL_RATIO = 20.0  # Cinder's INITIAL_AUTO_MOSR: "auto" with nothing provisioned yet
# doctor's lvextend hints grow the pool until today's use is at this share of the limit
HEADROOM = 0.8
_HEALTH = {
    "out_of_data": "out of data space: writes to every thin volume queue, then fail",
    "metadata_read_only": "its metadata is read-only (full or damaged): every thin volume is read-only",
    "failed": "failed: no I/O to any of its thin volumes",
    "partial": "partial: a physical volume under it is missing",
}


def _n(value: float) -> str:
    """A number as a message shows it: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def ratio(settings: Settings, pool: ThinPool, provisioned_gib: int) -> float:
    """max_over_subscription_ratio, Cinder's "auto" worked out as Cinder does (sched_utils
    calculate_max_over_subscription_ratio): 1 + provisioned / (used + 1), 20 while nothing is provisioned."""
    value = settings.max_over_subscription_ratio
    if value != "auto":
        return float(value)
    if provisioned_gib == 0:
        return AUTO_INITIAL_RATIO
    used = pool.size_bytes / GIB * (pool.data_percent or 0.0) / 100
    return 1 + provisioned_gib / (used + 1)


def limits(settings: Settings, pool: ThinPool, provisioned_gib: int) -> dict:
    """The pool's numbers as doctor --json and the refusals give them."""
    total = pool.size_bytes / GIB
    reserved = math.floor(total * settings.reserved_percentage / 100)
    mosr = ratio(settings, pool, provisioned_gib)
    return {"volume_group": pool.vg, "pool": pool.name, "size_bytes": pool.size_bytes, "data_percent": pool.data_percent,
            "metadata_percent": pool.metadata_percent, "metadata_size_bytes": pool.metadata_size_bytes,
            "health": pool.health or "ok", "provisioned_gib": provisioned_gib, "reserved_gib": reserved,
            "max_over_subscription_ratio": round(mosr, 4), "max_provisioned_gib": round((total - reserved) * mosr, 2),
            "thin_pool_max_data_percent": settings.thin_pool_max_data_percent,
            "thin_pool_max_metadata_percent": settings.thin_pool_max_metadata_percent}


def thin_refusal(settings: Settings, pool: ThinPool, provisioned_gib: int, requested_gib: int) -> str | None:
    """Why a thin pool cannot take requested_gib more, or None when it can."""
    where = f"thin pool {pool.vg}/{pool.name}"
    if pool.health:
        return f"{where} is {pool.health} (lv_health_status): {_HEALTH.get(pool.health, 'not healthy')}; volctl doctor"
    for label, used, key in (("data", pool.data_percent, "thin_pool_max_data_percent"),
                             ("metadata", pool.metadata_percent, "thin_pool_max_metadata_percent")):
        limit = getattr(settings, key)
        if used is not None and used >= limit:
            return f"{where}: {label} {_n(used)} % used, at or over {key} {_n(limit)} % (volctl doctor shows the lvextend that helps)"
    numbers = limits(settings, pool, provisioned_gib)
    after = provisioned_gib + requested_gib
    if after > numbers["max_provisioned_gib"]:
        return (f"{where}: provisioned {provisioned_gib} GiB + {requested_gib} GiB = {after} GiB would exceed "
                f"{_n(numbers['max_provisioned_gib'])} GiB = (pool {_n(pool.size_bytes / GIB)} GiB - reserved "
                f"{numbers['reserved_gib']} GiB at reserved_percentage {settings.reserved_percentage}) x "
                f"max_over_subscription_ratio {_n(numbers['max_over_subscription_ratio'])}")
    return None


def thick_refusal(settings: Settings, group: VolumeGroup, requested_gib: int) -> str | None:
    """Why a volume group cannot give requested_gib of new extents, or None when it can."""
    reserved = math.floor(group.size_bytes / GIB * settings.reserved_percentage / 100)
    usable = group.free_bytes / GIB - reserved
    if requested_gib <= usable:
        return None
    return (f"volume group {group.name}: {requested_gib} GiB needed, {_n(max(usable, 0))} GiB usable = free "
            f"{_n(group.free_bytes / GIB)} GiB - reserved {reserved} GiB (reserved_percentage {settings.reserved_percentage} "
            f"of {_n(group.size_bytes / GIB)} GiB)")


@dataclass(frozen=True)
class Finding:
    kind: str
    detail: str


def _grow(used: float, limit_percent: float, size: float) -> float:
    """How much larger the LV must be for today's use to sit at HEADROOM of the limit."""
    return used / (limit_percent * HEADROOM / 100) - size


def pool_findings(settings: Settings, pool: ThinPool, provisioned_gib: int) -> list[Finding]:
    """What is wrong with a present pool, each with the command that would help (never run by volctl:
    growing a pool takes the group's free space, which is the operator's call)."""
    target = f"{pool.vg}/{pool.name}"
    found: list[Finding] = []
    data_more = max(1, math.ceil(_grow(pool.size_bytes * (pool.data_percent or 0) / 100,
                                       settings.thin_pool_max_data_percent, pool.size_bytes) / GIB))
    meta_more = max(4, math.ceil(_grow(pool.metadata_size_bytes * (pool.metadata_percent or 0) / 100,
                                       settings.thin_pool_max_metadata_percent, pool.metadata_size_bytes) / MIB))
    grow_data = f"lvextend -L +{data_more}g {target}"
    grow_meta = f"lvextend --poolmetadatasize +{meta_more}m {target}"
    if pool.health:
        help_ = {"out_of_data": f"{grow_data} gives it room (the queued writes then go on)",
                 "metadata_read_only": f"with its volumes closed: lvchange -an {target}, lvconvert --repair {target}, "
                                       f"{grow_meta} (lvmthin(7))",
                 "failed": f"with its volumes closed: lvchange -an {target}, lvconvert --repair {target} (lvmthin(7))",
                 "partial": f"bring back the missing physical volume of {pool.vg} (pvs shows which)"}
        found.append(Finding("pool_health", f"thin pool {target} is {pool.health}: "
                             f"{_HEALTH.get(pool.health, 'not healthy')}; " + help_.get(pool.health, "lvs -a shows more")))
    if pool.data_percent is not None and pool.data_percent >= settings.thin_pool_max_data_percent:
        found.append(Finding("pool_data", f"thin pool {target}: data {_n(pool.data_percent)} % used, at or over "
                             f"thin_pool_max_data_percent {_n(settings.thin_pool_max_data_percent)} % (new thin LVs are "
                             f"refused); {grow_data} brings it to about {_n(settings.thin_pool_max_data_percent * HEADROOM)} %"))
    if pool.metadata_percent is not None and pool.metadata_percent >= settings.thin_pool_max_metadata_percent:
        found.append(Finding("pool_metadata", f"thin pool {target}: metadata {_n(pool.metadata_percent)} % used, at or "
                             f"over thin_pool_max_metadata_percent {_n(settings.thin_pool_max_metadata_percent)} % (full "
                             f"metadata needs an offline repair); {grow_meta} brings it to about "
                             f"{_n(settings.thin_pool_max_metadata_percent * HEADROOM)} %"))
    numbers = limits(settings, pool, provisioned_gib)
    if provisioned_gib > numbers["max_provisioned_gib"]:
        found.append(Finding("pool_oversubscribed", f"thin pool {target}: {provisioned_gib} GiB provisioned, over "
                             f"{_n(numbers['max_provisioned_gib'])} GiB allowed by max_over_subscription_ratio "
                             f"{_n(numbers['max_over_subscription_ratio'])} (new thin LVs are refused); {grow_data} or "
                             "deleting volumes makes room"))
    return found
