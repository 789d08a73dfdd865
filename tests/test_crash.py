"""Crashes: a real volctl process is SIGKILLed at every step boundary of every flow, once per
target helper (tests/worlds.py): at each helper step (tests/helpersteps.py) and each LVM program,
with its effect either not yet made ("before") or made but never answered ("after"). Then
`volctl doctor` must see exactly the drift the crash left, `doctor --repair` must settle it, and a
last `doctor` must be clean except for what is documented as left to the operator.

The host is shared by the processes through files (tests/fakebin.py's state file, the shared
rtslib's tree, the fake helper's directory); setup steps run in-process on the same inventory and
host, to keep the file quick.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest
from worlds import HELPERS, TRAITS, ProcessWorld

from volctl.doctor import Doctor
from volctl.errors import NotFound
from volctl.lvm import GIB
from volctl.model import AttachStatus, Status

VOL = "3f2c6a1e-8b7d-4c5e-9a0f-1b2c3d4e5f60"
NAME = "v1"
INSTANCE = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
INITIATOR = "iqn.1994-05.com.redhat:client1"
LV = f"volume-{VOL}"
LVM_STEPS = ("lvcreate", "lvs", "dd", "lvremove", "lvextend")

# drift kinds
STUCK, TU, SC, AU, TM = "stuck", "target_unrecorded", "saved_config", "acl_unrecorded", "target_missing"


@dataclass(frozen=True)
class Flow:
    name: str
    command: tuple[str, ...]
    helper_flow: str | None  # the helper's steps: tests/worlds.py Traits.flow_steps
    lvm: tuple[str, ...]  # the LVM programs after them
    busy: str | None  # the transitional status the flow claims first, if any
    settled: str  # the status `doctor --repair` leaves the volume in
    # Steps before which volctl writes the inventory after the previous step, so "before" this
    # step is a boundary of its own (elsewhere "before" a step is "after" the previous one).
    written_before: tuple[str, ...] = ()

    def steps(self, traits) -> list[str]:
        return [*(traits.flow_steps(self.helper_flow) if self.helper_flow else []), *self.lvm]


FLOWS = {
    "create": Flow("create", ("create", "--size", "1", "--name", NAME, "--id", VOL), None, ("lvcreate",),
                   Status.CREATING, Status.ERROR),
    "export": Flow("export", ("export", NAME), "export", (), None, Status.AVAILABLE),
    "connect": Flow("connect", ("connect", NAME, "--initiator", INITIATOR, "--json"), "connect-fresh", (),
                    None, Status.AVAILABLE, written_before=("allow",)),  # the export is recorded before the ACL
    "detach": Flow("detach", ("detach", NAME), "detach", (), Status.DETACHING, Status.IN_USE),
    "delete": Flow("delete", ("delete", NAME), "delete-exported", ("lvs", "dd", "lvremove"),
                   Status.DELETING, Status.ERROR_DELETING),
    "extend": Flow("extend", ("extend", NAME, "--size", "2"), None, ("lvextend",), Status.EXTENDING, Status.AVAILABLE),
}


def boundaries(flow: Flow, traits) -> list[tuple[str, str]]:
    """Every point a kill can fall on: before the first step (the claim made, nothing done on the
    host), after each step (done on the host, never answered), and before a step that follows an
    inventory write."""
    found = []
    for i, step in enumerate(flow.steps(traits)):
        if i == 0 or step in flow.written_before:
            found.append((step, "before"))
        found.append((step, "after"))
    return found


# What `doctor --stale-after 0` must report after a kill at (flow, step, when): the drift kinds,
# whichever helper ran the step.
_EXPORT_STEPS = {
    ("create_export", "before"): set(),  # credentials generated and stored, nothing on the host
    ("create_export", "after"): {TU, SC},  # a target nobody recorded, not persisted
    ("targets", "after"): {TU, SC},  # lioadm's check that create made it
}
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    ("create", "lvcreate", "before"): {STUCK},
    ("create", "lvcreate", "after"): {STUCK},  # the LV is there; a creating volume may or may not have one
    **{("export", step, when): kinds for (step, when), kinds in _EXPORT_STEPS.items()},
    ("export", "persist", "after"): {TU},
    **{("connect", step, when): kinds for (step, when), kinds in _EXPORT_STEPS.items()},
    ("connect", "allow", "before"): {SC},  # exported and recorded, not persisted yet
    ("connect", "allow", "after"): {AU, SC},  # one persist covers target and host
    ("connect", "persist", "after"): {AU},
    ("detach", "remove_export", "before"): {STUCK},
    ("detach", "remove_export", "after"): {STUCK, TM, SC},
    ("detach", "persist", "after"): {STUCK, TM},
    ("delete", "targets", "before"): {STUCK},  # helpers that list first (fake, lioadm)
    ("delete", "targets", "after"): {STUCK},
    ("delete", "remove_export", "before"): {STUCK},  # rtslib: configfs says the target is there
    ("delete", "remove_export", "after"): {STUCK, TM, SC},
    ("delete", "persist", "after"): {STUCK, TM},
    ("delete", "lvs", "after"): {STUCK, TM},
    ("delete", "dd", "after"): {STUCK, TM},
    ("delete", "lvremove", "after"): {STUCK, TM},  # the LV is gone: expected of a deleting volume
    ("extend", "lvextend", "before"): {STUCK},
    ("extend", "lvextend", "after"): {STUCK},
}
# What `doctor --repair` documents as left to the operator (repair None): a volume whose delete was
# cut after its target went keeps a stale export record (status error_deleting, not exportable)
# until `volctl delete` runs again, which the test then does.
LEFT_TO_OPERATOR = {key: {TM} for key, kinds in EXPECTED.items() if key[0] == "delete" and TM in kinds}

CASES = [
    pytest.param(helper, name, step, when, id=f"{helper}-{name}-{step}-{when}")
    for helper in HELPERS for name, flow in FLOWS.items() for step, when in boundaries(flow, TRAITS[helper])
]


def test_every_step_boundary_is_covered():
    """Each helper's boundaries have an expectation, and every expectation is some helper's."""
    seen = set()
    for helper in HELPERS:
        found = {(name, step, when) for name, flow in FLOWS.items() for step, when in boundaries(flow, TRAITS[helper])}
        assert found <= set(EXPECTED), found - set(EXPECTED)
        seen |= found
    assert seen == set(EXPECTED)
    counts = {helper: len([c for c in CASES if c.values[0] == helper]) for helper in HELPERS}
    assert counts == {"fake": 22, "lioadm": 24, "rtslib": 21}


# -- setup, in-process on the shared inventory and host ------------------------------------------

def prepare(pw: ProcessWorld, flow: str) -> None:
    if flow == "create":
        return
    with pw.fb.service() as svc:
        svc.create(size=1, name=NAME, volume_id=VOL)
        if flow == "detach":
            svc.reserve(NAME)
            svc.connect(NAME, {"initiator": INITIATOR})
            svc.attach(NAME, instance=INSTANCE, host="compute1")
        elif flow == "delete":
            svc.export(NAME)


def drift_kinds(proc) -> list[str]:
    return sorted(d["kind"] for d in proc.json()["drift"])


def assert_rows_whole(pw: ProcessWorld) -> None:
    """The inventory is sound and whole (fakebin.FakeBin.check_inventory), and the volume's history
    reads back from its creation, every transition to a known status."""
    pw.fb.check_inventory()
    with pw.fb.service() as svc:
        events = svc.history(VOL)
    assert events and events[0].action == "create"
    for e in events:
        assert e.kind in ("transition", "command", "note")
        if e.kind == "transition":
            assert e.to_status in set(Status) | {"deleted"}


def show(pw: ProcessWorld):
    with pw.fb.service() as svc:
        try:
            return svc.show(VOL)
        except NotFound:
            return None


def hang_env(pw: ProcessWorld, step: str, when: str, marker) -> dict:
    if step in LVM_STEPS:
        return {"FAKEHOST_HANG": step, "FAKEHOST_HANG_WHEN": when, "FAKEHOST_HANG_MARKER": str(marker)}
    return pw.hang_env(step, when, marker)


# -- the crashes ------------------------------------------------------------------------------

@pytest.mark.parametrize("helper, flow, step, when", CASES)
def test_kill_at_step_boundary(proc_world, helper, flow, step, when):
    pw, fb, spec = proc_world, proc_world.fb, FLOWS[flow]
    target = pw.target_for(LV)
    prepare(pw, flow)
    marker = fb.marker()
    found = fb.killed_with(list(spec.command), hang_env(pw, step, when, marker), marker)
    assert pw.hung_at(found) == step
    assert_rows_whole(pw)
    volume = show(pw)
    assert volume is not None
    if spec.busy is not None:
        assert volume.status == spec.busy  # the claim was made and nobody settled it

    # 1. doctor sees exactly what the crash left (doctor, its repair and the operator's next step
    #    run in this process, on the host and inventory the killed process left: quicker)
    expected = EXPECTED[(flow, step, when)]
    seen = pw.cli("doctor", "--json", "--stale-after", "0")
    report = seen.json()
    assert set(drift_kinds(seen)) == expected, seen
    assert len(drift_kinds(seen)) == len(expected), seen  # one finding per problem
    assert seen.exit_code == (0 if not expected else 5), seen
    assert report["clean"] is (not expected)
    for d in report["drift"]:
        if d["kind"] == STUCK:
            assert (d["subject"], d["volume_name"]) == (spec.busy, NAME), d
        if d["kind"] in (TU, TM):
            assert d["subject"] == target, d
        if d["kind"] == AU:
            assert d["subject"] == INITIATOR, d
        if d["kind"] == SC:
            assert d["subject"] == pw.persisted_to, d
    assert [n for n in report["notes"] if not n.startswith("lvm_udev:")] == []

    # 2. repair, 3. doctor again: clean, or only what is left to the operator
    left = LEFT_TO_OPERATOR.get((flow, step, when), set())
    repaired = pw.cli("doctor", "--repair", "--json", "--stale-after", "0")
    assert {d["kind"] for d in repaired.json()["drift"] if not d["repaired"]} == left, repaired
    assert all(d["error"] is None for d in repaired.json()["drift"]), repaired
    after = pw.cli("doctor", "--json", "--stale-after", "0")
    assert set(drift_kinds(after)) == left, after
    assert all(d["repair"] is None for d in after.json()["drift"]), after
    assert after.exit_code == (5 if left else 0), after
    assert_rows_whole(pw)

    volume = show(pw)
    host, live = fb.host(), pw.live()
    assert volume.status == spec.settled
    assert volume.status not in (Status.CREATING, Status.ATTACHING, Status.DETACHING, Status.DELETING, Status.EXTENDING)
    if flow == "extend":
        assert volume.size * GIB == host.lvs[("cinder-volumes", LV)]["size"]
        assert volume.size == (2 if when == "after" else 1)
    if flow == "detach":
        # Cinder's roll_detaching: the attachment is still live, so the volume is in-use and exported again
        assert (volume.attach_status, len(volume.live_attachments)) == (AttachStatus.ATTACHED, 1)
        assert live == {target: {INITIATOR}} == pw.persisted()
    if flow in ("export", "connect"):
        assert (target in live) == bool(volume.provider_location)
        if target in live:
            assert live[target] == {c.initiator for c in volume.connections}
        assert pw.persisted() in (None, live)

    # 4. the operator's next step works from here
    if flow in ("create", "delete"):
        deleted = pw.cli("delete", NAME)
        assert deleted.exit_code == 0, deleted
        assert show(pw) is None
        assert ("cinder-volumes", LV) not in fb.host().lvs and target not in pw.live()
        with fb.service() as svc:
            assert svc.history(VOL)[-1].to_status == "deleted"
            assert Doctor(svc, stale_after=0).examine().drift == ()  # in-process: the same check, quicker
    fb.assert_never_locked()


def test_fresh_crash_is_not_stuck_yet(proc_world):
    """Without --stale-after 0 a volume that just went into a transitional state is not called stuck."""
    fb = proc_world.fb
    prepare(proc_world, "extend")
    fb.killed_at(["extend", NAME, "--size", "2"], "lvextend", "after")
    seen = fb.run("doctor", "--json")
    assert seen.exit_code == 0 and seen.json()["drift"] == [], seen
    stale = fb.run("doctor", "--json", "--stale-after", "0")
    assert drift_kinds(stale) == [STUCK], stale


def test_doctor_leaves_a_running_operation_alone(proc_world):
    """A volume whose lock a live volctl holds is in progress, not stuck: doctor says so and does not
    touch it, even with --repair."""
    pw, fb = proc_world, proc_world.fb
    prepare(pw, "delete")
    marker = fb.root / "running.json"
    popen = fb.start("delete", NAME, env={"FAKEHOST_HANG": "dd", "FAKEHOST_HANG_MARKER": str(marker)})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert popen.poll() is None, popen.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        seen = fb.run("doctor", "--repair", "--json", "--stale-after", "0")
        report = seen.json()
        assert [d for d in report["drift"] if d["volume_name"] == NAME] == [], seen
        assert any(NAME in n and str(popen.pid) in n and "in progress" in n for n in report["notes"]), seen
        assert show(pw).status == Status.DELETING
    finally:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.communicate()
    seen = fb.run("doctor", "--json", "--stale-after", "0")
    assert set(drift_kinds(seen)) == {STUCK, TM}, seen
    fb.assert_never_locked()
