"""The values tests/cligen.py builds its cases from: the world's volumes, and for every option and
setting values that volctl must refuse (and the settings it must take)."""

from __future__ import annotations

import json

BAD, NOT_FOUND, EXISTS, WRONG_STATE, ENVIRONMENT = frozenset({2}), frozenset({3}), frozenset({4}), frozenset({5}), frozenset({7})
SURROGATES = ("\udcff", "\udc80", "\udce9")  # bytes ff, 80, e9 as Python decodes a non-UTF-8 argv
I1, I2 = "iqn.1994-05.com.redhat:client1", "iqn.1993-08.org.debian:01:abcdef123456"
I3 = "iqn.2004-01.com.example:fresh"  # connected to nothing
INSTANCE_1, INSTANCE_2 = "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "0b9d1f5e-7c2a-4e8b-b1d3-5a6c7e8f9a0b"
NEW_INSTANCE = "3c9e7a51-5b2d-4f6e-8a1b-2d4c6e8f0a12"
VOLUMES = ("va", "vuse", "vatt", "vmulti", "vexp", "vmaint", "verr")
# The volume each command would succeed on, so a refused case that slipped through shows as a change.
TARGET = {"show": "va", "reserve": "va", "unreserve": "vatt", "export": "va", "connect": "va", "attach": "vatt",
          "detach": "vuse", "disconnect": "vuse", "unexport": "vexp", "delete": "va", "extend": "va",
          "reset-state": "va", "history": "va", "restore": "vexp", "revert": "vsnap", "unmanage": "va"}
STATUSES = ("available", "error", "in-use", "maintenance")
CONTROL = ("\n", "\t", "\x1b", "\r", "\x1b[31m")

SIZE_BAD = ["", " ", "0", "00", "-1", "-0", "1.5", "1.0", "nan", "NaN", "inf", "-inf", "1e3", "١", "٣", "５", "𝟏", "߁",
            "²", "½", "1048577", "9" * 30, "1" + "0" * 400, " 1", "1 ", "+1", "1_0", "0x10", "0b1", "1g", "1G", "1GiB",
            "\udcff", "1\udcff", "1\n", "\t1", "\x1b[31m1"]
STALE_BAD = ["", " ", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-1", "-0.5", "-1e-9", "1e309", "1" + "0" * 400,
             "١", "５", "٣٠٠", "abc", "300s", "5,0", "1_0", "0x10", "\udcff", "5\udcff", " 5", "5\n", "\x1b5"]
NAME_BAD = ["", " ", "-lead", ".hidden", "_x", "has space", "a/b", "../x", "x" * 64, "ünï", "名前", "a:b", "a@b", "a,b", "١",
            "a\nb", "a\tb", "v\x1b[0m", "v\r", "\udcff", "v\udcff", "00000000-0000-0000-0000-000000000000",
            "v\u0430", "\uff56\uff41", "va\u200b", "va\u202e", "va\u00ad", "va\u2028x"]
VOL_BAD = ["", " ", "a b", "a/b", "../va", "\udcff", "va\udcff", "va\n", "\nva", "va\t", "\x1bva", "x" * 64, "ünï", "va;rm",
           "*", "%", "va'", "名前", "v\u0430", "\uff56\uff41", "va\u200b", "\u202eav", "va\u2029", "x" * 100000]
INITIATOR_BAD = ["", " ", "iqn", "iqn.", "client1", "iqn.2010-10.org", "iqn.2010-13.org.openstack:x", "iqn.10-10.org.openstack:x",
                 "iqn.1994-05.com.red_hat:x", "iqn.1994-05.com.redhat:c1 ", " iqn.1994-05.com.redhat:c1",
                 "iqn.1994-05.com.redhat:c1:", "iqn.1994-05.-com.redhat:c1", "iqn.1994-05.com.redhat:c\n1",
                 "iqn.1994-05.com.redhat:c\t1", "iqn.1994-05.com.redhat:c\x1b1", "iqn.1994-05.com.redhat:c\udcff1",
                 "iqn.١٩٩٤-05.com.redhat:c1", "iqn.1994-05.com.redhat:" + "a" * 300, "eui.123", "eui.0123456789abcdeg",
                 "naa.3" + "0" * 15, "naa." + "6" * 32, "naa.6",
                 # host NQNs (NVMe/TCP) volctl cannot use
                 "nqn.", "nqn.2014-08.com.example", "nqn.2014-13.com.example:h", "nqn.2014-08.example:h",
                 "nqn.2014-08.com.example:a b", "nqn.2014-08.com.example:a/b", "nqn.2014-08.org.nvmexpress:uuid:123",
                 "nqn.2014-08.com.example:" + "x" * 200, "nqn.2014-08.com.example:h\n"]
PROTOCOL_BAD = ["", " ", "ISCSI", "nvmet_rdma", "nvme", "fc", "iscsi ", "tcp", "\udcff", "nvmet\x1b_tcp"]
HOST_BAD = ["", " ", "...", "___", "---", "@@@", "\x1b", "\n", "\udcff", "compute\udcff1", "h" * 256]
MOUNTPOINT_BAD = ["", "/dev/\udcff", "/dev/vd\nb", "/dev/vd\tb", "/dev/vd\x1bb", "/dev/vd\rb", "/dev/vd\x00b", "/" + "x" * 255]
MODE_BAD = ["", "RW", "Ro", "rwx", "r", "w", " rw", "rw\n", "\udcff"]
STATUS_BAD = ["", " ", "AVAILABLE", "Available", "bogus", "in use", "in_use", "available\n", "\tavailable", "available\x1b",
              "deleted", "١", "\udcff", "available,in-use", "*", "%", "'; DROP TABLE volumes; --"]
ATTACH_STATUS_BAD = ["", "ATTACHED", "bogus", "detached\n", "\udcff", "in-use", "*"]

# TOML: for each setting, values of a wrong type or outside what volctl takes, and good ones.
SETTINGS_BAD = {
    "volume_group": ["1", "''", "'bad/vg'", "'-vg'", "'..'", "'" + "v" * 200 + "'", "['cinder-volumes']", "'vg\\n'", "'vg\\u001b'",
                     "'vg\\udcff'", "true"],
    "lvm_type": ["'thick'", "''", "1", "'THIN'", "true", "['thin']"],
    "volume_name_template": ["'volume-%s-%s'", "'volume'", "'volume-%d'", "'Volume-%s'", "'%s/x'", "1", "'volume-%s\\n'",
                             "'volume-%%s'", "''"],
    "target_helper": ["'tgtadm'", "1", "''", "'LIOADM'"],
    "target_prefix": ["''", "'iqn.bad'", "1", "'iqn.2010-10.org openstack:'", "'iqn.2010-10.org.openstack:\\n'", "[]"],
    "target_ip_address": ["'300.1.1.1'", "''", "'localhost'", "1", "'nan'", "'127.0.0.1\\n'", "'١٢٧.0.0.1'", "'127.0.0.1 '"],
    "target_secondary_ip_addresses": ["'127.0.0.2'", "[1]", "['bad']", "[[]]", "['127.0.0.2', '127.0.0.2']",
                                      "{}", "['127.0.0.2\\n']"],
    "target_port": ["0", "65536", "-1", "'3260'", "3260.0", "true", "nan", "inf", "-inf", "99999999999999999999", "1e3", "[3260]"],
    "target_protocol": ["'fc'", "1", "'ISCSI'", "''", "'nvmet_rdma'"],
    "nvmet_target_prefix": ["''", "'a b'", "'a/b'", "1", "'" + "x" * 190 + "'", '"x\\n"', '"x\\u001b"'],
    "nvmet_target_port": ["0", "65536", "'4420'", "true", "4420.0"],
    "nvmet_port_id": ["0", "8193", "'1'", "-1"],
    "nvmet_ns_id": ["0", "8193", "'10'", "1.5"],
    "nvmeof_conn_info_version": ["0", "3", "'1'", "true"],
    "nvmet_auth": ["'yes'", "1", "'AUTO'", "''", "true"],
    "nvmet_save_file": ["'config.json'", "''", "1"],
    "volume_clear": ["'shred'", "''", "0", "'none '", "false"],
    "lvm_udev": ["'yes'", "1", "'AUTO'"],
    "lio_save_file": ["'saveconfig.json'", "1"],
    "lvm_conf_file": ["'lvm.conf'", "'/etc/cinder/other.conf'", "1"],
    # one each, so that every pool is gone through in the run's cases; tests/test_config.py tries the rest
    "max_over_subscription_ratio": ["0.5"],
    "reserved_percentage": ["101"],
    "thin_pool_max_data_percent": ["nan"],
    "thin_pool_max_metadata_percent": ["'80'"],
    "report_discard_supported": ["'yes'"],
}
SETTINGS_GOOD = {
    "volume_group": ["'cinder-volumes'", "'other-vg'"],
    "lvm_type": ["'default'", "'thin'"],
    "volume_name_template": ["'volume-%s'", "'vol-%s'"],
    "target_helper": ["'lioadm'"],
    "target_prefix": ["'iqn.2010-10.org.openstack:'", "'iqn.2004-01.com.example:'"],
    "target_ip_address": ["'127.0.0.1'", "'10.0.0.1'", "'::1'"],
    "target_secondary_ip_addresses": ["[]", "['127.0.0.2', '127.0.0.3']"],
    "target_port": ["3260", "3261"],
    "target_protocol": ["'iscsi'", "'iser'"],
    "volume_clear": ["'zero'", "'none'"],
    "lvm_udev": ["'auto'", "'on'", "'off'"],
    "lio_save_file": ["''", "'/etc/target/saveconfig.json'"],
    "lvm_conf_file": ["''", "'/etc/cinder/lvm.conf'"],
    # NVMe settings that stand with any of the others (target_protocol stays iSCSI here: with
    # secondary addresses nvmet_tcp needs nvmeof_conn_info_version = 2, a combination, not a value)
    "nvmet_target_prefix": ["'nvme-subsystem-1'", "'nvme-host-a'"],
    "nvmet_target_port": ["4420", "4421"],
    "nvmet_port_id": ["1", "5"],
    "nvmet_ns_id": ["10", "1"],
    "nvmeof_conn_info_version": ["1", "2"],
    "nvmet_auth": ["'auto'", "'on'", "'off'"],
    "nvmet_save_file": ["'/etc/nvmet/config.json'", "'/srv/nvmet.json'"],
    # generous enough that no generated flow is refused for space (tests/test_thin_admission.py tries the tight ones)
    "max_over_subscription_ratio": ["20.0", "'auto'", "50"],
    "reserved_percentage": ["0", "1"],
    "thin_pool_max_data_percent": ["90", "99.5", "100"],
    "thin_pool_max_metadata_percent": ["80", "95.0"],
    "report_discard_supported": ["'thin'", "true", "false"],
}
TOML_BROKEN = [b"volume_group = ", b"=", b"volume_group = 'a'\nvolume_group = 'b'\n", b"\xff\xfe", b"volume_group = 'caf\xe9'\n",
               b"\xef\xbb\xbfvolume_group = 'x'\n", b"[[[", b"volume_group = 'a\x00'\n", b'volume_group = "a\nb"\n',
               b"volume_group = 'cinder-volumes'\x1b\n", b"[" * 10000, b"a = {" * 5000, b"target_secondary_ip_addresses = " + b"[" * 100000,
               b"target_port = " + b"9" * 5000 + b"\n"]
TOML_UNKNOWN = [b"volume_size = 1\n", b"Volume_Group = 'x'\n", b"[lvm]\nvolume_group = 'x'\n", b"target_ip_addresses = []\n",
                b"\"volume-group\" = 'x'\n", b"volume_group.name = 'x'\n", b"\"volume_group\\n\" = 'x'\n"]


def _connector(**fields: object) -> bytes:
    return json.dumps({"initiator": I3, **fields}).encode()


CONNECTOR_BAD = [
    b"", b" ", b"not json", b"{", b"{'initiator': 'x'}", b"[]", b"null", b"42", b'"' + I3.encode() + b'"', b"{}",
    b'{"host": "compute1"}', b'{"initiator": 123}', b'{"initiator": null}', b'{"initiator": ""}', b'{"initiator": true}',
    json.dumps({"initiator": [I3]}).encode(), b'{"initiator": {"name": "x"}}', b'{"initiator": "bad"}',
    b'{"initiator": "iqn.1994-05.com.redhat:c\\n1"}', b'{"initiator": "iqn.1994-05.com.redhat:c\\u001b1"}',
    b'{"initiator": "iqn.1994-05.com.redhat:c\\udcff1"}', b'{"initiator": "iqn.1994-05.com.redhat:c\xff1"}',
    b"\xff\xfe{\x00}\x00", b'\xef\xbb\xbf{"initiator": "' + I3.encode() + b'"}',
    _connector()[:-1] + b', "host": "h\xe9"}', _connector()[:-1] + b', "host": "c\\udcff1"}',
    _connector()[:-1] + b', "os_type": "linux\\udcff"}', _connector()[:-1] + b', "multipath": NaN}',
    _connector()[:-1] + b', "multipath": 1e999}',
    _connector()[:-1] + b', "x": ' + b"1" * 5000 + b"}", _connector()[:-1] + b', "x": 1e999}',
    b'{"initiator": "iqn.1994-05.com.redhat:client1", "initiator": "iqn.2004-01.com.example:fresh"}',
    _connector()[:-1] + b', "os_type": NaN}', _connector()[:-1] + b', "x": Infinity}', _connector()[:-1] + b', "x": [-Infinity]}',
    b"[" * 100000 + b"]" * 100000, b"[" * 100000, b'{"a":' * 50000 + b"1" + b"}" * 50000,
    _connector(pad="x" * (2 << 20)),
] + [_connector(**{key: value}) for key, values in {
    "multipath": ["false", "true", 1, 0, [], {}], "enforce_multipath": ["true", 1, "no"],
    "host": [123, [], {}, True, 1.5], "mode": [1, True, [], "rwx", "RW", ""], "initiator": [[I3], 7]}.items() for value in values]

# (command, volume): well-formed, but the volume's state does not allow the command
STATE = [("reserve", "vuse"), ("reserve", "vatt"), ("reserve", "verr"), ("reserve", "vmaint"), ("unreserve", "va"),
         ("unreserve", "vuse"), ("unreserve", "verr"), ("unreserve", "vexp"), ("export", "verr"), ("export", "vmaint"),
         ("connect", "verr"), ("connect", "vmaint"), ("attach", "va"), ("attach", "verr"), ("attach", "vuse"), ("attach", "vexp"),
         ("attach", "vmaint"), ("detach", "va"), ("detach", "vatt"), ("detach", "verr"), ("detach", "vexp"), ("detach", "vmaint"),
         ("disconnect", "vmaint"), ("unexport", "vuse"), ("unexport", "vmulti"), ("delete", "vuse"), ("delete", "vatt"),
         ("delete", "vmulti"), ("delete", "vmaint"), ("extend", "vatt"), ("extend", "verr"), ("extend", "vmaint"),
         ("unmanage", "vuse"), ("unmanage", "vatt"), ("unmanage", "vmulti"), ("unmanage", "vmaint"), ("unmanage", "vsnap")]
LV_BAD = ["", " ", "-lead", "a b", "vg/lv", "../x", "x" * 200, "lv\n", "\udcff", "lv\x1b", "ünï", "a:b", "*"]
