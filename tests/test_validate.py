"""Validators: examples from the contract and RFC 3720/3980, plus property-based checks against
independent re-implementations (rtslib's normalize_wwn, Cinder's sanitize_hostname)."""

from __future__ import annotations

import ipaddress
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volctl import iscsi, validate
from volctl.errors import ExitCode, UsageError

FAST = settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])

CONTRACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def rejects(fn, value, *args):
    with pytest.raises(UsageError) as info:
        fn(value, *args)
    assert info.value.exit_code == ExitCode.USAGE == 2
    assert "\n" not in str(info.value)
    return str(info.value)


def only_usage_error(fn, value):
    """Call fn; a refusal must be UsageError and nothing else. Returns the result or None."""
    try:
        return fn(value)
    except UsageError:
        return None


# -- volume names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "0", "db-01", "Web_Server.2", "x" * 63, "A" + "-._" * 20 + "z"])
def test_volume_name_accepts(name):
    assert validate.volume_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", ".a", "_a", "x" * 64, "a b", "a/b", "a\n", "é", "a:b", "a\x00"])
def test_volume_name_rejects(name):
    message = rejects(validate.volume_name, name)
    assert "invalid volume name" in message


UUID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def contract_name(text: str) -> bool:
    """The contract: the name pattern, and never shaped like a UUID."""
    return bool(CONTRACT_NAME.fullmatch(text)) and not UUID_SHAPE.fullmatch(text)


@FAST
@given(st.from_regex(CONTRACT_NAME, fullmatch=True).filter(contract_name))
def test_volume_name_generated_valid_names_pass(name):
    assert validate.volume_name(name) == name


@FAST
@given(st.one_of(st.text(max_size=80), st.uuids().map(str), st.uuids().map(lambda u: str(u).upper())))
def test_volume_name_random_text(text):
    result = only_usage_error(validate.volume_name, text)
    assert (result is not None) == contract_name(text)


@pytest.mark.parametrize("name", ["6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "6F1C0E6A-0B6E-4C43-9A43-2F8F3C1D9E10",
                                  "00000000-0000-0000-0000-000000000000"])
def test_volume_name_shaped_like_a_uuid_is_ambiguous(name):
    assert "ambiguous" in rejects(validate.volume_name, name)


def test_volume_ref_takes_ids_in_any_case_and_names():
    assert validate.volume_ref("6F1C0E6A-0B6E-4C43-9A43-2F8F3C1D9E10") == "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10"
    assert validate.volume_ref("db-01") == "db-01"
    for bad in ("", "a b", "-x", "\udcff", "a\nb", "x" * 64):
        assert "invalid volume" in rejects(validate.volume_ref, bad)


# -- text from the command line: sizes and seconds -------------------------------------------


@pytest.mark.parametrize("text", ["١", "５", "1_0", " 5", "5 ", "+5", "-1", "0", "1048577", "", "1.0", "0x10", "²", "1e3"])
def test_size_text_is_ascii_digits_in_range(text):
    assert "invalid size" in rejects(validate.size_text, text)


@FAST
@given(st.text(max_size=12))
def test_size_text_property(text):
    result = only_usage_error(validate.size_text, text)
    ascii_number = re.fullmatch(r"[0-9]+", text) is not None and 1 <= int(text) <= validate.MAX_GIB
    assert (result is not None) == ascii_number
    if result is not None:
        assert result == int(text)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "infinity", "1e9", "-1", "", " 1", "١", "0x1", "1.", ".5"])
def test_seconds_text_refuses(text):
    rejects(validate.seconds_text, text)


@FAST
@given(st.one_of(st.text(max_size=12), st.floats().map(str)))
def test_seconds_text_property(text):
    result = only_usage_error(validate.seconds_text, text)
    if result is not None:
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) and result == float(text) and result >= 0


# -- connectors ------------------------------------------------------------------------------

INITIATOR = "iqn.1994-05.com.redhat:client1"


@pytest.mark.parametrize("key,value", [("multipath", "false"), ("multipath", 0), ("enforce_multipath", "yes"),
                                       ("host", 7), ("host", ["a"]), ("mode", True), ("mode", "rx"), ("initiator", 5),
                                       ("initiator", None), ("host", "___")])
def test_connector_keys_volctl_reads_are_type_checked(key, value):
    message = rejects(validate.connector_dict, {"initiator": INITIATOR, key: value})
    assert key in message or "initiator" in message or "host" in message


@pytest.mark.parametrize("host", ["compu\x1b[31mte9", "\ncompute9", "compute\t9", "", "___", "\u2028", "h" * 256])
def test_host_with_control_characters_or_nothing_left_is_refused(host):
    assert "invalid host" in rejects(validate.host_name, host)


def test_connector_accepts_os_bricks_properties():
    properties = {"initiator": INITIATOR.upper(), "multipath": False, "enforce_multipath": False, "host": "compute_1",
                  "platform": "x86_64", "os_type": "linux", "ip": "192.0.2.10", "do_local_attach": False, "mode": "ro",
                  "uuid": None, "nqn": "nqn.2014-08.org.nvmexpress:uuid:00000000"}
    assert validate.connector_dict(properties) == {**properties, "initiator": INITIATOR}


@pytest.mark.parametrize("data,why", [
    (b'{"initiator": "iqn.1994-05.com.redhat:c\xff1"}', "not UTF-8: byte '\\xff' at offset 39"),
    (b"[" * 100_000 + b"]" * 100_000, "larger than 64 KiB"),
    (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    (b'{"initiator": ', "not JSON"),
    (b"[]", "must be a JSON object"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "os_type": NaN}', "holds NaN"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "x": -Infinity}', "holds -Infinity"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "x": 1e999}', "too large for a float"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "x": ' + b"1" * 5000 + b"}", "integer of 5000 digits"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "initiator": "iqn.2004-01.com.example:x"}', "gives 'initiator' twice"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "host": "c\\udcff1"}', "which is not a character"),
    (b'{"initiator": "iqn.1994-05.com.redhat:c1", "os_type": "linux\\ud800"}', "which is not a character"),
    (b"{}", "has no 'initiator'"),
])
def test_parse_connector_refuses(data, why):
    assert why in rejects(validate.parse_connector, data, "stdin")


# -- quoting: every message is one line ------------------------------------------------------


@pytest.mark.parametrize("value,shown", [("\udcff", "'\\xff'"), (b"\xff", "'\\xff'"), ("a\nb", "'a\\nb'"),
                                         ("tab\there", "'tab\\there'"), ("\x1b[31m", "'\\x1b[31m'"),
                                         ("it's", "'it\\'s'"), ("é", "'é'"), (1.5, "1.5"), ("\u2028", "'\\u2028'")])
def test_quoted_is_one_printable_line(value, shown):
    from volctl.errors import quoted

    assert quoted(value) == shown


@FAST
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_quoted_property(text):
    from volctl.errors import quoted

    shown = quoted(text)
    assert shown.isprintable() and "\n" not in shown
    shown.encode("utf-8")  # always printable to a UTF-8 terminal


# -- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 1024, 1_048_576])
def test_size_accepts(size):
    assert validate.size_gib(size) == size


@pytest.mark.parametrize("size", [0, -1, 1_048_577, True, False, 1.0, "1", None])
def test_size_rejects(size):
    rejects(validate.size_gib, size)


@FAST
@given(st.integers())
def test_size_property(n):
    result = only_usage_error(validate.size_gib, n)
    assert (result == n) if 1 <= n <= 1_048_576 else result is None


# -- UUIDs -----------------------------------------------------------------------------------


@FAST
@given(st.uuids())
def test_uuid_generated_pass_in_canonical_lower_form(u):
    assert validate.uuid_str(str(u)) == str(u)
    assert validate.uuid_str(str(u).upper()) == str(u)


@pytest.mark.parametrize(
    "value",
    [
        "", "6f1c0e6a0b6e4c439a432f8f3c1d9e10", "{6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10}",
        "urn:uuid:6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e1",
        "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10 ", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e1g", "6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10\n",
    ],
)
def test_uuid_rejects(value):
    message = rejects(validate.uuid_str, value, "instance UUID")
    assert "instance UUID" in message


@FAST
@given(st.text(alphabet="0123456789abcdefABCDEF-{}:urnid \n", max_size=45))
def test_uuid_random_text(text):
    result = only_usage_error(validate.uuid_str, text)
    if result is not None:
        assert result == str(uuid.UUID(text)) == text.lower()
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", result)


# -- initiator names -------------------------------------------------------------------------


def rtslib_accepts(wwn: str) -> bool:
    """rtslib-fb utils.normalize_wwn for the iSCSI types (iqn, naa, eui), re-implemented here."""
    wwn = wwn.lower()
    if re.match(r"iqn\.[0-9]{4}-[0-1][0-9]\..*\..*", wwn) and " " not in wwn and "_" not in wwn:
        return True
    if re.match(r"naa\.[125c-f][0-9a-f]{15}$", wwn):
        return True
    return bool(re.match(r"eui\.[0-9a-f]{16}$", wwn))


@pytest.mark.parametrize(
    "name",
    [
        "iqn.1994-05.com.redhat:client1",
        "iqn.1993-08.org.debian:01:abcdef123456",
        "iqn.2004-10.com.ubuntu:01:7a3f2e1b9c4d",
        "iqn.2010-10.org.openstack:volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10",
        "iqn.2001-04.com.example",
        "iqn.2001-04.com.example:storage.disk2.sys1.xyz",
        "eui.02004567a425678d",
        "naa.52004567ba64678d",
        "naa.c0014051e8bfa2d4",
        "naa.10014051e8bfa2d4",
    ],
)
def test_initiator_accepts(name):
    assert iscsi.initiator_name(name) == name
    assert rtslib_accepts(name)


@pytest.mark.parametrize(
    "name, lowered",
    [
        ("IQN.1994-05.COM.RedHat:Client1", "iqn.1994-05.com.redhat:client1"),
        ("EUI.02004567A425678D", "eui.02004567a425678d"),
        ("NAA.52004567BA64678D", "naa.52004567ba64678d"),
    ],
)
def test_initiator_is_returned_lower_case(name, lowered):
    assert iscsi.initiator_name(name) == lowered


@pytest.mark.parametrize(
    "name",
    [
        "",
        "client1",
        "iqn.1994-05",
        "iqn.1994-05.com",  # rtslib wants two dots after the date
        "iqn.1994-13.com.redhat:x",  # month 13
        "iqn.1994-00.com.redhat:x",
        "iqn.94-05.com.redhat:x",
        "iqn.1994-5.com.redhat:x",
        "iqn.1994-05.com.red_hat:x",  # rtslib refuses '_'
        "iqn.1994-05.com.redhat:my_host",
        "iqn.1994-05.com.redhat:my host",
        "iqn.1994-05.com.redhat:x\n",
        "iqn.1994-05.com.redhat:x\t",
        " iqn.1994-05.com.redhat:x",
        "iqn.1994-05.com.redhat:x;rm -rf /",
        "iqn.1994-05.com.redhat:x/../y",
        "eui.02004567a425678",  # 15 hex
        "eui.02004567a425678d0",  # 17 hex
        "eui.02004567a425678g",
        "naa.32004567ba64678d",  # NAA type 3 is not taken by LIO
        "naa.42004567ba64678d",
        "naa.72004567ba64678d",
        "naa.60014051e8bfa2d4",  # rtslib's [125c-f]: a 16-digit NAA never starts with 6
        "naa.6001405" + "0" * 25,  # 32 hex digits: RFC 3980 allows it, LIO does not
        "naa.52004567ba64678",
        "ib.0123456789abcdef0123456789abcdef",
        "fc.0123456789abcdef",
    ],
)
def test_initiator_rejects(name):
    message = rejects(iscsi.initiator_name, name)
    assert "initiator name" in message


def test_initiator_length_limit_is_223_bytes():
    base = "iqn.1994-05.com.redhat:"
    ok = base + "a" * (223 - len(base))
    assert len(ok.encode()) == 223
    assert iscsi.initiator_name(ok) == ok
    message = rejects(iscsi.initiator_name, ok + "b")
    assert "223" in message


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@st.composite
def valid_iqns(draw):
    year = draw(st.integers(1000, 9999))
    month = draw(st.integers(1, 12))
    labels = draw(st.lists(_label, min_size=2, max_size=4))
    name = f"iqn.{year:04d}-{month:02d}." + ".".join(labels)
    if draw(st.booleans()):
        name += ":" + draw(st.from_regex(r"[a-z0-9.:-]{0,30}[a-z0-9]", fullmatch=True))
    if draw(st.booleans()):
        name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return name


@FAST
@given(valid_iqns())
def test_initiator_generated_iqns_pass(name):
    result = iscsi.initiator_name(name)
    assert result == name.lower()
    assert rtslib_accepts(result)


@FAST
@given(st.from_regex(r"eui\.[0-9a-fA-F]{16}", fullmatch=True) | st.from_regex(r"naa\.[125c-fC-F][0-9a-fA-F]{15}", fullmatch=True))
def test_initiator_generated_eui_naa_pass(name):
    assert iscsi.initiator_name(name) == name.lower()


# Text that looks like a name with a prefix, then anything: the interesting half of the space.
_tail_chars = st.characters(codec="utf-8") | st.sampled_from(list("0123456789abcdefABCDEF.-:_ \n\t/;K\u212a"))
_candidates = st.one_of(
    st.text(max_size=60),
    st.tuples(st.sampled_from(["iqn.", "IQN.", "eui.", "naa.", "iqn.2010-10.", "iqn.1994-05.com."]),
              st.text(_tail_chars, max_size=60)).map("".join),
    valid_iqns().flatmap(lambda n: st.text(_tail_chars, max_size=3).map(lambda t: n + t)),
)


@FAST
@given(_candidates)
def test_initiator_accepted_means_rtslib_accepts_it(text):
    """Anything volctl takes, LIO takes too: lower-case, at most 223 bytes, ASCII, no space, no '_'."""
    result = only_usage_error(iscsi.initiator_name, text)
    if result is not None:
        assert rtslib_accepts(result)
        assert result == result.lower()
        assert result.isascii()
        assert len(result.encode()) <= 223
        assert not any(c in result for c in " _\t\n\r")
        assert re.fullmatch(r"(iqn|eui|naa)\.[a-z0-9.:-]+", result)


# -- IPs and ports ---------------------------------------------------------------------------


@FAST
@given(st.ip_addresses())
def test_ip_generated_pass_in_canonical_form(ip):
    assert validate.ip_address(str(ip)) == str(ip)
    assert validate.ip_address(ip.exploded) == str(ip)


@pytest.mark.parametrize("value, canonical", [("10.0.0.5", "10.0.0.5"), ("FD00::0005", "fd00::5"), ("::1", "::1")])
def test_ip_canonical(value, canonical):
    assert validate.ip_address(value) == canonical


@pytest.mark.parametrize("value", ["", "300.1.1.1", "10.0.0", "10.0.0.5/24", "host.example", "[fd00::5]", " 10.0.0.5", "10.0.0.5:3260"])
def test_ip_rejects(value):
    assert "target IP" in rejects(validate.ip_address, value, "target IP")


@FAST
@given(st.text(max_size=45))
def test_ip_random_text(text):
    result = only_usage_error(validate.ip_address, text)
    if result is not None:
        assert result == str(ipaddress.ip_address(text))


@FAST
@given(st.integers(-(2**20), 2**20))
def test_port_property(n):
    result = only_usage_error(validate.port, n)
    assert (result == n) if 1 <= n <= 65535 else result is None


@pytest.mark.parametrize("value", [True, "3260", 3260.0, None, 0, 65536])
def test_port_rejects(value):
    rejects(validate.port, value)


# -- LVM names and mountpoints ---------------------------------------------------------------


@FAST
@given(st.text(max_size=140))
def test_vg_name_random_text(text):
    result = only_usage_error(validate.vg_name, text)
    if result is not None:
        assert re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}", result) and result not in (".", "..")


@pytest.mark.parametrize("name", ["", ".", "..", "-vg", "vg/x", "vg x", "x" * 128, "vg\n"])
def test_vg_name_rejects(name):
    rejects(validate.vg_name, name)


@pytest.mark.parametrize("name", ["cinder-volumes", "vg0", "my_vg.1", "+vg"])
def test_vg_name_accepts(name):
    assert validate.vg_name(name) == name


@FAST
@given(st.text(max_size=140))
def test_lv_name_random_text(text):
    result = only_usage_error(validate.lv_name, text)
    if result is not None:
        assert re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}", result)
        assert not result.startswith("snapshot") and result not in (".", "..")


def test_lv_name_refuses_lvm_reserved_prefix():
    rejects(validate.lv_name, "snapshot-1")
    assert validate.lv_name("volume-6f1c0e6a-0b6e-4c43-9a43-2f8f3c1d9e10")


@FAST
@given(st.text(max_size=300))
def test_mountpoint_random_text(text):
    result = only_usage_error(validate.mountpoint, text)
    if result is not None:
        assert result == text and 0 < len(result) <= 255 and result.isprintable()


def test_mountpoint_examples():
    assert validate.mountpoint("/dev/vdb") == "/dev/vdb"
    for bad in ("", "/dev/vdb\n", "a\0b", "/" * 256):
        rejects(validate.mountpoint, bad)


# -- sanitize_hostname -----------------------------------------------------------------------


def cinder_sanitize_hostname(hostname: str) -> str:
    """cinder/volume/volume_utils.py sanitize_hostname, re-typed from Cinder."""
    hostname = hostname.encode("latin-1", "ignore")
    hostname = hostname.decode("latin-1")
    hostname = re.sub(r"[ _]", "-", hostname)
    hostname = re.sub(r"[^\w.-]+", "", hostname)
    hostname = hostname.lower()
    hostname = hostname.strip(".-")
    return hostname


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("compute-01", "compute-01"),
        ("Compute_01.Example.COM", "compute-01.example.com"),
        ("my host", "my-host"),
        ("..-host-.-", "host"),
        ("host!@#$%^&*()+=name", "hostname"),
        ("节点host", "host"),
        ("", ""),
        ("___", ""),
    ],
)
def test_sanitize_hostname_examples(raw, clean):
    assert validate.sanitize_hostname(raw) == clean


_hostish = st.text(st.characters(codec="utf-8") | st.sampled_from(list("aZ09 _.-éÀß²\u212a\u0130")), max_size=40)


@FAST
@given(_hostish)
def test_sanitize_hostname_is_cinders(text):
    assert validate.sanitize_hostname(text) == cinder_sanitize_hostname(text)


@FAST
@given(_hostish)
def test_sanitize_hostname_properties(text):
    out = validate.sanitize_hostname(text)
    assert " " not in out and "_" not in out
    assert not re.search(r"[A-Z]", out)
    assert not out.startswith((".", "-")) and not out.endswith((".", "-"))
    out.encode("latin-1")  # raises if anything outside Latin-1 survived
    assert validate.sanitize_hostname(out) == out
    if text.isascii():
        assert re.fullmatch(r"[a-z0-9_.-]*", out)
