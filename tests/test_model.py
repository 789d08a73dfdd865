"""The state machine table, where doctor sends what a killed process left, and Cinder's attachment-status rule."""

from __future__ import annotations

import itertools

import pytest

from volctl.iscsi import recorded_iqn
from volctl.model import (
    ABANDONED,
    DELETED,
    DONE,
    FAILED,
    ROLLED_BACK,
    UNMANAGED,
    SNAPSHOT_ABANDONED,
    ERRORS,
    EXPORTABLE,
    TRANSIENT,
    GUARD_REASONS,
    SNAPSHOT_TRANSIENT,
    SNAPSHOT_TRANSITIONS,
    TRANSITIONS,
    Attachment,
    AttachStatus,
    Event,
    Guard,
    Snapshot,
    SnapshotStatus,
    Status,
    Volume,
    abandoned_snapshot_status,
    abandoned_status,
    outcome_status,
    status_from_attachments,
)

S = Status
ALL = frozenset(Status)
IQN = "iqn.2010-10.org.openstack:volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
# where an export (and a connect, which exports) is refused: no LV to export, or one changing hands
NO_EXPORT = {S.MAINTENANCE, S.CREATING, S.DELETING, S.REVERTING, S.MANAGING, S.UNMANAGING, S.ERROR, S.ERROR_DELETING,
             S.ERROR_EXTENDING, S.ERROR_MANAGING}


def test_status_spellings_are_cinders():
    assert {s.value for s in Status} == {
        "creating", "available", "attaching", "in-use", "detaching", "deleting", "extending", "reverting",
        "managing", "unmanaging", "maintenance", "error", "error_deleting", "error_extending", "error_managing",
    }
    # Cinder's SnapshotStatus, the ones a snapshot on one host can be in
    assert {s.value for s in SnapshotStatus} == {
        "creating", "available", "deleting", "restoring", "error", "error_deleting",
    }
    assert Status.IN_USE == "in-use"
    assert Status.ERROR_DELETING == "error_deleting"
    assert Status.ERROR_EXTENDING == "error_extending"
    assert {a.value for a in AttachStatus} == {
        "attached", "attaching", "detached", "reserved", "error_attaching", "error_detaching",
    }


# action -> (allowed_from, multiattach extras, busy, done, failed): the contract's command table.
EXPECTED = {
    "create": (set(), set(), S.CREATING, S.AVAILABLE, S.ERROR),
    "reserve": ({S.AVAILABLE}, {S.IN_USE}, None, S.ATTACHING, None),
    "unreserve": ({S.ATTACHING}, set(), None, None, None),
    "attach": ({S.ATTACHING}, {S.IN_USE}, None, S.IN_USE, None),
    "detach": ({S.IN_USE}, set(), S.DETACHING, None, None),
    "delete": ({S.AVAILABLE, S.ERROR, S.ERROR_DELETING, S.ERROR_EXTENDING}, set(), S.DELETING, DELETED, S.ERROR_DELETING),
    # Cinder's extend of an in-use volume (API 3.42): back to where it was, from the attachments
    "extend": ({S.AVAILABLE, S.IN_USE}, set(), S.EXTENDING, None, S.ERROR_EXTENDING),
    "export": (ALL - NO_EXPORT, set(), None, None, None),
    "connect": (ALL - NO_EXPORT, set(), None, None, None),
    "manage": (set(), set(), S.MANAGING, S.AVAILABLE, S.ERROR_MANAGING),
    "unmanage": ({S.AVAILABLE, S.ERROR, S.ERROR_DELETING, S.ERROR_EXTENDING, S.ERROR_MANAGING}, set(), S.UNMANAGING,
                 UNMANAGED, None),
    "snapshot": ({S.AVAILABLE}, set(), None, None, None),
    "clone": ({S.AVAILABLE, S.IN_USE}, set(), None, None, None),
    "revert": ({S.AVAILABLE}, set(), S.REVERTING, S.AVAILABLE, None),
    "disconnect": (ALL - {S.MAINTENANCE}, set(), None, None, None),
    "unexport": ({S.AVAILABLE, S.ATTACHING, S.ERROR, S.ERROR_DELETING, S.ERROR_EXTENDING}, set(), None, None, None),
}


def test_every_action_is_in_the_table_and_nothing_else():
    assert set(TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_transition_row(action):
    allowed, extra, busy, done, failed = EXPECTED[action]
    t = TRANSITIONS[action]
    assert set(t.allowed_from) == allowed
    assert set(t.multiattach_also) == extra
    assert (t.busy, t.done, t.failed) == (busy, done, failed)
    assert set(t.expected(False)) == allowed
    assert set(t.expected(True)) == allowed | extra
    # Every state named is a real Cinder spelling.
    assert set(t.expected(True)) <= ALL


@pytest.mark.parametrize("action", ["reserve", "attach"])
def test_in_use_only_allowed_when_multiattach(action):
    t = TRANSITIONS[action]
    assert S.IN_USE not in t.expected(False)
    assert S.IN_USE in t.expected(True)


def test_no_action_runs_on_a_volume_in_maintenance():
    for action, t in TRANSITIONS.items():
        assert S.MAINTENANCE not in t.expected(True), action


def test_attached_volume_cannot_be_deleted_unexported_or_unmanaged():
    for action in ("delete", "unexport", "unmanage"):
        assert S.IN_USE not in TRANSITIONS[action].expected(True)
        assert S.DETACHING not in TRANSITIONS[action].expected(True)
    assert S.IN_USE in TRANSITIONS["extend"].expected() and S.DETACHING not in TRANSITIONS["extend"].expected(True)


def test_state_groups():
    assert ERRORS == {S.ERROR, S.ERROR_DELETING, S.ERROR_EXTENDING, S.ERROR_MANAGING}
    assert TRANSIENT == {S.CREATING, S.ATTACHING, S.DETACHING, S.DELETING, S.EXTENDING, S.REVERTING, S.MANAGING,
                         S.UNMANAGING}
    assert EXPORTABLE == {S.AVAILABLE, S.ATTACHING, S.IN_USE, S.DETACHING, S.EXTENDING}
    assert SNAPSHOT_TRANSIENT == {SS.CREATING, SS.DELETING, SS.RESTORING}


# -- guards and the snapshot table -------------------------------------------------------------

SS = SnapshotStatus
GUARDS = {
    "reserve": (Guard.MULTIATTACH_IS,), "detach": (Guard.ATTACHED,), "delete": (Guard.NOT_ATTACHED, Guard.NO_SNAPSHOTS),
    "extend": (Guard.SMALLER_THAN,), "revert": (Guard.NOT_EXPORTED,), "unmanage": (Guard.NOT_ATTACHED, Guard.NO_SNAPSHOTS),
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_guards_of_each_volume_action(action):
    assert TRANSITIONS[action].guards == GUARDS.get(action, ())


def test_every_guard_has_a_reason_for_the_operator():
    assert set(GUARD_REASONS) == set(Guard)
    assert all(reason and "\n" not in reason for reason in GUARD_REASONS.values())


def test_snapshot_of_an_in_use_volume_only_when_forced():
    t = TRANSITIONS["snapshot"]
    assert t.expected() == {S.AVAILABLE}
    assert t.expected(force=True) == {S.AVAILABLE, S.IN_USE}
    assert t.expected(multiattach=True) == {S.AVAILABLE}  # multiattach is no force
    for status in ALL - {S.AVAILABLE, S.IN_USE}:
        assert status not in t.expected(True, True), status


# action -> (allowed_from, busy, done, failed, guards): the contract's snapshot rows.
SNAPSHOT_EXPECTED = {
    "create": (set(), SS.CREATING, SS.AVAILABLE, SS.ERROR, ()),
    "delete": ({SS.AVAILABLE, SS.ERROR, SS.ERROR_DELETING}, SS.DELETING, DELETED, SS.ERROR_DELETING, ()),
    "revert": ({SS.AVAILABLE}, SS.RESTORING, SS.AVAILABLE, SS.ERROR, (Guard.LATEST_SNAPSHOT,)),
    "use": ({SS.AVAILABLE}, None, None, None, ()),
}


def test_every_snapshot_action_is_in_its_table():
    assert set(SNAPSHOT_TRANSITIONS) == set(SNAPSHOT_EXPECTED)


@pytest.mark.parametrize("action", sorted(SNAPSHOT_EXPECTED))
def test_snapshot_transition_row(action):
    allowed, busy, done, failed, guards = SNAPSHOT_EXPECTED[action]
    t = SNAPSHOT_TRANSITIONS[action]
    assert (set(t.allowed_from), t.busy, t.done, t.failed, t.guards) == (allowed, busy, done, failed, guards)
    named = set(t.allowed_from) | {x for x in (t.busy, t.done, t.failed) if x}
    assert named <= set(SnapshotStatus) | {DELETED}


def test_a_busy_or_restoring_snapshot_allows_nothing():
    for action, t in SNAPSHOT_TRANSITIONS.items():
        assert not t.allowed_from & SNAPSHOT_TRANSIENT, action


# -- status_from_attachments -----------------------------------------------------------------


def test_no_live_attachment_means_available_detached():
    assert status_from_attachments([]) == (S.AVAILABLE, AttachStatus.DETACHED)
    assert status_from_attachments(iter(())) == (S.AVAILABLE, AttachStatus.DETACHED)


def test_only_error_attachments_count_as_none():
    assert status_from_attachments(["error_attaching", "error_detaching"]) == (S.AVAILABLE, AttachStatus.DETACHED)


@pytest.mark.parametrize(
    "live, expected",
    [
        (["attached"], (S.IN_USE, AttachStatus.ATTACHED)),
        (["attaching"], (S.ATTACHING, AttachStatus.ATTACHING)),
        (["attaching", "attached"], (S.IN_USE, AttachStatus.ATTACHED)),  # 'attached' < 'attaching'
        (["error_attaching", "attaching"], (S.ATTACHING, AttachStatus.ATTACHING)),
        (["error_detaching", "attached", "attaching"], (S.IN_USE, AttachStatus.ATTACHED)),
        (["attached", "attached"], (S.IN_USE, AttachStatus.ATTACHED)),
    ],
)
def test_alphabetically_first_non_error_status_wins(live, expected):
    result = status_from_attachments(live)
    assert result == expected
    # The result is the same whatever order the attachments come in.
    for perm in itertools.permutations(live):
        assert status_from_attachments(perm) == expected


def test_status_values_are_plain_strings_for_the_inventory():
    status, attach = status_from_attachments(["attached"])
    assert isinstance(status, str) and status == "in-use"
    assert isinstance(attach, str) and attach == "attached"


# -- records ---------------------------------------------------------------------------------


def att(i, status):
    return Attachment(id=str(i), volume_id="v", instance_uuid=None, attached_host=None, mountpoint=None,
                      attach_mode="rw", attach_status=status, attach_time=None)


def _volume(location=None, status="available", attachments=(), previous_status=None):
    return Volume(
        id="6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", name="v1", size=1, status=status, attach_status="detached",
        multiattach=False, volume_group="cinder-volumes", lv_name="volume-x", lv_path="/dev/cinder-volumes/volume-x",
        provider_location=location, provider_auth=None, previous_status=previous_status, created_at="t", updated_at="t",
        attachments=attachments,
    )


@pytest.mark.parametrize(
    "location, iqn",
    [
        (f"10.0.0.5:3260,{IQN} {IQN} 0", IQN),
        (f"10.0.0.5:3260;10.0.0.6:3260,{IQN} {IQN} 0", IQN),
        (f"[fd00::5]:3260,{IQN} {IQN} 0", IQN),
        (f"10.0.0.5:3260,1 {IQN} 1", IQN),  # tgt-style numeric tid: the IQN is still the second field
        (None, None),
        ("", None),
        ("10.0.0.5:3260,garbage", None),
    ],
)
def test_recorded_iqn_from_provider_location(location, iqn):
    assert recorded_iqn(location) == iqn


# -- outcomes, and where doctor sends what a killed process left ------------------------------


def test_outcomes_of_a_transition():
    extend, detach, revert = TRANSITIONS["extend"], TRANSITIONS["detach"], TRANSITIONS["revert"]
    assert outcome_status(extend, DONE) == (S.AVAILABLE, {"attach_status": AttachStatus.DETACHED})
    assert outcome_status(extend, DONE, (att(1, "attached"),)) == (S.IN_USE, {"attach_status": AttachStatus.ATTACHED})
    assert outcome_status(extend, FAILED) == (S.ERROR_EXTENDING, {})
    assert outcome_status(revert, FAILED, rollback=S.AVAILABLE) == (S.AVAILABLE, {})  # no failed state: back
    assert outcome_status(extend, ROLLED_BACK, rollback=S.AVAILABLE) == (S.AVAILABLE, {})
    with pytest.raises(ValueError):
        outcome_status(revert, FAILED)  # a roll back needs the status before the claim
    # a done state recomputed from the live attachments brings their attach status
    assert outcome_status(detach, DONE, ()) == (S.AVAILABLE, {"attach_status": AttachStatus.DETACHED})
    live = (att(1, "attached"),)
    assert outcome_status(detach, DONE, live) == (S.IN_USE, {"attach_status": AttachStatus.ATTACHED})


def test_every_transient_status_has_where_doctor_sends_it():
    assert set(ABANDONED) == TRANSIENT and set(SNAPSHOT_ABANDONED) == SNAPSHOT_TRANSIENT
    for status, (action, outcome) in ABANDONED.items():
        t = TRANSITIONS[action]
        assert outcome in (DONE, FAILED) and (t.busy == status or status in t.allowed_from), status
    # Cinder's restart cleanup: what was being made or removed has failed; the rest is done
    sent = {status: abandoned_status(_volume(status=status, previous_status=S.ERROR)) for status in ABANDONED}
    assert sent == {S.CREATING: S.ERROR, S.DELETING: S.ERROR_DELETING, S.EXTENDING: S.AVAILABLE,
                    S.ATTACHING: S.AVAILABLE, S.DETACHING: S.AVAILABLE, S.REVERTING: S.AVAILABLE,
                    S.MANAGING: S.ERROR_MANAGING, S.UNMANAGING: S.ERROR}  # unmanage: back to where it was
    attached = (att(1, "attached"),)
    assert abandoned_status(_volume(status=S.DETACHING, attachments=attached)) == S.IN_USE
    assert abandoned_status(_volume(status=S.ATTACHING, attachments=attached)) == S.IN_USE


@pytest.mark.parametrize("status, present, to", [
    (SS.CREATING, True, SS.ERROR), (SS.CREATING, False, SS.ERROR),
    (SS.DELETING, True, SS.ERROR_DELETING), (SS.DELETING, False, SS.ERROR_DELETING),
    (SS.RESTORING, True, SS.AVAILABLE), (SS.RESTORING, False, SS.ERROR),  # the merge consumed it
])
def test_where_doctor_sends_a_stuck_snapshot(status, present, to):
    snapshot = Snapshot(id="s", name="s", volume_id="v", volume_size=1, status=status, volume_group="vg", lv_name="l",
                        lv_path="/dev/vg/l", provider_location=None, previous_status=None, created_at="t", updated_at="t")
    assert abandoned_snapshot_status(snapshot, present) == to


def test_live_attachments_excludes_detached():
    volume = _volume(None)
    volume = Volume(**{**volume.__dict__, "attachments": (att(1, "attached"), att(2, "detached"), att(3, "attaching"))})
    assert [a.id for a in volume.live_attachments] == ["1", "3"]


def test_attachment_initiator_from_connector_by_protocol():
    both = {"initiator": "iqn.1994-05.com.redhat:x", "nqn": "nqn.2014-08.org.nvmexpress:uuid:1"}
    a = Attachment(id="a", volume_id="v", instance_uuid=None, attached_host=None, mountpoint=None, attach_mode="rw",
                   attach_status="attached", attach_time=None, connector=both)
    assert a.initiator_over("iscsi") == a.initiator_over(None) == "iqn.1994-05.com.redhat:x"
    assert a.initiator_over("nvmet_tcp") == "nqn.2014-08.org.nvmexpress:uuid:1"
    assert Attachment(**{**a.__dict__, "connector": {"nqn": "nqn.x"}}).initiator_over("iscsi") == "nqn.x"
    assert Attachment(**{**a.__dict__, "connector": None}).initiator_over("nvmet_tcp") is None


def test_event_encode_argv():
    assert Event.encode_argv(None) is None
    assert Event.encode_argv(("lvcreate", "-n", "a b")) == '["lvcreate", "-n", "a b"]'
