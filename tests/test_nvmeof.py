"""NVMe-oF names and formats (volctl/nvmeof.py): host NQNs, subsystem NQNs, DH-HMAC-CHAP secrets
as the kernel reads them, Cinder's provider_location and connection info (versions 1 and 2)."""

from __future__ import annotations

import base64
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volctl import nvmeof
from volctl.errors import UsageError
from volctl.nvmeof import NvmeConfig

VOL = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
NQN = f"nqn.nvme-subsystem-1-{VOL}"


@pytest.mark.parametrize("name", [
    "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "nqn.2014-08.org.nvmexpress:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427",
    "nqn.2014-08.com.example:nvme:host-1",
    "nqn.2024-12.io.example.storage:compute1.rack-2",
])
def test_host_nqns_the_spec_allows(name):
    assert nvmeof.host_nqn(name) == name  # kept as given: NQNs compare exactly


@pytest.mark.parametrize("name, why", [
    ("", "empty"),
    ("iqn.1994-05.com.redhat:client1", "nqn."),
    ("nqn.2014-13.com.example:h", "nqn."),  # month 13
    ("nqn.2014-08.example:h", "nqn."),  # one label
    ("nqn.2014-08.com.example", "nqn."),  # no ':' part
    ("nqn.2014-08.com.example:has space", "nqn."),
    ("nqn.2014-08.com.example:a/b", "nqn."),  # a configfs directory name
    ("nqn.2014-08.org.nvmexpress:uuid:not-a-uuid", "nqn."),
    ("nqn.2014-08.com.example:" + "x" * 200, "223 bytes"),
])
def test_bad_host_nqns_are_usage_errors(name, why):
    with pytest.raises(UsageError, match=why) as refused:
        nvmeof.host_nqn(name)
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)


def test_the_longest_allowed_host_nqn():
    head = "nqn.2014-08.com.example:"
    assert nvmeof.host_nqn(head + "x" * (223 - len(head))) and len(head + "x" * (223 - len(head))) == 223


def test_subsystem_nqn_is_cinders_and_reads_back():
    config = NvmeConfig()
    assert config.nqn(VOL) == NQN  # Cinder's _get_target_nqn with devstack's prefix
    assert config.volume_id_of(NQN) == VOL
    assert config.volume_id_of("nqn.2024-01.org.example:other") is None
    assert NvmeConfig(ips=("a", "b", "c"), port_id=5).port_ids() == (5, 6, 7)


def test_dhchap_secrets_are_what_the_kernel_accepts():
    secret = nvmeof.dhchap_secret()
    assert secret.startswith("DHHC-1:01:") and secret.endswith(":")
    raw = base64.b64decode(secret[10:-1])
    assert len(raw) == 36 and zlib.crc32(raw[:32]).to_bytes(4, "little") == raw[32:]
    assert nvmeof.valid_dhchap_secret(secret)
    assert len({nvmeof.dhchap_secret() for _ in range(50)}) == 50


def test_a_secret_with_a_wrong_crc_or_length_is_not_valid():
    raw = bytearray(base64.b64decode(nvmeof.dhchap_secret()[10:-1]))
    raw[-1] ^= 1
    assert not nvmeof.valid_dhchap_secret(f"DHHC-1:01:{base64.b64encode(bytes(raw)).decode()}:")
    short = base64.b64encode(b"x" * 20).decode()
    assert not nvmeof.valid_dhchap_secret(f"DHHC-1:01:{short}:")
    assert not nvmeof.valid_dhchap_secret("DHHC-1:09:" + "A" * 48 + ":")


def test_host_keys_never_show_in_a_repr():
    keys = nvmeof.generate_host_keys()
    assert keys.host_key not in repr(keys) and keys.ctrl_key not in str(keys)


@given(st.lists(st.sampled_from(["127.0.0.1", "10.0.0.5", "fd00::5"]), min_size=1, max_size=3, unique=True),
       st.integers(1, 65535), st.integers(1, 8192))
def test_provider_location_round_trips(ips, port, ns_id):
    location = nvmeof.provider_location(ips, port, NQN, ns_id)
    loc = nvmeof.parse_provider_location(location)
    assert (list(loc.ips), loc.port, loc.transport, loc.nqn, loc.ns_id) == (ips, str(port), "tcp", NQN, str(ns_id))
    assert nvmeof.recorded_nqn(location) == NQN


def test_connection_properties_v1_and_v2_are_cinders():
    location = f"10.0.0.5,10.0.0.6:4420 tcp {NQN} 10"
    v1 = nvmeof.connection_properties(volume_id=VOL, location=location, version=1, keys=None)
    assert v1 == {"target_portal": "10.0.0.5", "target_port": "4420", "nqn": NQN, "transport_type": "tcp", "ns_id": "10"}
    v2 = nvmeof.connection_properties(volume_id=VOL, location=location, version=2, keys=None)
    assert v2 == {"target_nqn": NQN, "vol_uuid": VOL, "portals": [["10.0.0.5", "4420", "tcp"], ["10.0.0.6", "4420", "tcp"]],
                  "ns_id": "10"}
    assert json.loads(json.dumps(v2)) == v2  # Cinder's tuples are JSON lists on the wire
