"""Cinder's byte formats: CHAP credentials, provider_location, provider_auth, connection info."""

from __future__ import annotations

import ipaddress
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volctl import iscsi
from volctl.iscsi import Chap

FAST = settings(max_examples=200)

VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
IQN = f"iqn.2010-10.org.openstack:volume-{VOL}"
GROUPS = ("23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz")


# -- CHAP ------------------------------------------------------------------------------------


def test_alphabet_is_cinders_57_symbols():
    assert iscsi.SYMBOL_GROUPS == GROUPS
    assert len(iscsi.ALPHABET) == len(set(iscsi.ALPHABET)) == 57
    assert not set("01IOl") & set(iscsi.ALPHABET)


def test_generated_chap_shape():
    seen_users, seen_passwords = set(), set()
    for _ in range(300):
        chap = iscsi.generate_chap()
        assert len(chap.username) == 20
        assert len(chap.password) == 16
        for secret in (chap.username, chap.password):
            assert set(secret) <= set(iscsi.ALPHABET)
            for group in GROUPS:
                assert set(secret) & set(group), (secret, group)
        seen_users.add(chap.username)
        seen_passwords.add(chap.password)
    # 57**16 possibilities: any repeat in 300 draws means the generator is broken.
    assert len(seen_users) == len(seen_passwords) == 300


def test_chap_does_not_come_from_the_seedable_random_module():
    random.seed(1234)
    first = iscsi.generate_chap()
    random.seed(1234)
    second = iscsi.generate_chap()
    assert first != second


def test_every_symbol_position_varies():
    """The 'one of each group' symbols must be shuffled in, not always at the front."""
    firsts = {iscsi.generate_chap().password[0] for _ in range(200)}
    assert any(c in GROUPS[1] for c in firsts) and any(c in GROUPS[2] for c in firsts) and any(c in GROUPS[0] for c in firsts)


def test_chap_repr_and_str_hide_the_password():
    chap = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
    for text in (repr(chap), str(chap), f"{chap}", repr([chap]), repr({"auth": chap})):
        assert "Jo57JJGdFmiLqNtK" not in text
        assert "kjRwYpBnpu9GT47Mfux8" in text
    assert chap.password == "Jo57JJGdFmiLqNtK"


# -- provider_auth ---------------------------------------------------------------------------


def test_provider_auth_format_and_parse():
    chap = Chap("kjRwYpBnpu9GT47Mfux8", "Jo57JJGdFmiLqNtK")
    text = iscsi.provider_auth(chap)
    assert text == "CHAP kjRwYpBnpu9GT47Mfux8 Jo57JJGdFmiLqNtK"
    # Cinder reads it back with split(' ', 3)
    method, user, password = text.split(" ", 3)
    assert (method, user, password) == ("CHAP", chap.username, chap.password)
    assert iscsi.parse_provider_auth(text) == chap


def test_parse_provider_auth_empty():
    assert iscsi.parse_provider_auth(None) is None
    assert iscsi.parse_provider_auth("") is None


def test_parse_provider_auth_other_method():
    with pytest.raises(ValueError):
        iscsi.parse_provider_auth("KRB5 user pass")


@FAST
@given(st.builds(Chap, st.text(iscsi.ALPHABET, min_size=1, max_size=20), st.text(iscsi.ALPHABET, min_size=1, max_size=16)))
def test_provider_auth_round_trip(chap):
    assert iscsi.parse_provider_auth(iscsi.provider_auth(chap)) == chap


# -- provider_location -----------------------------------------------------------------------


def test_provider_location_single_portal():
    assert iscsi.provider_location(("10.0.0.5",), 3260, IQN) == f"10.0.0.5:3260,{IQN} {IQN} 0"


def test_provider_location_two_portals():
    assert (
        iscsi.provider_location(["10.0.0.5", "10.0.0.6"], 3260, IQN)
        == f"10.0.0.5:3260;10.0.0.6:3260,{IQN} {IQN} 0"
    )


def test_provider_location_ipv6_gets_brackets():
    assert (
        iscsi.provider_location(("fd00::5", "10.0.0.6"), 3261, IQN)
        == f"[fd00::5]:3261;10.0.0.6:3261,{IQN} {IQN} 0"
    )
    assert iscsi.portal("::1", 3260) == "[::1]:3260"
    assert iscsi.portal("127.0.0.1", 3260) == "127.0.0.1:3260"


def test_parse_real_devstack_location():
    value = (
        "172.16.194.168:3260,iqn.2010-10.org.openstack:volume-1e94b2d5-5d4b-4a8c-9c8f-0d3e1a2b3c4d "
        "iqn.2010-10.org.openstack:volume-1e94b2d5-5d4b-4a8c-9c8f-0d3e1a2b3c4d 0"
    )
    loc = iscsi.parse_provider_location(value)
    assert loc.portals == ("172.16.194.168:3260",)
    assert loc.iqn == "iqn.2010-10.org.openstack:volume-1e94b2d5-5d4b-4a8c-9c8f-0d3e1a2b3c4d"
    assert loc.lun == 0


@pytest.mark.parametrize("tail, lun", [(" 1", 1), (" 0", 0), ("", 0), (" x", 0), (" \u00b2", 0), (" 12", 12)])
def test_parse_lun_is_lenient_like_cinder(tail, lun):
    assert iscsi.parse_provider_location(f"10.0.0.5:3260,1 {IQN}{tail}").lun == lun


_ips = st.ip_addresses().map(str)


@FAST
@given(st.lists(_ips, min_size=1, max_size=4, unique=True), st.integers(1, 65535), st.integers(0, 255))
def test_provider_location_round_trip(ips, port, lun):
    text = iscsi.provider_location(ips, port, IQN, lun)
    assert text.count(" ") == 2 and text.endswith(f" {IQN} {lun}")
    loc = iscsi.parse_provider_location(text)
    assert loc.iqn == IQN and loc.lun == lun
    assert len(loc.portals) == len(ips)
    for portal, ip in zip(loc.portals, ips):
        host, _, port_text = portal.rpartition(":")
        assert int(port_text) == port
        if ipaddress.ip_address(ip).version == 6:
            assert host == f"[{ip}]"
        else:
            assert host == ip


# -- connection info -------------------------------------------------------------------------

AUTH = "CHAP kjRwYpBnpu9GT47Mfux8 Jo57JJGdFmiLqNtK"


def info(location, connector=None, **kw):
    args = dict(volume_id=VOL, location=location, auth=AUTH, protocol="iscsi", connector=connector or {"initiator": "iqn.1994-05.com.redhat:c1"},
                access_mode="rw")
    args.update(kw)
    return iscsi.connection_info(**args)


def test_connection_info_single_path_exact():
    result = info(f"10.0.0.5:3260,{IQN} {IQN} 0")
    assert result == {
        "driver_volume_type": "iscsi",
        "data": {
            "target_discovered": False,
            "target_portal": "10.0.0.5:3260",
            "target_iqn": IQN,
            "target_lun": 0,
            "volume_id": VOL,
            "auth_method": "CHAP",
            "auth_username": "kjRwYpBnpu9GT47Mfux8",
            "auth_password": "Jo57JJGdFmiLqNtK",
            "encrypted": False,
            "qos_specs": None,
            "access_mode": "rw",
            "cacheable": False,
            "enforce_multipath": False,
        },
    }
    # and it serializes to the JSON os-brick reads
    assert json.loads(json.dumps(result)) == result
    assert '"target_discovered": false' in json.dumps(result)
    assert '"qos_specs": null' in json.dumps(result)


MULTI = {
    "target_portals": ["10.0.0.5:3260", "10.0.0.6:3260"],
    "target_iqns": [IQN, IQN],
    "target_luns": [0, 0],
}


def test_connection_info_two_portals_lists_every_path():
    data = info(f"10.0.0.5:3260;10.0.0.6:3260,{IQN} {IQN} 0")["data"]
    assert {k: data[k] for k in MULTI} == MULTI
    assert data["target_portal"] == "10.0.0.5:3260"
    assert data["target_iqn"] == IQN and data["target_lun"] == 0


def test_connection_info_connector_multipath_single_portal():
    data = info(f"10.0.0.5:3260,{IQN} {IQN} 0", {"initiator": "iqn.1994-05.com.redhat:c1", "multipath": True})["data"]
    assert data["target_portals"] == ["10.0.0.5:3260"]
    assert data["target_iqns"] == [IQN]
    assert data["target_luns"] == [0]


def test_connection_info_connector_multipath_false_single_portal():
    data = info(f"10.0.0.5:3260,{IQN} {IQN} 0", {"initiator": "i", "multipath": False})["data"]
    assert not {"target_portals", "target_iqns", "target_luns"} & set(data)


def test_connection_info_forced_multipath():
    data = info(f"10.0.0.5:3260,{IQN} {IQN} 0", force_multipath=True)["data"]
    assert data["target_portals"] == ["10.0.0.5:3260"]


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), (None, False)])
def test_connection_info_enforce_multipath_from_connector(value, expected):
    connector = {"initiator": "i", "multipath": True}
    if value is not None:
        connector["enforce_multipath"] = value
    data = info(f"10.0.0.5:3260,{IQN} {IQN} 0", connector)["data"]
    assert data["enforce_multipath"] is expected


def test_connection_info_iser_and_read_only():
    result = info(f"[fd00::5]:3260,{IQN} {IQN} 0", protocol="iser", access_mode="ro")
    assert result["driver_volume_type"] == "iser"
    assert result["data"]["access_mode"] == "ro"
    assert result["data"]["target_portal"] == "[fd00::5]:3260"


def test_connection_info_without_auth_has_no_auth_keys():
    data = info(f"10.0.0.5:3260,{IQN} {IQN} 0", auth=None)["data"]
    assert not {"auth_method", "auth_username", "auth_password"} & set(data)


def test_connection_info_lun_from_location():
    data = info(f"10.0.0.5:3260;10.0.0.6:3260,1 {IQN} 1")["data"]
    assert data["target_lun"] == 1 and data["target_luns"] == [1, 1]


def test_volume_id_of_a_target_named_as_volctl_names_them():
    config = iscsi.IscsiConfig(prefix="iqn.2010-10.org.openstack:", lv_template="volume-%s")
    assert config.volume_id_of(f"iqn.2010-10.org.openstack:volume-{VOL}") == VOL
    assert config.volume_id_of(f"iqn.2010-10.org.openstack:volume-{VOL}x") is None
    assert config.volume_id_of(f"iqn.2003-01.org.example:volume-{VOL}") is None  # another prefix
    assert config.volume_id_of("iqn.2010-10.org.openstack:volume-not-a-uuid") is None
    odd = iscsi.IscsiConfig(prefix="iqn.2024-01.org.example:", lv_template="vol.%s.lv")
    assert odd.volume_id_of(f"iqn.2024-01.org.example:vol.{VOL}.lv") == VOL
    assert odd.volume_id_of(f"iqn.2024-01.org.example:volX{VOL}.lv") is None  # '.' is not a wildcard
