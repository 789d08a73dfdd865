"""Crashes in the snapshot flows (issue 14): a real volctl process SIGKILLed at every external step
of snapshot create and delete, create --snapshot, a thick clone and revert, with the fake tool's
effect either not made yet ("before") or made and never answered ("after"). `doctor --repair` must
report exactly what the kill left and settle it, a last `doctor` must be clean, and the operator's
next step must work. tests/test_crash.py does the same for the volume flows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fakebin import FakeBin, fakebin, fakebin_pycache  # noqa: F401  (fixtures)
from volctl.doctor import Doctor
from volctl.model import SnapshotStatus, Status

VOL = "3f2c6a1e-8b7d-4c5e-9a0f-1b2c3d4e5f60"
NEW = "7d1e2f30-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
NAME, NEW_NAME, SNAP = "v1", "v2", "s1"
VG = "cinder-volumes"

# drift kinds
STUCK, SSTUCK, CLONE = "stuck", "snapshot_stuck", "clone_snapshot_left"


@dataclass(frozen=True)
class Flow:
    command: tuple[str, ...]
    steps: tuple[str, ...]  # FAKEHOST_HANG specs, in the order the flow runs them
    snapshot_first: bool  # set up with a snapshot of v1 already made


FLOWS = {
    "snapshot-create": Flow(("snapshot", "create", NAME, "--name", SNAP), ("lvs", "lvcreate"), False),
    "snapshot-delete": Flow(("snapshot", "delete", SNAP), ("lvs", "dd", "lvremove"), True),
    "from-snapshot": Flow(("create", "--snapshot", SNAP, "--name", NEW_NAME, "--id", NEW),
                          ("lvs", "lvcreate", "lvchange", "dd"), True),
    "clone": Flow(("create", "--source-volume", NAME, "--name", NEW_NAME, "--id", NEW),
                  ("lvs", "lvcreate", "lvcreate@2", "lvchange", "dd", "lvs@2", "dd@2", "lvremove"), False),
    "revert": Flow(("revert", NAME, "--snapshot", SNAP),
                   ("lvs", "lvconvert", "lvchange", "lvchange@2", "lvcreate"), True),
}

_CLONE_WITH_TEMPORARY = {STUCK, CLONE}
# What `doctor --stale-after 0` must report after a kill at (flow, step, when).
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    ("snapshot-create", "lvs", "before"): {SSTUCK},  # the row is made first, in 'creating'
    ("snapshot-create", "lvs", "after"): {SSTUCK},
    ("snapshot-create", "lvcreate", "after"): {SSTUCK},
    ("snapshot-delete", "lvs", "before"): {SSTUCK},
    ("snapshot-delete", "lvs", "after"): {SSTUCK},
    ("snapshot-delete", "dd", "after"): {SSTUCK},
    ("snapshot-delete", "lvremove", "after"): {SSTUCK},  # its LV is gone, as a deleting one's may be
    **{("from-snapshot", step, when): {STUCK} for step, when in
       [("lvs", "before"), ("lvs", "after"), ("lvcreate", "after"), ("lvchange", "after"), ("dd", "after")]},
    ("clone", "lvs", "before"): {STUCK},
    ("clone", "lvs", "after"): {STUCK},
    **{("clone", step, "after"): _CLONE_WITH_TEMPORARY for step in ("lvcreate", "lvcreate@2", "lvchange", "dd", "lvs@2", "dd@2")},
    ("clone", "lvremove", "after"): {STUCK},  # the temporary snapshot is gone already
    ("revert", "lvs", "before"): set(),  # the thin check comes before the claims: nothing changed
    ("revert", "lvs", "after"): set(),
    ("revert", "lvconvert", "before"): {STUCK, SSTUCK},
    **{("revert", step, "after"): {STUCK, SSTUCK} for step in ("lvconvert", "lvchange", "lvchange@2", "lvcreate")},
}


def boundaries(flow: Flow) -> list[tuple[str, str]]:
    """Before the first step and before the merge (both follow an inventory write), and after each."""
    found = []
    for i, step in enumerate(flow.steps):
        if i == 0 or (flow.command[0] == "revert" and step == "lvconvert"):
            found.append((step, "before"))
        found.append((step, "after"))
    return found


CASES = [pytest.param(name, step, when, id=f"{name}-{step}-{when}")
         for name, flow in FLOWS.items() for step, when in boundaries(flow)]


def test_every_step_boundary_is_covered():
    assert {(name, step, when) for name, flow in FLOWS.items() for step, when in boundaries(flow)} == set(EXPECTED)


def prepare(fb: FakeBin, flow: Flow) -> None:
    with fb.service() as svc:
        svc.create(size=1, name=NAME, volume_id=VOL)
        if flow.snapshot_first:
            svc.snapshot_create(NAME, name=SNAP)


def drift_kinds(proc) -> list[str]:
    return sorted(d["kind"] for d in proc.json()["drift"])


def state(fb: FakeBin):
    with fb.service() as svc:
        inv = svc.inventory(write=False)
        return inv.find(VOL), inv.find(NEW), inv.find_snapshot(SNAP)


@pytest.mark.parametrize("flow, step, when", CASES)
def test_kill_at_step_boundary(fakebin, flow, step, when):
    fb, spec = fakebin, FLOWS[flow]
    prepare(fb, spec)
    marker = fb.killed_at(list(spec.command), step, when)
    assert marker["argv"][0] == step.split("@")[0]
    fb.check_inventory()

    # what doctor finds is in the repair's report (it examines, then repairs what it found), so
    # one process less per case: tests/test_crash.py checks the plain report against the same host
    expected = EXPECTED[(flow, step, when)]
    repaired = fb.run("doctor", "--repair", "--json", "--stale-after", "0")
    assert drift_kinds(repaired) == sorted(expected), repaired  # one finding per problem
    assert all(d["repaired"] and d["error"] is None for d in repaired.json()["drift"]), repaired
    after = fb.run("doctor", "--json", "--stale-after", "0")
    assert after.exit_code == 0 and after.json()["drift"] == [], after
    fb.check_inventory()

    volume, new, snapshot = state(fb)
    host = fb.host()
    assert volume.status == Status.AVAILABLE  # every flow here leaves v1 usable
    assert not any(name.startswith("clone-snap-") for _, name in host.lvs), host.lvs
    if flow == "snapshot-create":
        assert snapshot.status == SnapshotStatus.ERROR
    if flow == "snapshot-delete":
        assert snapshot.status == SnapshotStatus.ERROR_DELETING
    if flow in ("from-snapshot", "clone"):
        assert new.status == Status.ERROR
    if flow == "revert" and expected:
        merged = step != "lvconvert" or when == "after"
        remade = (step, when) == ("lvcreate", "after")
        # killed before the merge, or after the snapshot was made again: available; in between, its
        # LV was consumed by the merge and it is 'error'
        assert snapshot.status == (SnapshotStatus.ERROR if merged and not remade else SnapshotStatus.AVAILABLE)

    # the operator's next step works from here: the leftovers go, and then the volume (in-process:
    # the same code as the commands, quicker)
    with fb.service() as svc:
        if new is not None:
            svc.delete(NEW_NAME)
        if snapshot is not None:
            svc.snapshot_delete(SNAP)
        svc.delete(NAME)
        assert Doctor(svc, stale_after=0).examine().drift == ()
    host = fb.host()
    assert not [key for key in host.lvs if key[0] == VG], host.lvs
    fb.assert_never_locked()
