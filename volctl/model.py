"""States, records and the transition table. Pure: no I/O, stdlib only."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum

from volctl.record import Record


GIB = 1024**3


class Status(StrEnum):
    """Volume statuses, spelled as Cinder spells them (objects/fields.py VolumeStatus)."""

    CREATING = "creating"
    AVAILABLE = "available"
    ATTACHING = "attaching"
    IN_USE = "in-use"
    DETACHING = "detaching"
    DELETING = "deleting"
    EXTENDING = "extending"
    REVERTING = "reverting"
    MANAGING = "managing"
    UNMANAGING = "unmanaging"
    MAINTENANCE = "maintenance"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"
    ERROR_EXTENDING = "error_extending"
    ERROR_MANAGING = "error_managing"


class AttachStatus(StrEnum):
    """Cinder's VolumeAttachStatus: the type of volumes.attach_status and volume_attachment.attach_status."""

    ATTACHED = "attached"
    ATTACHING = "attaching"
    DETACHED = "detached"
    RESERVED = "reserved"
    ERROR_ATTACHING = "error_attaching"
    ERROR_DETACHING = "error_detaching"


class SnapshotStatus(StrEnum):
    """Snapshot statuses, spelled as Cinder spells them (objects/fields.py SnapshotStatus)."""

    CREATING = "creating"
    AVAILABLE = "available"
    DELETING = "deleting"
    RESTORING = "restoring"
    ERROR = "error"
    ERROR_DELETING = "error_deleting"


class Guard(StrEnum):
    """What a transition needs besides the status, checked in the same compare-and-swap; only the
    inventory knows how each reads in SQL (Inventory.GUARDS)."""

    MULTIATTACH_IS = "multiattach_is"  # the flag the caller saw still holds (Cinder's reserve_volume)
    ATTACHED = "attached"
    NOT_ATTACHED = "not_attached"
    SMALLER_THAN = "smaller_than"  # extend: the new size is still larger
    NO_SNAPSHOTS = "no_snapshots"  # Cinder: a volume with snapshots cannot be deleted
    NOT_EXPORTED = "not_exported"  # a merge needs the LV closed, and a LIO export holds it open
    LATEST_SNAPSHOT = "latest_snapshot"  # Cinder's revert: only to the volume's newest snapshot


# Why a compare-and-swap lost although the status was right: said in the error (exit 5).
GUARD_REASONS: dict[Guard, str] = {
    Guard.MULTIATTACH_IS: "its multiattach flag changed meanwhile",
    Guard.ATTACHED: "it has no attached attachment",
    Guard.NOT_ATTACHED: "it is attached",
    Guard.SMALLER_THAN: "it is already at least that size",
    Guard.NO_SNAPSHOTS: "it has snapshots: delete them first (volctl snapshot list shows them)",
    Guard.NOT_EXPORTED: "it is exported, and LVM merges a snapshot only into a closed LV: unexport it first",
    Guard.LATEST_SNAPSHOT: "only the volume's latest snapshot can be reverted to",
}

ERRORS = frozenset({Status.ERROR, Status.ERROR_DELETING, Status.ERROR_EXTENDING, Status.ERROR_MANAGING})
# Cinder's initialize_connection only refuses maintenance; the contract also keeps exports away
# from volumes whose LV may not be there (creating, deleting, error*).
# Nor while reverting: LVM merges a snapshot only into a closed LV, and an export opens it.
EXPORTABLE = frozenset(Status) - {Status.MAINTENANCE, Status.CREATING, Status.DELETING, Status.REVERTING,
                                  Status.MANAGING, Status.UNMANAGING} - ERRORS


# The status history gives a row that is gone: delete's done state, and unmanage's (the LV stays).
DELETED = "deleted"
UNMANAGED = "unmanaged"
GONE = frozenset({DELETED, UNMANAGED})


def still_volctls(last_status: str | None) -> bool:
    """Whose an LV or target named for an id is, from the status the id's last transition gave
    (None: never in the inventory): volctl's unless it never was or unmanage let it go."""
    return last_status is not None and last_status != UNMANAGED
# The outcomes of a transition's work: its done state, its failed state (or, with none, the status
# before the claim), or the status before the claim (the work did not start).
DONE, FAILED, ROLLED_BACK = "done", "failed", "rolled back"


class Transition(Record):
    """allowed_from -> busy (while external work runs) -> done, or failed when that work fails.

    done None: recomputed from the live attachments (Cinder's finish_detach / unreserve).
    failed None: roll back to the status the volume had before the claim.
    force_also: the statuses --force adds (Cinder's create_snapshot_force).
    """

    allowed_from: frozenset[str]
    busy: str | None
    done: str | None
    failed: str | None
    multiattach_also: frozenset[str]
    force_also: frozenset[str]
    guards: tuple[Guard, ...]

    def __init__(self, allowed_from: frozenset[str], busy: str | None = None, done: str | None = None,
                 failed: str | None = None, multiattach_also: frozenset[str] = frozenset(),
                 force_also: frozenset[str] = frozenset(), guards: tuple[Guard, ...] = ()):
        self._init(locals())

    def expected(self, multiattach: bool = False, force: bool = False) -> frozenset[str]:
        wanted = self.allowed_from
        if multiattach:
            wanted |= self.multiattach_also
        if force:
            wanted |= self.force_also
        return wanted


TRANSITIONS: dict[str, Transition] = {
    # allowed from nothing: a new row, made in its busy state
    "create": Transition(frozenset(), busy=Status.CREATING, done=Status.AVAILABLE, failed=Status.ERROR),
    "reserve": Transition(frozenset({Status.AVAILABLE}), done=Status.ATTACHING, multiattach_also=frozenset({Status.IN_USE}),
                          guards=(Guard.MULTIATTACH_IS,)),
    "unreserve": Transition(frozenset({Status.ATTACHING})),
    "attach": Transition(frozenset({Status.ATTACHING}), done=Status.IN_USE, multiattach_also=frozenset({Status.IN_USE})),
    "detach": Transition(frozenset({Status.IN_USE}), busy=Status.DETACHING, guards=(Guard.ATTACHED,)),
    "delete": Transition(
        frozenset({Status.AVAILABLE, Status.ERROR, Status.ERROR_DELETING, Status.ERROR_EXTENDING}),
        busy=Status.DELETING,
        done=DELETED,
        failed=Status.ERROR_DELETING,
        guards=(Guard.NOT_ATTACHED, Guard.NO_SNAPSHOTS),
    ),
    # Cinder's extend and extend_attached_volume (API 3.42): back to where it was, from the
    # attachments (in-use or available); error_extending when lvextend fails, attached or not
    "extend": Transition(
        frozenset({Status.AVAILABLE, Status.IN_USE}), busy=Status.EXTENDING, done=None, failed=Status.ERROR_EXTENDING,
        guards=(Guard.SMALLER_THAN,),
    ),
    # Cinder's manage_existing: a new row, made managing, for an LV that exists (renamed)
    "manage": Transition(frozenset(), busy=Status.MANAGING, done=Status.AVAILABLE, failed=Status.ERROR_MANAGING),
    # Cinder's unmanage: the export goes, volctl forgets the volume, the LV stays; when removing
    # the export fails, back to where it was
    "unmanage": Transition(
        frozenset({Status.AVAILABLE}) | ERRORS, busy=Status.UNMANAGING, done=UNMANAGED,
        guards=(Guard.NOT_ATTACHED, Guard.NO_SNAPSHOTS),
    ),
    # Cinder's API: a snapshot of an available volume, of an in-use one only when forced.
    "snapshot": Transition(frozenset({Status.AVAILABLE}), force_also=frozenset({Status.IN_USE})),
    # the source of a clone (Cinder's create_cloned_volume copies through a temporary snapshot)
    "clone": Transition(frozenset({Status.AVAILABLE, Status.IN_USE})),
    # failed None: a merge that did not start changed nothing, so the volume goes back to available
    "revert": Transition(frozenset({Status.AVAILABLE}), busy=Status.REVERTING, done=Status.AVAILABLE,
                         guards=(Guard.NOT_EXPORTED,)),
    "export": Transition(EXPORTABLE),
    "connect": Transition(EXPORTABLE),
    "disconnect": Transition(frozenset(Status) - {Status.MAINTENANCE}),
    "unexport": Transition(
        frozenset({Status.AVAILABLE, Status.ATTACHING, Status.ERROR, Status.ERROR_DELETING, Status.ERROR_EXTENDING})
    ),
}


SNAPSHOT_TRANSITIONS: dict[str, Transition] = {
    "create": Transition(frozenset(), busy=SnapshotStatus.CREATING, done=SnapshotStatus.AVAILABLE,
                         failed=SnapshotStatus.ERROR),
    "delete": Transition(frozenset({SnapshotStatus.AVAILABLE, SnapshotStatus.ERROR, SnapshotStatus.ERROR_DELETING}),
                         busy=SnapshotStatus.DELETING, done=DELETED, failed=SnapshotStatus.ERROR_DELETING),
    # failed: the merge consumed the snapshot's LV and re-creating it failed
    "revert": Transition(frozenset({SnapshotStatus.AVAILABLE}), busy=SnapshotStatus.RESTORING,
                         done=SnapshotStatus.AVAILABLE, failed=SnapshotStatus.ERROR, guards=(Guard.LATEST_SNAPSHOT,)),
    # the source of a new volume (Cinder's create_volume_from_snapshot needs it available)
    "use": Transition(frozenset({SnapshotStatus.AVAILABLE})),
}


# Where `doctor --repair` sends a row left in a transient status by a process that is gone: the
# action whose row decides, and which of its outcomes (Cinder's restart cleanup where it has one).
ABANDONED: dict[str, tuple[str, str]] = {
    Status.CREATING: ("create", FAILED),
    Status.DELETING: ("delete", FAILED),
    Status.EXTENDING: ("extend", DONE),  # the LV's size is recorded as the LV has it
    Status.ATTACHING: ("unreserve", DONE),  # a reservation nobody attached
    Status.DETACHING: ("detach", DONE),
    Status.REVERTING: ("revert", DONE),  # the LV activated again first
    Status.MANAGING: ("manage", FAILED),  # the LV may still have its old name
    Status.UNMANAGING: ("unmanage", FAILED),  # back to where it was; unmanage runs again
}
# A restoring snapshot is available again if the revert left its LV (killed before the merge),
# else failed: the service picks by what it finds.
SNAPSHOT_ABANDONED: dict[str, tuple[str, str]] = {
    SnapshotStatus.CREATING: ("create", FAILED),
    SnapshotStatus.DELETING: ("delete", FAILED),
    SnapshotStatus.RESTORING: ("revert", DONE),
}
# A volume or snapshot left in one of these by a killed process needs an operator or `doctor --repair`.
TRANSIENT = frozenset(ABANDONED)
SNAPSHOT_TRANSIENT = frozenset(SNAPSHOT_ABANDONED)


def outcome_status(transition: Transition, outcome: str, attachments: Iterable[Attachment] = (),
                   rollback: str | None = None) -> tuple[str, dict]:
    """The status an outcome of a transition gives, and the fields that come with it: a done
    state recomputed from the live attachments brings their attach status; a transition without
    a failed state, and a rolled-back one, go to `rollback`, the status before the claim."""
    if outcome == ROLLED_BACK or (outcome == FAILED and transition.failed is None):
        if rollback is None:
            raise ValueError("rolling back needs the status before the claim")
        return rollback, {}
    if outcome == FAILED:
        return transition.failed, {}
    if transition.done is not None:
        return transition.done, {}
    status, attach_status = status_from_attachments(a.attach_status for a in attachments)
    return status, {"attach_status": attach_status}


def abandoned_status(volume: Volume) -> str:
    """Where doctor --repair sends a volume stuck in a transient status (a transition without a
    failed state: back to the status its claim recorded as previous)."""
    action, outcome = ABANDONED[volume.status]
    return outcome_status(TRANSITIONS[action], outcome, volume.live_attachments, volume.previous_status)[0]


def snapshot_abandoned(snapshot: Snapshot, lv_present: bool) -> tuple[str, str]:
    """SNAPSHOT_ABANDONED's action and outcome for a stuck snapshot: a restoring one whose LV the
    revert consumed has failed."""
    action, outcome = SNAPSHOT_ABANDONED[snapshot.status]
    return action, FAILED if outcome == DONE and not lv_present else outcome


def abandoned_snapshot_status(snapshot: Snapshot, lv_present: bool) -> str:
    """Where doctor --repair sends a snapshot stuck in a transient status."""
    action, outcome = snapshot_abandoned(snapshot, lv_present)
    return outcome_status(SNAPSHOT_TRANSITIONS[action], outcome)[0]


def status_from_attachments(live: Iterable[str]) -> tuple[Status, AttachStatus]:
    """Cinder's _get_statuses_from_attachments: the alphabetically first live attach status wins."""
    candidates = sorted(s for s in live if not s.startswith("error_"))
    if not candidates:
        return Status.AVAILABLE, AttachStatus.DETACHED
    first = candidates[0]
    if first == AttachStatus.ATTACHED or first not in Status.__members__.values():
        # Cinder carries the word over ('reserved'...); volctl has no such volume status.
        return Status.IN_USE, AttachStatus(first) if first in AttachStatus.__members__.values() else AttachStatus.ATTACHED
    return Status(first), AttachStatus(first) if first in AttachStatus.__members__.values() else AttachStatus.ATTACHED


class Attachment(Record):
    """One row of volume_attachment, as Cinder keeps it."""

    id: str
    volume_id: str
    instance_uuid: str | None
    attached_host: str | None
    mountpoint: str | None
    attach_mode: str
    attach_status: str
    attach_time: str | None
    detach_time: str | None
    connector: dict | None

    def __init__(self, id: str, volume_id: str, instance_uuid: str | None, attached_host: str | None,
                 mountpoint: str | None, attach_mode: str, attach_status: str, attach_time: str | None,
                 detach_time: str | None = None, connector: dict | None = None):
        self._init(locals())

    @property
    def live(self) -> bool:
        return self.attach_status != AttachStatus.DETACHED

    def initiator_over(self, protocol: str | None) -> str | None:
        """The host the attachment's connection names over the export's protocol: its NQN for
        NVMe, else its iSCSI initiator (os-brick's connector carries both on a host that has both)."""
        connector = self.connector or {}
        keys = ("nqn", "initiator") if protocol and protocol.startswith("nvme") else ("initiator", "nqn")
        return connector.get(keys[0]) or connector.get(keys[1])


class Connection(Record):
    """An initiator volctl gave an ACL on the volume's target."""

    volume_id: str
    initiator: str  # the host: an iSCSI initiator name, or a host NQN
    connector: dict
    connected_at: str
    auth: str | None  # how the host proves itself, when it has credentials of its own ("DH-HMAC-CHAP")

    def __init__(self, volume_id: str, initiator: str, connector: dict, connected_at: str, auth: str | None = None):
        self._init(locals())


class Volume(Record):
    """One volume with its attachments and connections (ACLs)."""

    id: str
    name: str
    size: int
    status: str
    attach_status: str
    multiattach: bool
    volume_group: str
    lv_name: str
    lv_path: str
    provider_location: str | None
    provider_auth: str | None
    previous_status: str | None
    created_at: str
    updated_at: str
    attachments: tuple[Attachment, ...]
    connections: tuple[Connection, ...]
    target_helper: str | None  # the helper that made the recorded export; None when there is none
    export_protocol: str | None  # the recorded export's protocol; None when there is none (or it predates m004)

    def __init__(self, id: str, name: str, size: int, status: str, attach_status: str, multiattach: bool,
                 volume_group: str, lv_name: str, lv_path: str, provider_location: str | None,
                 provider_auth: str | None, previous_status: str | None, created_at: str, updated_at: str,
                 attachments: tuple[Attachment, ...] = (), connections: tuple[Connection, ...] = (),
                 target_helper: str | None = None, export_protocol: str | None = None):
        self._init(locals())

    @property
    def live_attachments(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.live)


class Snapshot(Record):
    """One snapshot, and the name of the volume it was taken of."""

    id: str
    name: str
    volume_id: str
    volume_size: int  # GiB: the size of the volume when the snapshot was taken (Cinder's column)
    status: str
    volume_group: str
    lv_name: str
    lv_path: str
    provider_location: str | None
    previous_status: str | None
    created_at: str
    updated_at: str
    volume_name: str | None  # the parent's name, for a person; None once the parent is gone

    def __init__(self, id: str, name: str, volume_id: str, volume_size: int, status: str, volume_group: str,
                 lv_name: str, lv_path: str, provider_location: str | None, previous_status: str | None,
                 created_at: str, updated_at: str, volume_name: str | None = None):
        self._init(locals())


class Event(Record):
    """One line of a volume's history: a transition, an external command, or a note."""

    id: int
    volume_id: str
    at: str
    kind: str
    action: str
    from_status: str | None
    to_status: str | None
    argv: tuple[str, ...] | None
    exit_code: int | None
    duration: float | None
    detail: str | None

    def __init__(self, id: int, volume_id: str, at: str, kind: str, action: str, from_status: str | None = None,
                 to_status: str | None = None, argv: tuple[str, ...] | None = None, exit_code: int | None = None,
                 duration: float | None = None, detail: str | None = None):
        self._init(locals())

    @staticmethod
    def encode_argv(argv: Iterable[str] | None) -> str | None:
        return None if argv is None else json.dumps(list(argv))
