"""`volctl metrics`: the inventory and the host's space in Prometheus's text exposition format
(version 0.0.4), for node_exporter's textfile collector (thin-facts.md §7).

What it reads: a few columns of every volume and snapshot and one count of connections per
protocol (no volume hydrated), and one `lvs` per volume group (volctl/lvm.py Lvm.usage). An
LVM that cannot answer costs the space metrics of that group, never the inventory's:
`volctl_lvm_up` says which.

The format is written here, not through prometheus-client: importing that library (its
exposition module pulls in http.server and email) cost 90-175 ms on the host, as much as the
whole job is allowed at 1,000 volumes, and its write_to_textfile neither fsyncs nor (in
Debian 12's 0.16) removes its temporary file on an error. What volctl writes is gauges with
escaped label values, which the rules below cover; the tests read every document back with
prometheus-client's own parser. Ratios are 0 to 1 and sizes bytes, as Prometheus's naming
practice asks (not lvs's percent), and no sample has a timestamp: the textfile collector skips a
file that has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from volctl.model import GIB, TRANSIENT, SnapshotStatus, Status

if TYPE_CHECKING:
    from volctl.lvm import GroupUsage
    from volctl.service import VolumeService

PROTOCOLS = ("iscsi", "iser", "nvmet_tcp")


@dataclass
class Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _escaped(text: str) -> str:
    """Backslash and newline escaped, as HELP text and label values both need."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_value(text: str) -> str:
    return _escaped(text).replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render(families: list[Family]) -> str:
    """The text format: HELP (backslash and newline escaped), TYPE, then one line a sample."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escaped(family.help)}")
        lines.append(f"# TYPE {family.name} gauge")
        for labels, value in family.samples:
            text = ",".join(f'{key}="{_label_value(str(v))}"' for key, v in labels.items())
            lines.append(f"{family.name}{{{text}}} {_number(value)}" if text else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


class Collector:
    def __init__(self, service: VolumeService, stale_after: float):
        self.service = service
        self.settings = service.settings
        self.stale_after = stale_after

    def collect(self) -> list[Family]:
        from volctl import doctor
        from volctl.errors import VolctlError

        svc, settings = self.service, self.settings
        inv = svc.inventory(write=False)
        legacy = settings.target_protocol if settings.target_protocol in ("iscsi", "iser") else "iscsi"
        volumes = inv.volume_facts(legacy)
        snapshots = inv.snapshot_facts()
        now = datetime.now(timezone.utc)
        booted = doctor.booted_at(str(svc.host_root / "proc" / "stat"))

        by_status = Family("volctl_volumes", "Volumes in the inventory, by status.")
        stuck = Family("volctl_volumes_stuck", "Volumes in a busy status with no volctl working on it: longer than "
                       f"{self.stale_after:g} s, or set before the host booted (what volctl doctor reports as stuck).")
        for status in Status:
            by_status.add(sum(v.status == status for v in volumes), status=status.value)
        for status in sorted(TRANSIENT):
            stuck.add(sum(v.status == status and doctor.stale(v.status, v.updated_at, booted, self.stale_after, now)
                          is not None for v in volumes), status=str(status))
        snaps = Family("volctl_snapshots", "Snapshots in the inventory, by status.")
        for status in SnapshotStatus:
            snaps.add(sum(s.status == status for s in snapshots), status=status.value)
        exports = Family("volctl_exports", "Volumes with a recorded export, by protocol.")
        connections = Family("volctl_connections", "Hosts allowed on an export (connect), by the export's protocol.")
        allowed = inv.connections_by_protocol(legacy)
        for protocol in PROTOCOLS:
            exports.add(sum(v.export_protocol == protocol for v in volumes), protocol=protocol)
            connections.add(allowed.get(protocol, 0), protocol=protocol)

        groups = sorted({settings.volume_group} | {v.volume_group for v in volumes} | {s.volume_group for s in snapshots})
        up = Family("volctl_lvm_up", "1 when lvs answered for the volume group (its space metrics are below), else 0.")
        provisioned = Family("volctl_provisioned_bytes", "What the inventory has promised in the volume group: "
                             "every volume's and snapshot's size.")
        allocated = Family("volctl_allocated_bytes", "What the inventory's LVs hold in the volume group: a thick LV its "
                           "size, a thin LV its size times its data use.")
        vg_size = Family("volctl_volume_group_size_bytes", "The volume group's size.")
        vg_free = Family("volctl_volume_group_free_bytes", "The volume group's unallocated space.")
        pool_families = _pool_families()
        for vg in groups:
            promised = sum(v.size_gib for v in volumes if v.volume_group == vg) + \
                sum(s.size_gib for s in snapshots if s.volume_group == vg)
            provisioned.add(promised * GIB, volume_group=vg)
            try:
                usage = svc.lvm(vg).usage()
            except VolctlError:
                up.add(0, volume_group=vg)
                continue
            up.add(1, volume_group=vg)
            ours = {v.lv_name for v in volumes if v.volume_group == vg} | {s.lv_name for s in snapshots if s.volume_group == vg}
            allocated.add(sum(held for name, held in usage.held_bytes.items() if name in ours), volume_group=vg)
            vg_size.add(usage.group.size_bytes, volume_group=vg)
            vg_free.add(usage.group.free_bytes, volume_group=vg)
            self._pools(usage, vg, promised, pool_families)
        return [by_status, stuck, snaps, exports, connections, up, provisioned, allocated, vg_size, vg_free,
                *pool_families.values()]

    def _pools(self, usage: GroupUsage, vg: str, promised_gib: int, families: dict[str, Family]) -> None:
        from volctl import space

        for pool in usage.pools:
            labels = {"volume_group": vg, "pool": pool.name}
            families["size"].add(pool.size_bytes, **labels)
            families["metadata_size"].add(pool.metadata_size_bytes, **labels)
            if pool.data_percent is not None:  # an inactive pool shows no use: no sample rather than a made-up 0
                families["data"].add(pool.data_percent / 100, **labels)
            if pool.metadata_percent is not None:
                families["metadata"].add(pool.metadata_percent / 100, **labels)
            families["healthy"].add(0 if pool.health else 1, **labels)
            if vg == self.settings.volume_group and pool.name == self.settings.thin_pool:
                families["provisioned"].add(promised_gib * GIB, **labels)
                if pool.size_bytes:
                    families["oversubscription"].add(promised_gib * GIB / pool.size_bytes, **labels)
                families["max_oversubscription"].add(space.ratio(self.settings, pool, promised_gib), **labels)


def _pool_families() -> dict[str, Family]:
    return {
        "size": Family("volctl_thin_pool_size_bytes", "The thin pool's data size."),
        "data": Family("volctl_thin_pool_data_ratio", "The thin pool's data use, 0 to 1 (lvs data_percent / 100)."),
        "metadata": Family("volctl_thin_pool_metadata_ratio",
                           "The thin pool's metadata use, 0 to 1 (lvs metadata_percent / 100)."),
        "metadata_size": Family("volctl_thin_pool_metadata_size_bytes", "The thin pool's metadata size."),
        "healthy": Family("volctl_thin_pool_healthy", "1 when lvm2 reports the pool healthy (lv_health_status empty), "
                          "else 0 (out_of_data, metadata_read_only, failed, partial)."),
        "provisioned": Family("volctl_thin_pool_provisioned_bytes", "What the inventory has promised in volctl's thin pool."),
        "oversubscription": Family("volctl_thin_pool_oversubscription_ratio",
                                   "Provisioned over the pool's size (1 = fully promised)."),
        "max_oversubscription": Family("volctl_thin_pool_max_oversubscription_ratio",
                                       "max_over_subscription_ratio as the admission applies it (\"auto\" worked out)."),
    }
