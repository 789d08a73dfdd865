"""Crashes: a real volctl process is SIGKILLed at every external step of every flow, with the fake
tool's effect either not yet made ("before") or made but never answered ("after"). Then
`volctl doctor` must see exactly the drift the crash left, `doctor --repair` must settle it, and a
last `doctor` must be clean except for what is documented as left to the operator.

The fake host (tests/fakebin.py) is shared by the processes through a JSON state file; setup
steps run in-process on the same inventory and host, to keep the file quick.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

from fakebin import FakeBin, fakebin, fakebin_pycache  # noqa: F401  (fixtures)
from volctl.doctor import Doctor
from volctl.errors import NotFound
from volctl.lvm import GIB
from volctl.model import AttachStatus, Status

VOL = "3f2c6a1e-8b7d-4c5e-9a0f-1b2c3d4e5f60"
NAME = "v1"
INSTANCE = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
INITIATOR = "iqn.1994-05.com.redhat:client1"
LV = f"volume-{VOL}"
IQN = f"iqn.2010-10.org.openstack:{LV}"

# drift kinds
STUCK, TU, SC, AU, TM = "stuck", "target_unrecorded", "saved_config", "acl_unrecorded", "target_missing"


@dataclass(frozen=True)
class Flow:
    name: str
    command: tuple[str, ...]
    steps: tuple[str, ...]  # FAKEHOST_HANG specs, in the order the flow runs them
    busy: str | None  # the transitional status the flow claims first, if any
    settled: str  # the status `doctor --repair` leaves the volume in
    # Steps before which volctl writes the inventory after the previous step, so "before" this
    # step is a boundary of its own (elsewhere "before" a step is "after" the previous one).
    written_before: tuple[str, ...] = ()


FLOWS = {
    "create": Flow("create", ("create", "--size", "1", "--name", NAME, "--id", VOL), ("lvcreate",), Status.CREATING, Status.ERROR),
    "export": Flow("export", ("export", NAME),
                   ("cinder-rtstool create", "cinder-rtstool get-targets", "cinder-rtstool save"),
                   None, Status.AVAILABLE),
    "connect": Flow("connect", ("connect", NAME, "--initiator", INITIATOR, "--json"),
                    ("cinder-rtstool create", "cinder-rtstool get-targets", "cinder-rtstool add-initiator",
                     "cinder-rtstool save"),
                    None, Status.AVAILABLE, written_before=("cinder-rtstool add-initiator",)),  # the export is recorded
    "detach": Flow("detach", ("detach", NAME), ("cinder-rtstool delete", "cinder-rtstool save"), Status.DETACHING, Status.IN_USE),
    "delete": Flow("delete", ("delete", NAME),
                   ("cinder-rtstool get-targets", "cinder-rtstool delete", "cinder-rtstool save", "lvs", "dd", "lvremove"),
                   Status.DELETING, Status.ERROR_DELETING),
    "extend": Flow("extend", ("extend", NAME, "--size", "2"), ("lvextend",), Status.EXTENDING, Status.AVAILABLE),
}


def boundaries(flow: Flow) -> list[tuple[str, str]]:
    """Every point a kill can fall on: before the first step (the claim made, nothing done on the
    host), after each step (done on the host, never answered), and before a step that follows an
    inventory write."""
    found = []
    for i, step in enumerate(flow.steps):
        if i == 0 or step in flow.written_before:
            found.append((step, "before"))
        found.append((step, "after"))
    return found


# What `doctor --stale-after 0` must report after a kill at (flow, step, when): the drift kinds.
_EXPORT_STEPS = {
    ("cinder-rtstool create", "before"): set(),  # CHAP generated and stored, nothing on the host
    ("cinder-rtstool create", "after"): {TU, SC},  # a target nobody recorded, not saved
    ("cinder-rtstool get-targets", "after"): {TU, SC},
}
EXPECTED: dict[tuple[str, str, str], set[str]] = {
    ("create", "lvcreate", "before"): {STUCK},
    ("create", "lvcreate", "after"): {STUCK},  # the LV is there; a creating volume may or may not have one
    **{("export", step, when): kinds for (step, when), kinds in _EXPORT_STEPS.items()},
    ("export", "cinder-rtstool save", "after"): {TU},
    **{("connect", step, when): kinds for (step, when), kinds in _EXPORT_STEPS.items()},
    ("connect", "cinder-rtstool add-initiator", "before"): {SC},  # exported and recorded, not saved yet
    ("connect", "cinder-rtstool add-initiator", "after"): {AU, SC},  # one save covers target and ACL
    ("connect", "cinder-rtstool save", "after"): {AU},
    ("detach", "cinder-rtstool delete", "before"): {STUCK},
    ("detach", "cinder-rtstool delete", "after"): {STUCK, TM, SC},
    ("detach", "cinder-rtstool save", "after"): {STUCK, TM},
    ("delete", "cinder-rtstool get-targets", "before"): {STUCK},
    ("delete", "cinder-rtstool get-targets", "after"): {STUCK},
    ("delete", "cinder-rtstool delete", "after"): {STUCK, TM, SC},
    ("delete", "cinder-rtstool save", "after"): {STUCK, TM},
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
    pytest.param(name, step, when, id=f"{name}-{step.replace('cinder-rtstool ', 'rtstool-').replace(' ', '-')}-{when}")
    for name, flow in FLOWS.items() for step, when in boundaries(flow)
]


def test_every_step_boundary_is_covered():
    assert {(name, step, when) for name, flow in FLOWS.items() for step, when in boundaries(flow)} == set(EXPECTED)
    assert len(CASES) == 24


# -- setup, in-process on the shared inventory and host ------------------------------------------

def prepare(fb: FakeBin, flow: str) -> None:
    if flow == "create":
        return
    with fb.service() as svc:
        svc.create(size=1, name=NAME, volume_id=VOL)
        if flow == "detach":
            svc.reserve(NAME)
            svc.connect(NAME, {"initiator": INITIATOR})
            svc.attach(NAME, instance=INSTANCE, host="compute1")
        elif flow == "delete":
            svc.export(NAME)


def drift_kinds(proc) -> list[str]:
    return sorted(d["kind"] for d in proc.json()["drift"])


def assert_rows_whole(fb: FakeBin) -> None:
    """The inventory is sound and whole (fakebin.FakeBin.check_inventory), and the volume's history
    reads back from its creation, every transition to a known status."""
    fb.check_inventory()
    with fb.service() as svc:
        events = svc.history(VOL)
    assert events and events[0].action == "create"
    for e in events:
        assert e.kind in ("transition", "command", "note")
        if e.kind == "transition":
            assert e.to_status in set(Status) | {"deleted"}


def show(fb: FakeBin):
    with fb.service() as svc:
        try:
            return svc.show(VOL)
        except NotFound:
            return None


# -- the crashes ------------------------------------------------------------------------------

@pytest.mark.parametrize("flow, step, when", CASES)
def test_kill_at_step_boundary(fakebin, flow, step, when):
    fb, spec = fakebin, FLOWS[flow]
    prepare(fb, flow)
    marker = fb.killed_at(list(spec.command), step, when)
    assert marker["argv"][: len(step.split("@")[0].split())] == step.split("@")[0].split()
    assert_rows_whole(fb)
    volume = show(fb)
    assert volume is not None
    if spec.busy is not None:
        assert volume.status == spec.busy  # the claim was made and nobody settled it

    # 1. doctor sees exactly what the crash left
    expected = EXPECTED[(flow, step, when)]
    seen = fb.run("doctor", "--json", "--stale-after", "0")
    report = seen.json()
    assert set(drift_kinds(seen)) == expected, seen
    assert len(drift_kinds(seen)) == len(expected), seen  # one finding per problem
    assert seen.exit_code == (0 if not expected else 5), seen
    assert report["clean"] is (not expected)
    for d in report["drift"]:
        if d["kind"] == STUCK:
            assert (d["subject"], d["volume_name"]) == (spec.busy, NAME), d
        if d["kind"] in (TU, TM):
            assert d["subject"] == IQN, d
        if d["kind"] == AU:
            assert d["subject"] == INITIATOR, d
    assert [n for n in report["notes"] if not n.startswith("lvm_udev:")] == []

    # 2. repair, 3. doctor again: clean, or only what is left to the operator
    left = LEFT_TO_OPERATOR.get((flow, step, when), set())
    repaired = fb.run("doctor", "--repair", "--json", "--stale-after", "0")
    assert {d["kind"] for d in repaired.json()["drift"] if not d["repaired"]} == left, repaired
    assert all(d["error"] is None for d in repaired.json()["drift"]), repaired
    after = fb.run("doctor", "--json", "--stale-after", "0")
    assert set(drift_kinds(after)) == left, after
    assert all(d["repair"] is None for d in after.json()["drift"]), after
    assert after.exit_code == (5 if left else 0), after
    assert_rows_whole(fb)

    volume = show(fb)
    host = fb.host()
    assert volume.status == spec.settled
    assert volume.status not in (Status.CREATING, Status.ATTACHING, Status.DETACHING, Status.DELETING, Status.EXTENDING)
    if flow == "extend":
        assert volume.size * GIB == host.lvs[("cinder-volumes", LV)]["size"]
        assert volume.size == (2 if when == "after" else 1)
    if flow == "detach":
        # Cinder's roll_detaching: the attachment is still live, so the volume is in-use and exported again
        assert (volume.attach_status, len(volume.live_attachments)) == (AttachStatus.ATTACHED, 1)
        assert set(host.targets[IQN].acls) == {INITIATOR}
    if flow in ("export", "connect"):
        assert (IQN in host.targets) == bool(volume.provider_location)
        if IQN in host.targets:
            assert set(host.targets[IQN].acls) == {c.initiator for c in volume.connections}

    # 4. the operator's next step works from here
    if flow in ("create", "delete"):
        fb.ok("delete", NAME)
        assert show(fb) is None
        host = fb.host()
        assert ("cinder-volumes", LV) not in host.lvs and IQN not in host.targets
        with fb.service() as svc:
            assert svc.history(VOL)[-1].to_status == "deleted"
            assert Doctor(svc, stale_after=0).examine().drift == ()  # in-process: the same check, quicker
    fb.assert_never_locked()


def test_fresh_crash_is_not_stuck_yet(fakebin):
    """Without --stale-after 0 a volume that just went into a transitional state is not called stuck."""
    fb = fakebin
    prepare(fb, "extend")
    fb.killed_at(["extend", NAME, "--size", "2"], "lvextend", "after")
    seen = fb.run("doctor", "--json")
    assert seen.exit_code == 0 and seen.json()["drift"] == [], seen
    stale = fb.run("doctor", "--json", "--stale-after", "0")
    assert drift_kinds(stale) == [STUCK], stale


def test_doctor_leaves_a_running_operation_alone(fakebin):
    """A volume whose lock a live volctl holds is in progress, not stuck: doctor says so and does not
    touch it, even with --repair."""
    fb = fakebin
    prepare(fb, "delete")
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
        assert show(fb).status == Status.DELETING
    finally:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.communicate()
    seen = fb.run("doctor", "--json", "--stale-after", "0")
    assert set(drift_kinds(seen)) == {STUCK, TM}, seen
    fb.assert_never_locked()
