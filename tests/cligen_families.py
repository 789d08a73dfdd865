"""The families of bad input the generated CLI test tries: each function returns one Case, the
exit code it must give and why. generate() takes them in turn; deterministic for a random.Random."""

from __future__ import annotations

import json

from cligen import Case, Gen
from cligen_values import (
    BAD, NOT_FOUND, EXISTS, WRONG_STATE, ENVIRONMENT, SURROGATES, I1, I3,
    INSTANCE_1, INSTANCE_2, NEW_INSTANCE, VOLUMES, TARGET, CONTROL, SIZE_BAD, STALE_BAD,
    NAME_BAD, VOL_BAD, INITIATOR_BAD, PROTOCOL_BAD, HOST_BAD, LV_BAD, MOUNTPOINT_BAD, MODE_BAD, STATUS_BAD, ATTACH_STATUS_BAD,
    SETTINGS_BAD, SETTINGS_GOOD, TOML_BROKEN, TOML_UNKNOWN, CONNECTOR_BAD, STATE,
)


# -- the families: each returns one case ---------------------------------------------------------


def f_size(g: Gen) -> Case:
    value = g.cycle("size", SIZE_BAD)
    if g.chance(0.5):
        args = g.args("create", size=value)
    else:
        args = g.args("extend", g.any_ref("extend"), size=value)
    return g.case("size", args, BAD, f"{args[0]} --size: a size is ASCII digits, 1 to 1048576", tail=bool(value))


def f_extend_not_larger(g: Gen) -> Case:
    vol, size = g.cycle("not larger", [("va", "1"), ("vexp", "1"), ("va", "0")])
    return g.case("extend-not-larger", g.args("extend", g.ref(vol), size=size), BAD,
                  "extend only grows: a size not larger is bad input", fresh_ok=False)


def f_name(g: Gen) -> Case:
    w = g.w
    value = g.cycle("name", NAME_BAD + [g.uuid(), w.ids["va"], w.ids["vgone"], w.ids["vuse"].upper(), g.uuid().upper()])
    return g.case("create-name", g.args("create", name=value), BAD, "a name is 1-63 of A-Za-z0-9._- and not shaped like a UUID")


def f_id(g: Gen) -> Case:
    u = g.uuid()
    value = g.cycle("id", ["", " ", "not-a-uuid", u.replace("-", ""), "{" + u + "}", "urn:uuid:" + u, u + "\n", "\t" + u, u[:-1],
                    u + "0", u.replace("-", "_"), "١" + u[1:], "\udcff", u[:-1] + "\udcff", "../../etc/passwd", "g" * 8 + u[8:],
                    u[:-1] + "\x1b"])
    return g.case("create-id", g.args("create", id=value), BAD, "--id is a UUID in 8-4-4-4-12 form")


def f_bad_vol(g: Gen) -> Case:
    command = g.cycle("bad VOL", TARGET)
    args = g.args(command, g.cycle("VOL", VOL_BAD))
    return g.case("vol-malformed", args, BAD, "VOL that is neither a UUID nor a valid name is malformed: 2, not 3")


def f_initiator(g: Gen) -> Case:
    command = g.cycle("initiator command", ["connect", "disconnect", "attach"])
    args = g.args(command, g.any_ref(command), initiator=g.cycle("initiator", INITIATOR_BAD))
    return g.case("initiator", args, BAD, f"{command} --initiator: neither an iSCSI name rtslib would take nor a host NQN")


def f_manage(g: Gen) -> Case:
    """manage: a malformed LV or name (2), an LV the group does not have (3), one a volume already
    has (4); manageable takes no operand."""
    kind = g.cycle("manage kind", ["source", "source", "name", "missing", "managed", "manageable"])
    if kind == "source":
        return g.case("manage-malformed", g.args("manage", source_name=g.cycle("LV", LV_BAD)), BAD,
                      "manage --source-name: not an LV name LVM takes")
    if kind == "name":
        return g.case("manage-malformed", g.args("manage", name=g.pick(NAME_BAD)), BAD,
                      "manage --name: 1-63 of A-Za-z0-9._- and not shaped like a UUID")
    if kind == "missing":
        return g.case("not-found", g.args("manage", source_name=g.pick(["nosuch-lv", "volume-" + g.uuid()])), NOT_FOUND,
                      "manage of an LV the volume group does not have", fresh_ok=False)
    if kind == "managed":
        lv = "volume-" + g.w.ids[g.pick(["va", "vuse", "vexp"])]
        # the world's config: manage looks in the configured group, and a good one may name another
        return g.case("exists", g.args("manage", source_name=lv), EXISTS, "manage of an LV a volume already has",
                      good_config=False)
    return g.case("click-usage", ["manageable", g.pick(["va", "--bogus", "x y"])], BAD, "manageable takes no operand")


def f_protocol(g: Gen) -> Case:
    kind = g.cycle("protocol kind", ["value", "value", "other-host", "live-export"])
    command = g.cycle("protocol command", ["export", "connect"])
    if kind == "value":
        args = g.args(command, g.any_ref(command), protocol=g.cycle("protocol", PROTOCOL_BAD))
        return g.case("protocol", args, BAD, f"{command} --protocol: one of iscsi, iser, nvmet_tcp")
    if kind == "other-host":
        args, why = g.pick([
            (g.args("connect", g.ref("va"), protocol="nvmet_tcp", initiator=I3), "an NVMe/TCP export needs a host NQN"),
            (g.args("connect", g.ref("va"), protocol=g.pick(["iscsi", "iser"]),
                    initiator="nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
             "an iSCSI export needs an initiator name, not a host NQN")])
        return g.case("protocol-host", args, BAD, why, fresh_ok=False)  # the volume's protocol decides
    args = g.args(command, g.ref("vexp"), protocol="nvmet_tcp", initiator=I1) if command == "connect" else \
        g.args("export", g.ref("vexp"), protocol="nvmet_tcp")
    return g.case("state", args, WRONG_STATE, f"{command} --protocol nvmet_tcp of a volume exported over iSCSI: unexport first",
                  fresh_ok=False)


def f_connector(g: Gen) -> Case:
    command = g.cycle("connector command", ["connect", "disconnect"])
    source = g._connector_source(g.cycle("connector", CONNECTOR_BAD))
    return g.case("connector", g.args(command, g.any_ref(command), connector=source), BAD,
                  "a connector that is not a UTF-8 JSON object of bounded size and depth with the right types is bad input")


def f_connector_path(g: Gen) -> Case:
    command = g.cycle("connector-path command", ["connect", "disconnect"])
    s = g.w.scratch
    path = g.cycle("connector path", [str(s / "nope.json"), str(s / "no\nsuch.json"), str(s / "\udcff.json"), str(s), "",
                                      str(s / "a\x1b.json"), str(s / ("c" * 300))])
    return g.case("connector-path", g.args(command, g.any_ref(command), connector=path), BAD,
                  "an unreadable connector file is bad input")


def f_attach(g: Gen) -> Case:
    u = g.uuid()
    option = g.cycle("attach option", ["instance", "host", "mountpoint", "mode"])
    value = g.cycle("attach " + option, {
        "instance": ["", " ", "not-a-uuid", u.replace("-", ""), "{" + u + "}", u + "\n", "\udcff", u[:-1], "١" + u[1:]],
        "host": HOST_BAD, "mountpoint": MOUNTPOINT_BAD, "mode": MODE_BAD}[option])
    return g.case("attach-" + option, g.args("attach", g.any_ref("attach"), **{option: value}), BAD, f"attach --{option} malformed")


def f_detach(g: Gen) -> Case:
    att, u = g.w.attachments["vuse"][0], g.uuid()
    if g.cycle("detach option", ["attachment", "instance"]) == "attachment":
        value = g.cycle("attachment", ["", " ", "not-an-id", att[:-1], att + "\n", att + "\udcff", "{" + att + "}", "*", "%",
                                       att + "\x1b"])
        args = g.args("detach", g.any_ref("detach"), attachment=value)
        why = "an attachment id is a UUID: a malformed one is 2, not 3"
    else:
        instance = g.cycle("detach instance", ["", "x", u + "\t", "\udcff", u.replace("-", "")])
        args = g.args("detach", g.any_ref("detach"), instance=instance)
        why = "detach --instance malformed"
    return g.case("detach-malformed", args, BAD, why)


def f_exclusive(g: Gen) -> Case:
    w = g.w
    command = g.cycle("exclusive", ["detach", "connect", "disconnect", "connect-neither", "disconnect-neither"])
    if command == "detach":
        args = g.args("detach", g.any_ref("detach"), attachment=w.attachments["vuse"][0],
                      instance=g.pick([INSTANCE_1, INSTANCE_2, NEW_INSTANCE]))
        return g.case("exclusive", args, BAD, "detach: --attachment and --instance exclude each other")
    if command.endswith("neither"):
        command = command.split("-")[0]
        return g.case("exclusive", g.args(command, g.any_ref(command), omit=("--initiator", "--connector")), BAD,
                      f"{command} needs one of --initiator and --connector")
    doc = json.dumps({"initiator": g.pick([I1, I3])}).encode()
    args = g.args(command, g.any_ref(command), initiator=g.pick([I1, I3]), connector=g._connector_source(doc))
    return g.case("exclusive", args, BAD, f"{command}: --initiator and --connector exclude each other")


def f_status(g: Gen) -> Case:
    which = g.cycle("status option", ["list", "reset-state", "attach-status"])
    if which == "list":
        args = g.args("list", status=g.cycle("status", STATUS_BAD))
    elif which == "reset-state":
        args = g.args("reset-state", g.any_ref("reset-state"), status=g.cycle("status", STATUS_BAD))
    else:
        args = g.args("reset-state", g.any_ref("reset-state"), status="available",
                      attach_status=g.cycle("attach status", ATTACH_STATUS_BAD))
    return g.case("status", args, BAD, "a status is one of the statuses volctl knows, spelled as Cinder spells it")


def f_stale(g: Gen) -> Case:
    value = g.cycle("stale", STALE_BAD)
    command = g.cycle("stale command", ["doctor", "metrics"])
    return g.case("stale-after", g.args(command, stale_after=value), BAD, "--stale-after is a finite number of seconds >= 0",
                  tail=bool(value))


def f_output(g: Gen) -> Case:
    value = g.cycle("output", ["", "/tmp/", ".", "/", "/tmp/metrics\n.prom", "/tmp/a\tb.prom"])
    return g.case("output", g.args("metrics", output=value), BAD, "metrics --output is a printable path of a file, not a directory",
                  tail=bool(value))


def f_click(g: Gen) -> Case:
    ref = g.ref("va")
    args = g.cycle("click", [
        ["create", "--size", "1", "--bogus"], ["frobnicate"], ["create"], ["create", "--size"], ["attach", ref],
        ["extend", ref], ["reset-state", ref], ["show"], ["show", ref, "vuse"], ["list", "extra"], ["doctor", "--stale-after"],
        ["create", "--size", "1", "--multiattach=yes"], ["attach", ref, "--instance", NEW_INSTANCE, "--mode"],
        ["--bogus-global", "list"], ["list", "--status"], ["connect", ref, "--initiator"], ["detach", ref, "--attachment"],
        ["history"], ["delete"], ["doctor", "--repair=no"], ["show", "-x"], ["list", "--json=yes"], ["reserve", ref, "--force"],
        ["connect", ref, "--connector"], ["disconnect", ref, "--initiator", I1, "--multipath"], ["unexport", ref, ref],
        ["export"], ["unreserve"], ["reset-state", ref, "--status"], ["extend", ref, "--size"], ["create", "--name"],
        ["revert", ref], ["revert", ref, "--snapshot"], ["snapshot", "show"], ["snapshot", "create", ref, "--name"],
        ["create", "--snapshot"], ["snapshot", "frobnicate"], ["metrics", "--output"], ["metrics", "extra"],
        ["--json"], ["--verbose", "--json"]])  # global options and no command
    return g.case("click-usage", args, BAD, "click's own usage errors are exit 2 with one line",
                  tail=bool(args) and not (args[-1].startswith("--") and args[-1] not in ("--bogus", "--force", "--multipath")))


def f_injected(g: Gen) -> Case:
    """A non-UTF-8 byte or a control character inside an otherwise valid value of any option."""
    w = g.w
    command, option, value = g.cycle("injected", [
        ("create", "name", "vnew"), ("create", "id", g.uuid()), ("create", "size", "1"), ("list", "status", "available"),
        ("connect", "initiator", I3), ("disconnect", "initiator", I1), ("attach", "instance", NEW_INSTANCE),
        ("attach", "host", "compute9"), ("attach", "mountpoint", "/dev/vdc"), ("attach", "mode", "ro"),
        ("attach", "initiator", I1), ("detach", "attachment", w.attachments["vuse"][0]), ("detach", "instance", INSTANCE_1),
        ("extend", "size", "40"), ("reset-state", "status", "available"), ("reset-state", "attach_status", "detached"),
        ("doctor", "stale_after", "300"), ("metrics", "stale_after", "300"), ("metrics", "output", "/tmp/volctl.prom"),
        *[(c, "VOL", TARGET[c]) for c in TARGET]])
    bad = g.cycle("injected character", [*SURROGATES, *CONTROL])
    at = g.rng.randrange(len(value) + 1)
    mixed = value[:at] + bad + value[at:]
    if option == "VOL":
        args = g.args(command, mixed)
    else:
        args = g.args(command, g.any_ref(command) if command in TARGET else None, **{option: mixed})
    kind = "non-UTF-8 byte" if bad in SURROGATES else "control character"
    return g.case("injected-" + ("byte" if kind[0] == "n" else "control"), args, BAD,
                  f"a {kind} inside {command} {option}: malformed, and the message shows it escaped on one line")


def _good_lines(g: Gen) -> tuple[bytes, tuple[str, ...]]:
    keys = g.rng.sample(sorted(SETTINGS_GOOD), g.rng.randint(0, 2))
    return "".join(f"{k} = {g.pick(SETTINGS_GOOD[k])}\n" for k in keys).encode(), tuple(f"{k}:good" for k in keys)


def _config_case(g: Gen, text: bytes, why: str, settings: tuple[str, ...]) -> Case:
    command = g.pick([*TARGET, "create", "list", "doctor"])
    return g.case("config", g.args(command), BAD, why + ": bad config is 2 before anything runs", config=text, settings=settings)


def f_bad_setting(g: Gen) -> Case:
    good, settings = _good_lines(g)
    # every key's first bad value before any key's second: each setting is reached however long the lists grow
    depth = max(map(len, SETTINGS_BAD.values()))
    key, value = g.cycle("bad setting", [(k, SETTINGS_BAD[k][i]) for i in range(depth) for k in sorted(SETTINGS_BAD)
                                         if i < len(SETTINGS_BAD[k])])
    lines = [f"{key} = {value}\n".encode(), good]
    g.rng.shuffle(lines)
    why = f"setting {key}: wrong type or value" + (" (and given twice)" if f"{key}:good" in settings else "")
    return _config_case(g, b"".join(lines), why, settings + (f"{key}:bad",))


def f_bad_config(g: Gen) -> Case:
    good, settings = _good_lines(g)
    if g.cycle("config kind", ["broken", "unknown"]) == "broken":
        return _config_case(g, good + g.cycle("toml", TOML_BROKEN), "malformed TOML", settings)
    return _config_case(g, good + g.cycle("unknown", TOML_UNKNOWN), "an unknown setting", settings)


def f_config_path(g: Gen) -> Case:
    s = g.w.scratch
    path = g.cycle("config path", [str(s / "nope.toml"), str(s / "no\nsuch.toml"), str(s), "", str(s / "\udcff.toml"),
                                   str(s / "a\x1b.toml"), str(s / "dir\t.toml"), str(s / ("c" * 300))])
    command = g.pick([*TARGET, "create", "list", "doctor"])
    return g.case("config-path", g.args(command), BAD, "a named config that is missing or a directory is 2", config=path)


def f_bad_db(g: Gen) -> Case:
    env = g.w.root / "env"
    command = g.pick([*TARGET, "create", "list", "doctor"])
    kind = g.cycle("db", ["dir", "not-sqlite", "truncated", "under-file", "empty", "control-dir", "symlink-loop",
                          "name-too-long", "component-too-long"])
    expect, why = ENVIRONMENT, f"--db {kind}: the inventory cannot be used"
    if kind.endswith("too-long"):
        db = str(env / ("a" * 5000)) if kind == "name-too-long" else str(env / ("b" * 300) / "volctl.db")
        expect = frozenset({2, 7})
        why = f"--db {kind} (ENAMETOOLONG): a path that cannot be (2) or an inventory that cannot be used (7)"
    elif kind == "symlink-loop":
        db = str(env / "loop1")
    elif kind == "under-file":
        command = "create"
        db = str(env / "afile" / "volctl.db")
    elif kind == "empty":
        db, expect, why = "", frozenset({2, 7}), "--db '': a malformed path (2) or a directory (7), the README says neither"
    elif kind == "control-dir":
        db = str(env / "db\ndir")
    else:
        db = str(env / {"dir": "dbdir", "not-sqlite": "not-sqlite.db", "truncated": "truncated.db"}[kind])
    return g.case("db", g.args(command), expect, why, db=db, good_config=False)


def f_corrupt_db(g: Gen) -> Case:
    """An inventory volctl cannot trust: another program's SQLite file (never to be migrated into
    volctl's), or rows whose JSON columns do not parse. 7, as for a corrupt file, not 1."""
    env = g.w.root / "env"
    kind, make = g.cycle("corrupt", [
        ("foreign", lambda: g.args(g.pick([*TARGET, "create", "list", "doctor"]))),
        ("events", lambda: ["history", g.ref("va")]), ("events", lambda: ["history", g.ref("vuse")]),
        ("connections", lambda: ["show", g.ref("vuse")]),
        ("connections", lambda: g.args("disconnect", g.ref("vuse"), initiator=I1)),
        ("connections", lambda: g.args("connect", g.ref("vexp"), initiator=I1)),
        ("attachments", lambda: ["show", g.ref("vuse")]), ("attachments", lambda: ["detach", g.ref("vuse")]),
        ("attachments", lambda: ["detach", g.ref("vmulti"), "--instance", INSTANCE_2])])
    args = make()
    db = str(env / ("foreign.db" if kind == "foreign" else f"corrupt-{kind}.db"))
    why = "another program's SQLite file is no inventory" if kind == "foreign" else f"{kind} rows whose JSON does not parse"
    return g.case("db-" + kind, args, ENVIRONMENT, why + ": the inventory cannot be used", db=db, good_config=False)


def f_env_bytes(g: Gen) -> Case:
    """A non-UTF-8 byte in --db, --config or their variables: paths too are refused, not guessed at."""
    command = g.pick([*TARGET, "create", "list", "doctor"])
    bad = g.pick(SURROGATES)
    where = g.cycle("byte in", ["--db", "VOLCTL_DB", "--config", "VOLCTL_CONFIG"])
    path = str(g.w.db) + bad if "DB" in where.upper() else str(g.w.scratch / f"volctl{bad}.toml")
    args = g.args(command)
    case = g.case("env-byte", args, BAD, f"{where} holding a byte that is not UTF-8", db=path if where == "--db" else None,
                  config=path if where == "--config" else None, good_config=False)
    if where in ("VOLCTL_DB", "VOLCTL_CONFIG"):
        case.env[where] = path
        if where == "VOLCTL_DB":  # the variable must be what names the inventory, not a --db beside it
            argv = list(case.argv)
            while "--db" in argv:
                del argv[argv.index("--db"):argv.index("--db") + 2]
            case.argv = tuple(argv)
    return case


def f_repeated(g: Gen) -> Case:
    """The last of a repeated option counts; `--` ends the options, so what follows is a VOL."""
    ref = g.ref("va")
    args = g.cycle("repeated", [
        ["create", "--size", "1", "--size", g.pick(SIZE_BAD[:20])], ["extend", ref, "--size", "40", "--size", "١"],
        ["doctor", "--repair", "--stale-after", "0", "--stale-after", "nan"],
        ["list", "--status", "available", "--status", "bogus"], ["show", "--", "-x"], ["reserve", "--", "--force"],
        ["attach", "vatt", "--instance", NEW_INSTANCE, "--mode", "rw", "--mode", "RW"],
        ["reset-state", ref, "--status", "error", "--status", "\udcff"],
        ["create", "--size", "1", "--name", "vnew1", "--name", g.pick(NAME_BAD[:10])]])
    return g.case("repeated", args, BAD, "the last value of a repeated option is the one judged", tail=args[1] != "--")


def f_not_found(g: Gen) -> Case:
    w = g.w
    if g.chance(0.25):
        args = g.cycle("absent attachment", [
            g.args("detach", g.ref("vuse"), attachment=g.pick([g.uuid(), w.attachments["vmulti"][0]])),
            g.args("detach", g.ref("vuse"), instance=g.pick([INSTANCE_2, NEW_INSTANCE])),
            g.args("detach", g.ref("vmulti"), instance=NEW_INSTANCE),
            g.args("detach", g.ref("vmulti"), attachment=g.pick([g.uuid(), w.attachments["vuse"][0]]))])
        return g.case("not-found", args, NOT_FOUND, "a well-formed attachment or instance the volume does not have")
    command = g.cycle("not found", TARGET)
    absent = ["nosuch", "VA", g.uuid(), "v" * 63] + ([] if command == "history" else ["vgone", w.ids["vgone"]])
    omit = ("--attachment", "--instance") if command == "detach" else ()
    return g.case("not-found", g.args(command, g.pick(absent), omit=omit), NOT_FOUND,
                  "a well-formed VOL that names no volume" + (" (history: nor any history)" if command == "history" else ""))


def f_exists(g: Gen) -> Case:
    w = g.w
    taken = g.cycle("taken", [*VOLUMES, "vgone"])
    if taken == "vgone":  # deleted, but its history answers to that id: a new volume would inherit it
        args = g.args("create", id=g.pick([w.ids[taken], w.ids[taken].upper()]))
        return g.case("exists-deleted-id", args, EXISTS, "the id of a deleted volume, whose history keeps it")
    if g.chance(0.5):
        args = g.args("create", name=taken)
    else:
        args = g.args("create", id=g.pick([w.ids[taken], w.ids[taken].upper()]))
    return g.case("exists", args, EXISTS, "a name or id another volume has")


def f_state(g: Gen) -> Case:
    command, vol = g.cycle("state", STATE)
    omit = ("--attachment", "--instance") if command == "detach" else ()  # the state decides, not an attachment
    return g.case("state", g.args(command, g.ref(vol), omit=omit), WRONG_STATE,
                  f"{command} is not allowed on {vol}'s state")


def f_snapshot(g: Gen) -> Case:
    """The snapshot commands, revert and create's sources: malformed values and options that exclude
    each other (2), well-formed ones that name nothing (3), a name taken (4), a state that refuses (5)."""
    w, u = g.w, g.uuid()
    kind = g.cycle("snapshot kind", ["source", "both", "size", "revert", "name", "ref", "missing", "taken", "state"])
    if kind == "source":
        option = g.pick(["snapshot", "source_volume"])
        args = g.args("create", omit=("--size",), **{option: g.pick(VOL_BAD)})
        return g.case("snapshot-malformed", args, BAD, f"create --{option.replace('_', '-')}: neither a UUID nor a valid name")
    if kind == "both":
        args = g.args("create", omit=("--size",), snapshot=g.snap_ref("ssnap"), source_volume=g.ref("vsnap"))
        return g.case("exclusive", args, BAD, "create: --snapshot and --source-volume exclude each other")
    if kind == "size":
        option, source = g.pick([("snapshot", g.snap_ref("ssnap")), ("source_volume", g.ref("vsnap"))])
        size = g.pick(["0", "-1", "1.5", "1048577", "\u0661", "1"])
        args = g.args("create", size=size, **{option: source})
        why = "smaller than its 2 GiB source" if size == "1" else "a size is ASCII digits, 1 to 1048576"
        return g.case("snapshot-size", args, BAD, f"create --{option.replace('_', '-')} --size {why}", fresh_ok=size != "1")
    if kind == "revert":
        return g.case("snapshot-malformed", g.args("revert", g.any_ref("revert"), snapshot=g.pick(VOL_BAD)), BAD,
                      "revert --snapshot: neither a UUID nor a valid name")
    if kind == "name":
        args = ["snapshot", "create", g.ref("vsnap"), "--name", g.pick([*NAME_BAD, u])]
        return g.case("snapshot-malformed", args, BAD, "a snapshot name is 1-63 of A-Za-z0-9._- and not shaped like a UUID")
    if kind == "ref":
        args = g.pick([["snapshot", "show"], ["snapshot", "delete"], ["snapshot", "list"]]) + [g.pick(VOL_BAD)]
        return g.case("snapshot-malformed", args, BAD, f"snapshot {args[1]}: neither a UUID nor a valid name")
    if kind == "missing":
        args = g.pick([["snapshot", "show", g.pick(["nosuch", u])], ["snapshot", "delete", g.pick(["nosuch", u])],
                       ["snapshot", "create", g.pick(["nosuch", "vgone"])], ["snapshot", "list", "vgone"],
                       g.args("create", omit=("--size",), snapshot=g.pick(["nosuch", u])),
                       g.args("create", omit=("--size",), source_volume=g.pick(["vgone", u])),
                       g.args("revert", g.ref("vsnap"), snapshot=g.pick(["nosuch", u]))])
        return g.case("not-found", args, NOT_FOUND, "a well-formed SNAP or VOL that names nothing")
    if kind == "taken":
        args = g.pick([["snapshot", "create", g.ref("vsnap"), "--name", g.pick(["ssnap", "sexp"])],
                       g.args("create", omit=("--size",), snapshot=g.snap_ref("ssnap"), name=g.pick(["va", "vsnap"]))])
        return g.case("exists", args, EXISTS, "a snapshot or volume name already taken")
    args, why = g.pick([
        (["snapshot", "create", g.ref("vuse")], "an in-use volume is snapshot only with --force"),
        (["snapshot", "create", g.ref(g.pick(["verr", "vmaint", "vatt"])), "--force"], "only available or in-use volumes"),
        (g.args("revert", g.ref("vexp"), snapshot=g.snap_ref("sexp")), "revert of an exported volume"),
        (g.args("delete", g.ref("vsnap")), "delete of a volume with snapshots"),
        (g.args("create", omit=("--size",), source_volume=g.ref(g.pick(["verr", "vmaint", "vatt"]))), "clone of a volume "
         "neither available nor in-use")])
    return g.case("state", args, WRONG_STATE, why)


FAMILIES = [f_size, f_size, f_extend_not_larger, f_name, f_id, f_bad_vol, f_initiator, f_connector, f_connector,
            f_connector_path, f_attach, f_attach, f_detach, f_exclusive, f_status, f_stale, f_output, f_click, f_injected, f_injected,
            f_bad_config, f_bad_setting, f_bad_setting, f_bad_setting, f_config_path, f_bad_db, f_corrupt_db, f_env_bytes, f_repeated,
            f_not_found, f_exists, f_state, f_state, f_snapshot, f_protocol, f_manage, f_manage]


def generate(rng, count: int, world) -> tuple[list[Case], Gen]:
    g = Gen(rng, world)
    return [FAMILIES[i % len(FAMILIES)](g) for i in range(count)], g
