"""Each step of each flow failing, once per target helper (tests/worlds.py): the helper's steps
(create_export, allow, disallow, remove_export, persist, the listing) and the LVM programs. Exit 6,
the inventory as before or in the named error state, the failure in history (a program's run with
its exit code, filed as a command; the error in the detail of an error state), nothing this call
created left on the host, what is persisted no newer than before, doctor reporting exactly the
drift left, and the CHAP password nowhere in stdout, stderr or history.""" 

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from conftest import INITIATOR_1, INSTANCE_1
from helpersteps import STEPS
from worlds import HELPERS, TRAITS


@pytest.fixture
def make_service(world):
    return world.make_service


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


# -- set-ups: the state a flow starts from --------------------------------------------------------


def setup_none(volctl):
    pass


def setup_available(volctl):
    ok(volctl("create", "--size", "1", "--name", "v1"))


def setup_exported(volctl):
    setup_available(volctl)
    ok(volctl("export", "v1"))


def setup_connected(volctl):
    setup_available(volctl)
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))


def setup_in_use(volctl):
    setup_available(volctl)
    ok(volctl("reserve", "v1"))
    ok(volctl("connect", "v1", "--initiator", INITIATOR_1))
    ok(volctl("attach", "v1", "--instance", INSTANCE_1, "--host", "compute1", "--mountpoint", "/dev/vdb"))


@dataclass(frozen=True)
class Case:
    setup: object
    args: tuple[str, ...]
    step: str  # the helper step (tests/helpersteps.py) or the LVM program that fails
    nth: int = 1  # which matching call of this run fails (1 = the first)
    error_state: str | None = None  # the named error state the volume lands in; None = as before
    # A removal that worked before the failing persist is recorded: the inventory view as it then is.
    removal_recorded: dict | None = None

    @property
    def lvm(self) -> bool:
        return self.step not in STEPS


CONNECT = ("connect", "v1", "--initiator", INITIATOR_1)
DETACHED = {"status": "available", "attach_status": "detached", "provider_location": None, "connections": [],
            "attachments": "detached"}
# Each flow: its set-up, its command, the error state a failure leaves (None: as before), what a
# persist that fails after a removal leaves recorded, and its LVM steps after the helper's.
FLOWS = {
    "create": (setup_none, ("create", "--size", "1", "--name", "v1"), "error", None, ()),
    "export": (setup_available, ("export", "v1"), None, None, ()),
    # connect of a fresh volume: the export it makes is undone too
    "connect-fresh": (setup_available, CONNECT, None, None, ()),
    # connect of an exported volume: the export stays, the ACL does not
    "connect-exported": (setup_exported, CONNECT, None, None, ()),
    "disconnect": (setup_connected, ("disconnect", "v1", "--initiator", INITIATOR_1), None, {"connections": []}, ()),
    # detach of the last attachment: back to in-use
    "detach": (setup_in_use, ("detach", "v1"), None, DETACHED, ()),
    "unexport": (setup_exported, ("unexport", "v1"), None, {"provider_location": None, "connections": []}, ()),
    "delete": (setup_exported, ("delete", "v1"), "error_deleting", None, ("lvs", "dd")),
    "extend": (setup_available, ("extend", "v1", "--size", "2"), "error_extending", None, ()),
}
HELPER_FLOW = {"connect-fresh": "connect-fresh", "connect-exported": "connect-exported", "delete": "delete-exported"}


def cases(traits) -> dict[str, Case]:
    """Every step of every flow, as this helper runs them (tests/worlds.py)."""
    found = {}
    for flow, (setup, args, error_state, removal, lvm) in FLOWS.items():
        helper_steps = traits.flow_steps(HELPER_FLOW.get(flow, flow)) if flow not in ("create", "extend") else []
        for step in dict.fromkeys([*helper_steps, *lvm]):
            recorded = removal if step == "persist" else None
            found[f"{flow}/{step}"] = Case(setup, args, step, 1, error_state, recorded)
    found["create/lvcreate"] = Case(setup_none, FLOWS["create"][1], "lvcreate", 1, "error")
    found["delete/lvremove"] = Case(setup_available, FLOWS["delete"][1], "lvremove", 1, "error_deleting")
    found["extend/lvextend"] = Case(setup_available, FLOWS["extend"][1], "lvextend", 1, "error_extending")
    return found


CASES = {helper: cases(TRAITS[helper]) for helper in HELPERS}
# lvremove is retried once after `udevadm settle`, as in Cinder: failing only the first try is not a failure.
ONCE_IS_ENOUGH = {"delete/lvremove"}


def test_every_helper_step_of_every_flow_is_a_case():
    """The matrix is each helper's own steps: fake and lioadm list targets through the helper
    (unexport, delete), lioadm also after create; rtslib reads configfs instead."""
    common = {"create/lvcreate", "export/create_export", "export/persist", "connect-fresh/create_export",
              "connect-fresh/allow", "connect-fresh/persist", "connect-exported/allow", "connect-exported/persist",
              "disconnect/disallow", "disconnect/persist", "detach/remove_export", "detach/persist",
              "unexport/remove_export", "unexport/persist", "delete/remove_export", "delete/persist", "delete/lvs",
              "delete/dd", "delete/lvremove", "extend/lvextend"}
    listing = {"unexport/targets", "delete/targets"}
    assert set(CASES["rtslib"]) == common
    assert set(CASES["fake"]) == common | listing
    assert set(CASES["lioadm"]) == common | listing | {"export/targets", "connect-fresh/targets"}


def arm(world, host, case: Case, always: bool, exit_code: int, message: str):
    """Fail the case's nth matching step of this run (and, if always, every later one)."""
    if not case.lvm:
        return world.fail(case.step, nth=case.nth, always=always, message=message)
    seen = [0]

    def matches(argv) -> bool:
        if argv[0] != case.step:
            return False
        seen[0] += 1
        return seen[0] == case.nth or (always and seen[0] > case.nth)

    host.fail(matches, exit_code=exit_code, stderr=message + "\n")
    return None


def host_state(world, host) -> tuple[set, dict]:
    return set(host.lvs), world.live()


def inventory_view(doc: dict | None) -> dict | None:
    if doc is None:
        return None
    return {
        "status": doc["status"],
        "attach_status": doc["attach_status"],
        "size": doc["size"],
        "provider_location": doc["provider_location"],
        "attachments": [(a["id"], a["attach_status"]) for a in doc["attachments"]],
        "connections": [c["initiator"] for c in doc["connections"]],
    }


def show(volctl) -> dict | None:
    r = volctl("show", "v1", "--json")
    return r.json() if r.exit_code == 0 else None


def password_of(volctl) -> str | None:
    r = volctl("show", "v1", "--show-secrets", "--json")
    auth = r.json().get("provider_auth") if r.exit_code == 0 else None
    return auth.split()[2] if auth else None


def assert_host_agrees(volctl, world, host, stale_expected: bool, persist_failing: bool) -> None:
    """The inventory and the host tell one story after the failure: a target exists exactly when the
    volume records an export (error_deleting may have lost the target: delete settles it, and doctor
    says so), its hosts are the recorded connections, the LV exists unless create failed, and doctor
    reports exactly that drift and nothing else. stale_expected: a removal worked and its persist
    failed, so what is persisted is stale; persist_failing: it still fails (it was made to fail
    always), so nothing could be persisted since."""
    world.clear_faults()  # the failure has happened; doctor needs a working host to look
    host.failures.clear()
    doc = show(volctl)
    vg, lv_name = doc["lv_path"].split("/")[2:]
    target = world.target_for(lv_name)
    recorded = {c["initiator"] for c in doc["connections"]}
    live = world.live()
    expected_drift = set()
    if target in live:
        assert doc["provider_location"] and target in doc["provider_location"], f"target {target} without a recorded export"
        assert live[target] <= recorded, f"hosts on {target} that no connection records: {live[target] - recorded}"
        assert live[target] == recorded, f"recorded connections without a host on the target: {recorded - live[target]}"
    elif doc["provider_location"]:
        assert doc["status"] == "error_deleting", f"'{doc['status']}' volume records an export without a target"
        expected_drift.add(("target_missing", target))
    else:
        assert not recorded, "connections recorded on an unexported volume"
    assert ((vg, lv_name) in host.lvs) == (doc["status"] != "error"), (doc["status"], host.lvs)
    persisted = world.persisted()
    if persisted != live and (persisted is not None or live):
        assert persist_failing or doc["status"] == "error_deleting" or stale_expected, f"what is persisted is stale: {persisted}"
        expected_drift.add(("saved_config", world.persisted_to))
    report = volctl("doctor", "--json")
    assert report.exit_code == (5 if expected_drift else 0), (report.exit_code, report.stdout, report.stderr)
    assert {(d["kind"], d["subject"]) for d in report.json()["drift"]} == expected_drift


PARAMS = [pytest.param(helper, name, always, id=f"{helper}-{name}-{'always' if always else 'once'}")
          for helper in HELPERS for name in CASES[helper] for always in (False, True)
          if always or name not in ONCE_IS_ENOUGH]


@pytest.mark.parametrize(("helper", "name", "always"), PARAMS)
def test_failure_leaves_the_documented_state(volctl, world, host, helper, name, always):
    case = CASES[helper][name]
    case.setup(volctl)
    before = inventory_view(show(volctl))
    host_before, persisted_before = host_state(world, host), world.persisted()
    exit_code = 5 if case.lvm else 1
    message = f"simulated {case.step} failure on step {case.nth}"
    fault = arm(world, host, case, always, exit_code, message)

    r = volctl(*case.args, "--json")

    # exit 6, nothing on stdout, a message with the failure's own text (a program: its name and exit code)
    assert r.exit_code == 6, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    assert message in r.stderr
    if case.lvm:
        assert case.step in r.stderr and f"exit code {exit_code}" in r.stderr

    # the inventory: as before, or in the named error state
    after = show(volctl)
    if case.error_state:
        assert after["status"] == case.error_state
    elif case.removal_recorded:
        expected = {**before, **case.removal_recorded}
        if case.removal_recorded.get("attachments") == "detached":
            expected["attachments"] = [(a, "detached") for a, _ in before["attachments"]]
        assert inventory_view(after) == expected
    else:
        assert inventory_view(after) == before

    # history has the failed step (a program's run: filed as a command with its exit code), and
    # explains an error state
    events = ok(volctl("history", "v1", "--json")).json()
    if case.lvm:
        failed = [e for e in events if e["kind"] == "command" and e["argv"][0] == case.step and e["exit_code"] == exit_code]
        assert failed and "simulated" in failed[0]["detail"], [e["argv"] for e in events if e["kind"] == "command"]
    else:
        assert world.failure_filed(events, fault), events
    if case.error_state:
        last = [e for e in events if e["kind"] == "transition"][-1]
        assert last["to_status"] == case.error_state
        assert message in last["detail"]

    # nothing this call created is left on the host
    lvs_after, live_after = host_state(world, host)
    lvs_before, live_before = host_before
    assert lvs_after <= lvs_before
    assert set(live_after) <= set(live_before)
    for target, hosts in live_after.items():
        assert hosts <= live_before[target], f"hosts left on {target}: {hosts - live_before[target]}"
    assert world.residue() == []
    if not always:  # with the persist still failing, nothing can be persisted again
        for target, hosts in (world.persisted() or {}).items():
            assert target in (persisted_before or {}) and hosts <= persisted_before[target]

    assert_host_agrees(volctl, world, host, case.removal_recorded is not None, always and case.step == "persist")

    # the CHAP password appears nowhere but in connect's own output
    password = password_of(volctl)
    if password:
        assert password not in r.stderr
        assert password not in json.dumps(events)
        assert password not in ok(volctl("history", "v1")).stdout
        assert password not in volctl("list", "--json").stdout
        assert password not in volctl("show", "v1").stdout


@pytest.mark.parametrize("name", ["export/persist", "connect-fresh/allow", "connect-exported/persist"])
def test_a_failed_undo_is_written_to_history(volctl, world, name):
    """When even the undo fails (the persist keeps failing), history says so."""
    case = CASES[world.name][name]
    case.setup(volctl)
    world.fail("persist", always=True, message="OSError: [Errno 28] No space left on device")
    if case.step != "persist":
        world.fail(case.step, always=True, message="simulated")
    r = volctl(*case.args)
    assert r.exit_code == 6
    events = ok(volctl("history", "v1", "--json")).json()
    undo = [e["detail"] for e in events if e["kind"] == "note" and e["action"] == "undo"]
    assert undo and undo[-1].startswith("could not undo") and "No space left" in undo[-1]


def test_retry_after_a_failure_succeeds(volctl, world, host):
    """The states the failures leave are ones the same command can start from again."""
    setup_available(volctl)
    world.fail("allow", times=1, message="boom")
    assert volctl(*CONNECT).exit_code == 6
    ok(volctl(*CONNECT))
    host.fail(["lvextend"], exit_code=5, stderr="boom", times=1)
    assert volctl("extend", "v1", "--size", "2").exit_code == 6
    r = volctl("extend", "v1", "--size", "2")
    assert r.exit_code == 5 and "'error_extending'" in r.stderr  # Cinder: an operator resets error_extending
    ok(volctl("unexport", "v1"))
    host.fail(["dd"], exit_code=1, stderr="dd: error writing: Input/output error", times=1)
    assert volctl("delete", "v1").exit_code == 6
    ok(volctl("delete", "v1"))
    assert host.lvs == {} and world.live() == {}


# -- a create_export that fails after making the target -------------------------------------------


@pytest.mark.parametrize("args", [("export", "v1"), CONNECT], ids=["export", "connect"])
def test_a_half_made_target_is_removed_again(volctl, world, host, args):
    """A create_export that fails with part of its work done (lioadm's tool makes the storage
    object, target, TPG and LUN before binding the portals; rtslib fails at the portal; the fake
    fails after making it): the call that ran it removes the target again and records no export.
    (lioadm's portal-in-use case: tests/test_target_lioadm.py.)"""
    setup_available(volctl)
    fault = world.fail("create_export", always=True, effect=True, message="Error enabling iSER for NetworkPortal")
    world.forget()
    r = volctl(*args)
    assert r.exit_code == 6, (r.exit_code, r.stdout, r.stderr)
    assert fault.text in r.stderr
    assert "remove_export" in world.seen(), "the half-made target was never removed"
    assert world.live() == {} and world.residue() == []
    doc = show(volctl)
    assert (doc["status"], doc["provider_location"], doc["connections"]) == ("available", None, [])
    undo = [e["detail"] for e in ok(volctl("history", "v1", "--json")).json() if e["kind"] == "note" and e["action"] == "undo"]
    assert undo and undo[-1].startswith("undid target"), undo
    assert_host_agrees(volctl, world, host, stale_expected=False, persist_failing=False)
    ok(volctl(*args))  # and the same command works once the host does
    assert set(world.live()) == {world.target_for(doc["lv_path"].split("/")[-1])}
