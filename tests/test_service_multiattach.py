"""Multiattach end to end: one target, one ACL per initiator, the export refcounted by live attachments,
and the LVM driver's rule that an ACL shared by live attachments stays."""

from __future__ import annotations

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from volctl.errors import InvalidState

PREFIX = "iqn.2010-10.org.openstack:"
INSTANCE_3 = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"


def iqn_of(volume) -> str:
    return f"{PREFIX}volume-{volume.id}"


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result


def test_two_instances_on_two_initiators_end_to_end(service, host):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    iqn = iqn_of(volume)

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
    assert {a.instance_uuid: a.initiator for a in volume.live_attachments} == {INSTANCE_1: INITIATOR_1, INSTANCE_2: INITIATOR_2}
    # one target, two ACLs with the same CHAP credentials, one create
    assert list(host.targets) == [iqn]
    user, password = volume.provider_auth.split()[1:]
    assert host.targets[iqn].acls == {INITIATOR_1: (user, password), INITIATOR_2: (user, password)}
    assert host.saved[iqn].acls == host.targets[iqn].acls
    assert len([c for c in host.calls if c[:2] == ["cinder-rtstool", "create"]]) == 1
    assert info1["data"]["target_iqn"] == info2["data"]["target_iqn"] == iqn
    assert info1["data"]["auth_password"] == info2["data"]["auth_password"] == password

    # detach instance 1: still in-use, the export and both ACLs stay
    host.calls.clear()
    done = service.detach("shared", instance=INSTANCE_1)
    assert done.data == {"attachment_id": first, "export_removed": False}
    assert host.calls == []
    assert done.volume.status == "in-use"
    assert set(host.targets[iqn].acls) == {INITIATOR_1, INITIATOR_2}
    assert done.volume.provider_location

    # disconnect initiator 1: only its ACL goes
    service.disconnect("shared", {"initiator": INITIATOR_1})
    assert set(host.targets[iqn].acls) == {INITIATOR_2}
    assert set(host.saved[iqn].acls) == {INITIATOR_2}

    # detach instance 2: available, no target, no ACL
    done = service.detach("shared", attachment_id=second)
    assert done.data == {"attachment_id": second, "export_removed": True}
    assert (done.volume.status, done.volume.attach_status) == ("available", "detached")
    assert host.targets == {} and host.saved == {}
    assert done.volume.provider_location is None and done.volume.connections == ()
    assert [a.attach_status for a in done.volume.attachments] == ["detached", "detached"]

    # disconnect after the export went: nothing to run
    host.calls.clear()
    service.disconnect("shared", {"initiator": INITIATOR_2})
    assert host.calls == []

    service.delete("shared")
    assert host.lvs == {} and host.targets == {} and host.saved == {}


def test_shared_initiator_keeps_its_acl_until_the_last_attachment(service, host):
    """Cinder's LVM terminate_connection: with more than one attachment on the same connector the ACL stays."""
    volume = service.create(size=1, name="shared", multiattach=True).volume
    iqn = iqn_of(volume)
    service.connect("shared", {"initiator": INITIATOR_1, "host": "compute1"})
    attachment_ids = []
    for instance in (INSTANCE_1, INSTANCE_2):
        service.reserve("shared")
        attachment_ids.append(service.attach("shared", instance=instance, host="compute1").data["attachment_id"])
    volume = service.show("shared")
    assert [a.initiator for a in volume.live_attachments] == [INITIATOR_1, INITIATOR_1]

    # nova tearing down instance 1 (terminate_connection before detach): the ACL is shared, so it stays
    host.calls.clear()
    done = service.disconnect("shared", {"initiator": INITIATOR_1})
    assert host.calls == [] and not done.changed
    assert INITIATOR_1 in host.targets[iqn].acls
    assert [c.initiator for c in done.volume.connections] == [INITIATOR_1]
    assert any("kept" in (e.detail or "") for e in service.history("shared") if e.action == "disconnect")
    service.detach("shared", attachment_id=attachment_ids[0])
    assert INITIATOR_1 in host.targets[iqn].acls

    # instance 2 goes the same way: now the ACL is its alone, and then the export goes
    service.disconnect("shared", {"initiator": INITIATOR_1})
    assert host.targets[iqn].acls == {}
    done = service.detach("shared", attachment_id=attachment_ids[1])
    assert done.data["export_removed"] is True
    assert host.targets == {}
    service.delete("shared")
    assert host.lvs == {} and host.saved == {}


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


def test_three_attachments_status_follows_the_live_ones(service, host):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    initiators = {INSTANCE_1: INITIATOR_1, INSTANCE_2: INITIATOR_2, INSTANCE_3: "iqn.2004-10.com.ubuntu:01:c3"}
    for instance, initiator in initiators.items():
        service.reserve("shared")
        service.connect("shared", {"initiator": initiator})
        service.attach("shared", instance=instance, initiator=initiator)
    assert len(host.targets[iqn_of(volume)].acls) == 3
    for n, instance in enumerate(initiators, start=1):
        done = service.detach("shared", instance=instance)
        assert done.volume.status == ("available" if n == 3 else "in-use")
        assert done.data["export_removed"] is (n == 3)
        if n < 3:
            assert iqn_of(volume) in host.targets
    assert host.targets == {}


def test_multiattach_through_the_cli(volctl, host):
    doc = ok(volctl("create", "--size", "1", "--name", "shared", "--multiattach", "--json")).json()
    assert doc["multiattach"] is True
    for instance, initiator in ((INSTANCE_1, INITIATOR_1), (INSTANCE_2, INITIATOR_2)):
        ok(volctl("reserve", "shared"))
        ok(volctl("connect", "shared", "--initiator", initiator))
        ok(volctl("attach", "shared", "--instance", instance, "--initiator", initiator))
    shown = ok(volctl("show", "shared", "--json")).json()
    assert {a["instance_uuid"] for a in shown["attachments"]} == {INSTANCE_1, INSTANCE_2}
    iqn = f"{PREFIX}volume-{doc['id']}"
    assert set(host.targets[iqn].acls) == {INITIATOR_1, INITIATOR_2}
    r = volctl("detach", "shared")
    assert r.exit_code == 2
    r = ok(volctl("detach", "shared", "--instance", INSTANCE_2))
    assert "export removed" not in r.stderr
    ok(volctl("disconnect", "shared", "--initiator", INITIATOR_2))
    assert set(host.targets[iqn].acls) == {INITIATOR_1}
    r = ok(volctl("detach", "shared"))
    assert "export removed" in r.stderr
    ok(volctl("delete", "shared"))
    assert host.lvs == {} and host.targets == {} and host.saved == {}


def test_failed_reconnect_keeps_an_acl_live_attachments_use(service, host):
    """Undoing a failed connect must not take away an ACL that was there (and recorded) before."""
    volume = service.create(size=1, name="shared", multiattach=True).volume
    service.reserve("shared")
    service.connect("shared", {"initiator": INITIATOR_1})
    service.attach("shared", instance=INSTANCE_1)
    host.fail(["cinder-rtstool", "save"], exit_code=1, stderr="save failed", times=1)
    with pytest.raises(Exception) as e:
        service.connect("shared", {"initiator": INITIATOR_1})
    assert e.value.exit_code == 6
    assert INITIATOR_1 in host.targets[iqn_of(volume)].acls
    assert not [c for c in host.calls if c[:2] == ["cinder-rtstool", "delete-initiator"]]
    assert [c.initiator for c in service.show("shared").connections] == [INITIATOR_1]


def test_failed_connect_of_a_new_initiator_removes_only_its_acl(service, host):
    volume = service.create(size=1, name="shared", multiattach=True).volume
    service.connect("shared", {"initiator": INITIATOR_1})
    host.fail(["cinder-rtstool", "save"], exit_code=1, stderr="save failed", times=1)
    with pytest.raises(Exception):
        service.connect("shared", {"initiator": INITIATOR_2})
    assert set(host.targets[iqn_of(volume)].acls) == {INITIATOR_1}
    assert set(host.saved[iqn_of(volume)].acls) == {INITIATOR_1}
    assert [c.initiator for c in service.show("shared").connections] == [INITIATOR_1]
    assert any(e.action == "undo" and INITIATOR_2 in e.detail for e in service.history("shared"))
