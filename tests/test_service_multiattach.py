"""Multiattach end to end: one target, one ACL per initiator, the export refcounted by live attachments,
and the LVM driver's rule that an ACL shared by live attachments stays; once per target helper
(tests/worlds.py), asserted at the helper seam."""

from __future__ import annotations

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from volctl.errors import InvalidState

INSTANCE_3 = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"


@pytest.fixture
def make_service(world):
    return world.make_service


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def test_two_instances_on_two_initiators_end_to_end(service, host, world):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    target = world.target_of(volume)
    world.forget()

    # instance 1 on initiator 1
    service.reserve("shared")
    info1 = service.connect("shared", {"initiator": INITIATOR_1, "host": "compute1"}).data
    first = service.attach("shared", instance=INSTANCE_1, host="compute1", mountpoint="/dev/vdb").data["attachment_id"]
    # instance 2 on initiator 2: reserve is allowed from in-use because the volume is multiattach
    assert service.reserve("shared").volume.status == "attaching"
    info2 = service.connect("shared", {"initiator": INITIATOR_2, "host": "compute2"}).data
    second = service.attach("shared", instance=INSTANCE_2, host="compute2", mountpoint="/dev/vdc").data["attachment_id"]

    volume = service.show("shared")
    assert (volume.status, volume.attach_status) == ("in-use", "attached")
    assert {a.instance_uuid: a.initiator_over(volume.export_protocol) for a in volume.live_attachments} == {INSTANCE_1: INITIATOR_1, INSTANCE_2: INITIATOR_2}
    # one target, two hosts allowed with the same credentials, one create
    assert world.live() == {target: {INITIATOR_1, INITIATOR_2}} == world.persisted()
    assert world.seen().count("create_export") == 1
    password = volume.provider_auth.split()[2]
    assert world.target_in(info1) == world.target_in(info2) == target
    assert info1["data"]["auth_password"] == info2["data"]["auth_password"] == password

    # detach instance 1: still in-use, the export and both ACLs stay
    world.forget()
    done = service.detach("shared", instance=INSTANCE_1)
    assert done.data == {"attachment_id": first, "export_removed": False}
    assert world.seen() == [] and host.calls == []
    assert done.volume.status == "in-use"
    assert world.live() == {target: {INITIATOR_1, INITIATOR_2}}
    assert done.volume.provider_location

    # disconnect initiator 1: only its ACL goes
    service.disconnect("shared", {"initiator": INITIATOR_1})
    assert world.live() == {target: {INITIATOR_2}} == world.persisted()

    # detach instance 2: available, no target, no ACL
    done = service.detach("shared", attachment_id=second)
    assert done.data == {"attachment_id": second, "export_removed": True}
    assert (done.volume.status, done.volume.attach_status) == ("available", "detached")
    assert world.live() == {} and world.persisted() == {}
    assert done.volume.provider_location is None and done.volume.connections == ()
    assert [a.attach_status for a in done.volume.attachments] == ["detached", "detached"]

    # disconnect after the export went: nothing to run
    world.forget()
    service.disconnect("shared", {"initiator": INITIATOR_2})
    assert world.seen() == [] and host.calls == []

    service.delete("shared")
    assert host.lvs == {} and world.live() == {} and world.persisted() == {}


def test_shared_initiator_keeps_its_acl_until_the_last_attachment(service, host, world):
    """Cinder's LVM terminate_connection: with more than one attachment on the same connector the ACL stays."""
    volume = service.create(size=1, name="shared", multiattach=True).volume
    target = world.target_of(volume)
    service.connect("shared", {"initiator": INITIATOR_1, "host": "compute1"})
    attachment_ids = []
    for instance in (INSTANCE_1, INSTANCE_2):
        service.reserve("shared")
        attachment_ids.append(service.attach("shared", instance=instance, host="compute1").data["attachment_id"])
    volume = service.show("shared")
    assert [a.initiator_over(volume.export_protocol) for a in volume.live_attachments] == [INITIATOR_1, INITIATOR_1]

    # nova tearing down instance 1 (terminate_connection before detach): the ACL is shared, so it stays
    world.forget()
    done = service.disconnect("shared", {"initiator": INITIATOR_1})
    assert world.seen() == [] and host.calls == [] and not done.changed
    assert world.live() == {target: {INITIATOR_1}}
    assert [c.initiator for c in done.volume.connections] == [INITIATOR_1]
    assert any("kept" in (e.detail or "") for e in service.history("shared") if e.action == "disconnect")
    service.detach("shared", attachment_id=attachment_ids[0])
    assert world.live() == {target: {INITIATOR_1}}

    # instance 2 goes the same way: now the ACL is its alone, and then the export goes
    service.disconnect("shared", {"initiator": INITIATOR_1})
    assert world.live() == {target: set()} == world.persisted()
    done = service.detach("shared", attachment_id=attachment_ids[1])
    assert done.data["export_removed"] is True
    assert world.live() == {}
    service.delete("shared")
    assert host.lvs == {} and world.persisted() == {}


def test_second_instance_needs_multiattach(service):
    service.create(size=1, name="single")
    service.reserve("single")
    service.connect("single", {"initiator": INITIATOR_1})
    service.attach("single", instance=INSTANCE_1)
    with pytest.raises(InvalidState) as e:
        service.reserve("single")
    assert "'available'" in str(e.value) and "'in-use'" in str(e.value)
    with pytest.raises(InvalidState) as e:
        service.attach("single", instance=INSTANCE_2)
    assert "multiple attachments are not enabled" in str(e.value)
    assert len(service.show("single").live_attachments) == 1


def test_multiattach_attach_is_idempotent_per_instance(service):
    service.create(size=1, name="shared", multiattach=True)
    service.reserve("shared")
    service.connect("shared", {"initiator": INITIATOR_1})
    first = service.attach("shared", instance=INSTANCE_1).data["attachment_id"]
    service.reserve("shared")
    again = service.attach("shared", instance=INSTANCE_1)
    assert not again.changed and again.data["attachment_id"] == first
    assert again.volume.status == "in-use"
    assert len(again.volume.live_attachments) == 1


def test_three_attachments_status_follows_the_live_ones(service, world):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    initiators = {INSTANCE_1: INITIATOR_1, INSTANCE_2: INITIATOR_2, INSTANCE_3: "iqn.2004-10.com.ubuntu:01:c3"}
    for instance, initiator in initiators.items():
        service.reserve("shared")
        service.connect("shared", {"initiator": initiator})
        service.attach("shared", instance=instance, initiator=initiator)
    assert world.live() == {world.target_of(volume): set(initiators.values())}
    for n, instance in enumerate(initiators, start=1):
        done = service.detach("shared", instance=instance)
        assert done.volume.status == ("available" if n == 3 else "in-use")
        assert done.data["export_removed"] is (n == 3)
        if n < 3:
            assert world.target_of(volume) in world.live()
    assert world.live() == {}


def test_multiattach_through_the_cli(volctl, host, world):
    doc = ok(volctl("create", "--size", "1", "--name", "shared", "--multiattach", "--json")).json()
    assert doc["multiattach"] is True
    for instance, initiator in ((INSTANCE_1, INITIATOR_1), (INSTANCE_2, INITIATOR_2)):
        ok(volctl("reserve", "shared"))
        ok(volctl("connect", "shared", "--initiator", initiator))
        ok(volctl("attach", "shared", "--instance", instance, "--initiator", initiator))
    shown = ok(volctl("show", "shared", "--json")).json()
    assert {a["instance_uuid"] for a in shown["attachments"]} == {INSTANCE_1, INSTANCE_2}
    target = world.target_for(f"volume-{doc['id']}")
    assert world.live() == {target: {INITIATOR_1, INITIATOR_2}}
    r = volctl("detach", "shared")
    assert r.exit_code == 2
    r = ok(volctl("detach", "shared", "--instance", INSTANCE_2))
    assert "export removed" not in r.stderr
    ok(volctl("disconnect", "shared", "--initiator", INITIATOR_2))
    assert world.live() == {target: {INITIATOR_1}}
    r = ok(volctl("detach", "shared"))
    assert "export removed" in r.stderr
    ok(volctl("delete", "shared"))
    assert host.lvs == {} and world.live() == {} and world.persisted() == {}


def test_failed_reconnect_keeps_an_acl_live_attachments_use(service, world):
    """Undoing a failed connect must not take away an ACL that was there (and recorded) before."""
    volume = service.create(size=1, name="shared", multiattach=True).volume
    service.reserve("shared")
    service.connect("shared", {"initiator": INITIATOR_1})
    service.attach("shared", instance=INSTANCE_1)
    world.forget()
    world.fail("persist", times=1, message="save failed")
    with pytest.raises(Exception) as e:
        service.connect("shared", {"initiator": INITIATOR_1})
    assert e.value.exit_code == 6
    assert world.live() == {world.target_of(volume): {INITIATOR_1}}
    assert "disallow" not in world.seen()
    assert [c.initiator for c in service.show("shared").connections] == [INITIATOR_1]


def test_failed_connect_of_a_new_initiator_removes_only_its_acl(service, world):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    service.connect("shared", {"initiator": INITIATOR_1})
    world.forget()
    world.fail("persist", times=1, message="save failed")
    with pytest.raises(Exception):
        service.connect("shared", {"initiator": INITIATOR_2})
    assert world.live() == {world.target_of(volume): {INITIATOR_1}} == world.persisted()
    assert [c.initiator for c in service.show("shared").connections] == [INITIATOR_1]
    assert any(e.action == "undo" and INITIATOR_2 in e.detail for e in service.history("shared"))


def test_disconnect_before_detach_on_two_hosts_takes_only_that_hosts_acl(service, world):
    """Nova's order on a multiattach volume attached on two hosts: terminate_connection (disconnect)
    of the first host while both attachments are still live, then its detach. Only one live
    attachment rides on the first host's initiator, so its ACL goes, live and saved; the second
    host's stays, and so does the export."""
    volume = service.create(size=1, name="shared", multiattach=True).volume
    target = world.target_of(volume)
    for instance, initiator, host in ((INSTANCE_1, INITIATOR_1, "compute1"), (INSTANCE_2, INITIATOR_2, "compute2")):
        service.reserve("shared")
        service.connect("shared", {"initiator": initiator, "host": host})
        service.attach("shared", instance=instance, host=host)
    assert len(service.show("shared").live_attachments) == 2

    done = service.disconnect("shared", {"initiator": INITIATOR_1, "host": "compute1"})
    assert done.changed
    assert world.live() == {target: {INITIATOR_2}} == world.persisted()
    assert [c.initiator for c in done.volume.connections] == [INITIATOR_2]

    done = service.detach("shared", instance=INSTANCE_1)
    assert done.data["export_removed"] is False and done.volume.status == "in-use"
    assert world.live() == {target: {INITIATOR_2}} == world.persisted()
