"""volctl/record.py: the frozen records that replaced @dataclass(frozen=True) on the start-up path
behave as those dataclasses did where volctl and its tests use them."""

from __future__ import annotations

import dataclasses

import pytest

from volctl.config import Settings
from volctl.model import Attachment, Connection, Event, Snapshot, Transition, Volume
from volctl.record import Record
from volctl.runner import CommandResult
from volctl.service.core import Outcome

RECORDS = [Attachment, Connection, Event, Snapshot, Transition, Volume, Settings, CommandResult, Outcome]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_the_documented_fields_are_the_init_parameters_in_order(cls):
    assert tuple(cls.__annotations__) == cls._fields


def test_equality_hash_repr_and_no_assignment():
    a = Connection("v", "iqn.x", {"initiator": "iqn.x"}, "t")
    b = Connection(volume_id="v", initiator="iqn.x", connector={"initiator": "iqn.x"}, connected_at="t")
    assert a == b and a != Connection("v", "iqn.y", {}, "t") and a != ("v", "iqn.x", {"initiator": "iqn.x"}, "t")
    assert repr(a) == "Connection(volume_id='v', initiator='iqn.x', connector={'initiator': 'iqn.x'}, connected_at='t', auth=None)"
    t = Transition(frozenset({"available"}), busy="x")
    assert hash(t) == hash(Transition(frozenset({"available"}), "x")) and {t: 1}[Transition(frozenset({"available"}), "x")]
    with pytest.raises(AttributeError, match="cannot assign to field 'busy'"):
        t.busy = "y"
    with pytest.raises(AttributeError):
        del t.busy
    assert vars(t) == {"allowed_from": frozenset({"available"}), "busy": "x", "done": None, "failed": None,
                       "multiattach_also": frozenset(), "force_also": frozenset(), "guards": ()}


def test_dataclasses_functions_work_on_a_record():
    s = Settings(lvm_type="thin")
    assert dataclasses.is_dataclass(s)
    assert [f.name for f in dataclasses.fields(Settings)] == list(Settings._fields)
    assert dataclasses.replace(s, lvm_udev="off") == Settings(lvm_type="thin", lvm_udev="off")
    assert dataclasses.asdict(Outcome(None))["data"] == {}
    assert Outcome(None).data is not Outcome(None).data  # a fresh dict each time, as default_factory=dict gave


def test_a_subclass_without_fields_is_a_record_too():
    class Empty(Record):
        def __init__(self):
            self._init(locals())

    assert Empty() == Empty() and repr(Empty()) == "test_a_subclass_without_fields_is_a_record_too.<locals>.Empty()"
