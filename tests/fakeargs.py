"""Command-line parsing for tests/fakehost.py, as strict as the real programs': LVM's getopt with
its units and exit code 3, coreutils dd's operands and flags, and Cinder's rtstool main().

A command line the real program refuses raises Refused (its exit code and output); one the real
program would accept but the fake does not model raises AssertionError, so volctl cannot start
using it without the fake (and its tests) learning it first."""

from __future__ import annotations

import getopt
import re
from decimal import Decimal
from typing import Sequence

KIB = 1024
EXTENT = 4 * KIB**2  # LVM's default physical extent size
# LVM exit codes (lib/commands/errors.h)
LVM_CMD_LINE = 3
LVM_FAILED = 5
_LVM_UNITS = {"b": 1, "s": 512, "k": KIB, "m": KIB**2, "g": KIB**3, "t": KIB**4, "p": KIB**5, "e": KIB**6}


class Refused(Exception):
    """The real program's answer to a command line it will not run."""

    def __init__(self, exit_code: int, stderr: str, stdout: str = ""):
        super().__init__(stderr or stdout)
        self.exit_code, self.stderr, self.stdout = exit_code, stderr, stdout


# -- LVM ------------------------------------------------------------------------------------------

def lvm_options(tool: str, args: Sequence[str], short: str, long: Sequence[str], aliases: dict[str, str]) -> tuple[dict, list]:
    """GNU getopt, as LVM uses it: options anywhere, unique long prefixes. Returns ({long name: [values]}, positionals)."""
    try:
        found, positional = getopt.gnu_getopt(list(args), short, list(long))
    except getopt.GetoptError as e:
        raise Refused(LVM_CMD_LINE, f"{tool}: {e.msg}\n  Error during parsing of command line.\n") from None
    options: dict[str, list[str]] = {}
    for name, value in found:
        options.setdefault(aliases.get(name, name), []).append(value)
    return options, positional


def lvm_bad_argument(option: str, value: str) -> Refused:
    return Refused(LVM_CMD_LINE, f"  Invalid argument for {option}: {value}\n  Error during parsing of command line.\n")


def lvm_size(option: str, value: str, *, signed: bool = False) -> tuple[str, int]:
    """--size / --virtualsize: a number with an optional unit (MiB when none), rounded up to whole
    extents. Returns (sign, bytes)."""
    match = re.fullmatch(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)([bBsSkKmMgGtTpPeE]?)", value)
    if not match:
        raise lvm_bad_argument(option, value)
    sign, number, unit = match.groups()
    if sign == "-" or (sign and not signed):
        raise Refused(LVM_CMD_LINE, f"  Negative argument not permitted for {option}: {value}\n"
                                    "  Error during parsing of command line.\n" if sign == "-" else
                                    f"  Invalid argument for {option}: {value}\n  Error during parsing of command line.\n")
    size = int(Decimal(number) * _LVM_UNITS[(unit or "m").lower()])
    return sign, -(-size // EXTENT) * EXTENT


def lvm_extents(value: str, *, vg_size: int, vg_free: int, signed: bool = False) -> tuple[str, int]:
    """--extents: a count of extents, or a percentage of the VG or of its free space. Returns (sign, bytes)."""
    match = re.fullmatch(r"([+-]?)(\d+)(?:%(VG|FREE|PVS))?", value, re.IGNORECASE)
    if not match or (match.group(1) and not signed) or match.group(1) == "-":
        raise lvm_bad_argument("--extents", value)
    sign, number, percent_of = match.groups()
    if percent_of is None:
        return sign, int(number) * EXTENT
    whole = vg_free if percent_of.upper() == "FREE" else vg_size
    return sign, whole * int(number) // 100 // EXTENT * EXTENT


def lvm_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}", value) or value in (".", ".."):
        raise Refused(LVM_CMD_LINE, f'  Logical volume name "{value}" is invalid.\n  Run `lvcreate --help\' for more information.\n')
    for prefix in ("pvmove", "snapshot"):  # lvm2 lib/misc/lvm-string.c apply_lvname_restrictions
        if value.startswith(prefix):
            raise Refused(LVM_CMD_LINE, f'  Names starting "{prefix}" are reserved. Please choose a different LV name.\n'
                                        "  Run `lvcreate --help' for more information.\n")
    return value


def lvm_config(value: str) -> str:
    """--config: LVM's config syntax (`section { key = value ... }`) must parse."""
    tokens = re.findall(r'"[^"]*"|[{}=\[\],]|[^\s{}=\[\],"]+', value)
    position = 0

    def take() -> str:
        nonlocal position
        if position == len(tokens):
            raise ValueError
        position += 1
        return tokens[position - 1]

    def items(closing: str | None) -> None:
        while position < len(tokens) and tokens[position] != closing:
            name, sep = take(), take()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_/]*", name) or sep not in "{=":
                raise ValueError
            if sep == "{":
                items("}")
                take()
            elif not re.fullmatch(r'-?\d+(\.\d+)?|"[^"]*"', take()):
                raise ValueError
        if closing and position == len(tokens):
            raise ValueError

    try:
        items(None)
    except ValueError:
        raise Refused(LVM_CMD_LINE, "  Parse error at byte 0 (line 1): unexpected token\n"
                                    "  Failed to set overridden configuration entries.\n") from None
    return value


def lvm_report_options(tool: str, options: dict, known_fields: Sequence[str], prefix: str) -> list[str]:
    """The only report volctl reads: JSON, bytes without suffix, the fields it names."""
    assert options.get("--reportformat") == ["json"], f"{tool}: FakeHost answers only --reportformat json: {options}"
    units = options.get("--units", [])
    assert units in (["b"], ["B"]) and "--nosuffix" in options, f"{tool}: FakeHost reports only --units b --nosuffix"
    assert "-o" in options, f"{tool}: FakeHost does not model the default columns"
    fields = []
    for spec in options["-o"]:
        assert not spec.startswith(("+", "-")), f"{tool}: FakeHost does not model -o {spec}"
        for name in spec.split(","):
            field = name if name in known_fields else prefix + name
            if field not in known_fields:
                raise Refused(LVM_FAILED, f"  Unrecognised field: {name}\n")
            fields.append(field)
    return fields


# -- dd -------------------------------------------------------------------------------------------

_DD_KEYS = ("if", "of", "bs", "count", "iflag", "oflag", "status", "ibs", "obs", "skip", "seek", "conv")
_DD_IFLAGS = {"count_bytes", "skip_bytes", "fullblock", "direct", "dsync", "sync", "nocache", "nonblock", "noatime",
              "noctty", "nofollow"}
_DD_OFLAGS = {"seek_bytes", "append", "direct", "dsync", "sync", "nocache", "nonblock", "noatime", "noctty", "nofollow"}
_DD_SUFFIX = {"": 1, "c": 1, "w": 2, "b": 512, "kB": 1000, "K": KIB, "KiB": KIB, "MB": 1000**2, "M": KIB**2,
              "MiB": KIB**2, "GB": 1000**3, "G": KIB**3, "GiB": KIB**3}


def dd_operands(args: Sequence[str]) -> dict:
    def refuse(message: str) -> Refused:
        return Refused(1, f"dd: {message}\nTry 'dd --help' for more information.\n")

    found: dict = {"iflag": set(), "oflag": set()}
    for arg in args:
        key, eq, value = arg.partition("=")
        if not eq or key not in _DD_KEYS:
            raise refuse(f"unrecognized operand '{arg}'")
        if key in ("iflag", "oflag"):
            for flag in value.split(","):
                if flag not in (_DD_IFLAGS if key == "iflag" else _DD_OFLAGS):
                    raise refuse(f"invalid {'input' if key == 'iflag' else 'output'} flag: '{flag}'")
                found[key].add(flag)
        elif key in ("bs", "ibs", "obs", "count", "skip", "seek"):
            match = re.fullmatch(r"(\d+)([A-Za-z]*)", value)
            if not match or match.group(2) not in _DD_SUFFIX or (key != "count" and int(match.group(1)) == 0):
                raise Refused(1, f"dd: invalid number: '{value}'\n")
            found[key] = int(match.group(1)) * _DD_SUFFIX[match.group(2)]
        elif key == "status":
            if value not in ("none", "noxfer", "progress"):
                raise refuse(f"invalid status level: '{value}'")
            found[key] = value
        else:
            found[key] = value
    for key in ("ibs", "obs", "skip", "seek", "conv"):
        assert key not in found, f"dd: FakeHost does not model {key}= (volctl only zeroes a whole LV)"
    return found


def dm_name_parts(name: str) -> list[str]:
    """A /dev/mapper name as libdm's dm_split_lvm_name reads it: '--' is a '-' of a name, a single
    '-' separates VG, LV and layer."""
    parts, current, i = [], "", 0
    while i < len(name):
        if name[i] == "-" and name[i + 1:i + 2] == "-":
            current, i = current + "-", i + 2
        elif name[i] == "-":
            parts, current, i = parts + [current], "", i + 1
        else:
            current, i = current + name[i], i + 1
    return parts + [current]


# -- cinder-rtstool -------------------------------------------------------------------------------

RTSTOOL_USAGE = (
    "Usage:\n"
    "cinder-rtstool create [device] [name] [userid] [password] [iser_enabled] <initiator_iqn,iqn2,iqn3,...> "
    "[-a<IP1,IP2,...>] [-pPORT]\n"
    "cinder-rtstool add-initiator [target_iqn] [userid] [password] [initiator_iqn]\n"
    "cinder-rtstool delete-initiator [target_iqn] [initiator_iqn]\n"
    "cinder-rtstool get-targets\n"
    "cinder-rtstool delete [iqn]\n"
    "cinder-rtstool verify\n"
    "cinder-rtstool save [path_to_file]\n"
)
# cinder/cmd/rtstool.py main(): positional arguments each subcommand reads (more are ignored)
RTSTOOL_ARITY = {"create": (5, 8), "add-initiator": (4, 4), "delete-initiator": (2, 2), "get-targets": (0, 0),
                 "delete": (1, 1), "verify": (0, 0), "save": (0, 1), "restore": (0, 1)}


def rtstool_usage() -> Refused:
    """rtstool's usage(): printed on stdout, exit 1."""
    return Refused(1, "", RTSTOOL_USAGE)


def rtstool_args(args: Sequence[str]) -> tuple[str, list[str]]:
    if not args or args[0] not in RTSTOOL_ARITY:
        raise rtstool_usage()
    sub, rest = args[0], list(args[1:])
    least, most = RTSTOOL_ARITY[sub]
    if len(rest) < least:
        raise rtstool_usage()
    if len(rest) > most:
        if sub in ("create", "save", "restore"):
            raise rtstool_usage()
        # The real tool runs and silently drops the rest: volctl meant something it did not get.
        raise AssertionError(f"cinder-rtstool {sub} ignores the extra arguments {rest[most:]!r}")
    return sub, rest


def rtstool_create_options(rest: Sequence[str]) -> dict:
    """parse_optional_create: -a<ips>, -p<port>, anything else is the initiator list."""
    found: dict = {}
    for arg in rest:
        if arg.startswith("-a"):
            ips = [ip for ip in arg[2:].split(",") if ip]
            if not ips:
                raise rtstool_usage()
            found["ips"] = ips
        elif arg.startswith("-p"):
            try:
                found["port"] = int(arg[2:])
            except ValueError:
                raise rtstool_usage() from None
        else:
            found["initiators"] = arg
    return found


def canonical_ip(ip: str) -> str:
    return ip if ip.startswith("[") or "." in ip else f"[{ip}]"


def valid_wwn(wwn: str, kinds: Sequence[str] = ("iqn", "naa", "eui")) -> bool:
    """rtslib's normalize_wwn for the iSCSI fabric."""
    wwn = wwn.strip().lower()
    tests = {
        "iqn": lambda w: re.match(r"iqn\.[0-9]{4}-[0-1][0-9]\..*\..*", w) and " " not in w and "_" not in w,
        "naa": lambda w: re.match(r"naa\.[125c-fC-F][0-9a-fA-F]{15}$", w),
        "eui": lambda w: re.match(r"eui\.[0-9a-f]{16}$", w),
    }
    return any(tests[k](wwn) for k in kinds)


def traceback(error: str) -> str:
    """What an uncaught exception in rtstool leaves on stderr."""
    return f'Traceback (most recent call last):\n  File "/usr/bin/cinder-rtstool", line 8, in <module>\n{error}\n'

