"""The worlds of tests/worlds.py themselves: each flow runs the helper steps its world says
(which the failure matrix and the crash suite fail and kill at), a fault fails the step it names
and no other, and the views see what the helper did."""

from __future__ import annotations

import pytest
from conftest import INITIATOR_1, INSTANCE_1

from volctl.errors import VolctlError


@pytest.fixture
def make_service(world):
    return world.make_service


def _create(s):
    s.create(size=1, name="v1")


def _exported(s):
    _create(s)
    s.export("v1")


def _connected(s):
    _create(s)
    s.connect("v1", {"initiator": INITIATOR_1})


def _attached(s):
    _create(s)
    s.reserve("v1")
    s.connect("v1", {"initiator": INITIATOR_1})
    s.attach("v1", instance=INSTANCE_1)


FLOWS = {
    "export": (_create, lambda s: s.export("v1")),
    "connect-fresh": (_create, lambda s: s.connect("v1", {"initiator": INITIATOR_1})),
    "connect-exported": (_exported, lambda s: s.connect("v1", {"initiator": INITIATOR_1})),
    "disconnect": (_connected, lambda s: s.disconnect("v1", {"initiator": INITIATOR_1})),
    "detach": (_attached, lambda s: s.detach("v1")),
    "unexport": (_exported, lambda s: s.unexport("v1")),
    "delete-exported": (_exported, lambda s: s.delete("v1")),
    "delete-unexported": (_create, lambda s: s.delete("v1")),
}


@pytest.mark.parametrize("flow", FLOWS)
def test_each_flow_runs_the_steps_its_world_names(world, service, flow):
    setup, run = FLOWS[flow]
    setup(service)
    world.forget()
    run(service)
    assert world.seen() == world.flow_steps(flow)


@pytest.mark.parametrize("flow", [f for f in FLOWS if f != "delete-unexported"])  # rtslib runs no step there
def test_a_fault_fails_the_step_it_names_there(world, service, flow):
    """The first step of each flow made to fail: the flow's helper steps stop there, and the
    error carries the fault's message (the failure matrix fails every step of every flow)."""
    setup, run = FLOWS[flow]
    setup(service)
    world.forget()
    first = world.flow_steps(flow)[:1]
    fault = world.fail(first[0])
    with pytest.raises(VolctlError) as e:
        run(service)
    assert fault.text in str(e.value)
    assert world.seen()[:1] == first


def test_views_follow_the_helper(world, service):
    volume = service.create(size=1, name="v1").volume
    target = world.target_of(volume)
    assert world.live() == {} and world.persisted() is None
    service.connect("v1", {"initiator": INITIATOR_1})
    assert world.live() == {target: {INITIATOR_1}} == world.persisted()
    world.lose(target)
    assert world.live() == {}
    assert world.persisted() == {target: {INITIATOR_1}}
    assert world.residue() == []
