"""The case builder of tests/test_cli_generated.py: a Case is one volctl invocation that must be
refused, with the exit code it must give and why (the rules are in that module's docstring); Gen
builds valid command lines and wraps a case in global options and environment. The families of
bad input are in cligen_families.py, the values in cligen_values.py."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field, fields

import click
from cligen_values import (
    BAD, I1, I3, INSTANCE_1, NEW_INSTANCE, VOLUMES, TARGET, STATUSES,
    SETTINGS_GOOD,
)

from volctl.config import Settings


@dataclass
class Case:
    family: str
    command: str
    argv: tuple[str, ...]
    expect: frozenset[int]
    why: str
    stdin: bytes | None = None
    env: dict = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    settings: tuple[str, ...] = ()  # "key:good" / "key:bad" for every setting its config holds

    def stdin_shown(self) -> str | None:
        if self.stdin is None:
            return None
        return repr(self.stdin[:200]) + (f"... ({len(self.stdin)} bytes)" if len(self.stdin) > 200 else "")

    def env_shown(self, world) -> dict:
        return {k: shown([v], world) for k, v in self.env.items()}


def shown(argv, world) -> str:
    """A reproducer a person can paste: world paths shortened to $W (the world) and $S (scratch)."""
    out = []
    for arg in argv:
        arg = str(arg).replace(str(world.root), "$W").replace(str(world.scratch), "$S")
        out.append(arg if re.fullmatch(r"[\w@%+=:,./$-]+", arg) else repr(arg))
    return " ".join(out)


class Gen:
    """Builds cases from one random.Random. Values that matter for coverage are taken in turn
    (cycle); which volume, which spelling, which global options and environment, at random."""

    def __init__(self, rng, world):
        self.rng, self.w, self.n = rng, world, 0
        self.stdin: bytes | None = None  # the case being built: its stdin, and files it reads from scratch
        self.files: dict[str, bytes] = {}
        self.turns: dict[str, int] = {}
        self.sizes: dict[str, int] = {}

    def pick(self, items):
        return self.rng.choice(list(items))

    def cycle(self, name: str, items):
        """The next of items in turn: what coverage needs is reached whatever the seed."""
        items = list(items)
        self.turns[name] = self.turns.get(name, -1) + 1
        self.sizes[name] = len(items)
        return items[self.turns[name] % len(items)]

    def unfinished(self) -> dict[str, str]:
        """The pools not yet gone through once: values no case has tried."""
        return {name: f"{self.turns[name] + 1} of {size}" for name, size in self.sizes.items()
                if self.turns[name] + 1 < size and not name.startswith("--json")}

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ref(self, name: str) -> str:
        """A volume by name or by id: VOL is either."""
        return self.w.ids[name] if self.chance(0.3) else name

    def snap_ref(self, name: str) -> str:
        """A snapshot by name or by id: SNAP is either."""
        return self.w.snapshots[name] if self.chance(0.3) else name

    def any_ref(self, command: str) -> str:
        """Where malformed input must win, the volume hardly matters: the target, another, or none."""
        roll = self.rng.random()
        if roll < 0.6:
            return self.ref(TARGET[command])
        return self.ref(self.pick(VOLUMES)) if roll < 0.85 else self.pick(["nosuch", self.uuid()])

    def file(self, data: bytes, suffix: str) -> str:
        self.n += 1
        name = f"f{self.n}{suffix}"
        self.files[name] = data
        return str(self.w.scratch / name)

    # -- a valid invocation of each command, with overrides -----------------------------------------

    def args(self, command: str, vol: str | None = None, omit: tuple[str, ...] = (), **opts: str | None) -> list[str]:
        """`volctl COMMAND` as it would succeed on the world, then with opts (--x-y as x_y) replaced."""
        given = {("--" + k.replace("_", "-")): v for k, v in opts.items()}
        optional = {
            "create": {"--name": f"vnew{self.rng.randrange(1000)}", "--multiattach": None, "--id": self.uuid()},
            "list": {"--status": self.pick(STATUSES)},
            "show": {"--show-secrets": None},
            "connect": {"--multipath": None, "--protocol": "iscsi"},
            "export": {"--protocol": "iscsi"},
            "manage": {"--name": f"vnew{self.rng.randrange(1000)}", "--multiattach": None},
            "attach": {"--host": "compute9", "--mountpoint": "/dev/vdc", "--mode": self.pick(["rw", "ro"]), "--initiator": I1},
            "reset-state": {"--attach-status": "detached"},
            "doctor": {"--repair": None},
        }.get(command, {})
        required = {"create": {"--size": "1"}, "attach": {"--instance": NEW_INSTANCE}, "extend": {"--size": "40"},
                    "reset-state": {"--status": "error"}, "doctor": {"--stale-after": "0"},
                    "revert": {"--snapshot": self.snap_ref("ssnap")},
                    "manage": {"--source-name": "legacy-lv"}}.get(command, {})
        if command in ("connect", "disconnect") and not {"--initiator", "--connector"} & (set(given) | set(omit)):
            initiator = I3 if command == "connect" else I1
            if self.chance(0.7):
                required = {"--initiator": initiator}
            else:
                doc = json.dumps({"initiator": initiator, "host": "compute3", "multipath": False}).encode()
                required = {"--connector": self._connector_source(doc)}
        if command == "detach" and not {"--attachment", "--instance"} & (set(given) | set(omit)) and self.chance(0.5):
            required = self.pick([{"--attachment": self.w.attachments["vuse"][0]}, {"--instance": INSTANCE_1}])
        out = [command]
        if command in TARGET:
            out.append(vol if vol is not None else self.ref(TARGET[command]))
        for option, value in {**required, **{k: v for k, v in optional.items() if self.chance(0.35)}, **given}.items():
            if option in omit:
                continue
            if value is None:
                out.append(option)
            elif self.chance(0.15) and option != "--connector":  # click's --opt=value spelling
                out.append(f"{option}={value}")
            else:
                out += [option, value]
        return out

    def _connector_source(self, doc: bytes) -> str:
        if self.chance(0.5):
            self.stdin = doc
            return "-"
        return self.file(doc, ".json")

    # -- one case, with the global options and environment around it --------------------------------

    def case(self, family: str, args: list[str], expect: frozenset[int], why: str, *, db: str | None = None,
             config: bytes | str | None = None, settings: tuple[str, ...] = (), tail: bool = True,
             good_config: bool = True, fresh_ok: bool = True) -> Case:
        env, front = {}, []
        target_db = db if db is not None else str(self.w.db)
        if db is None and expect == BAD and fresh_ok and self.chance(0.1):  # refused before the inventory is made, too
            target_db = str(self.w.root / f"fresh{self.rng.randrange(10**6)}" / "volctl.db")
        # An empty VOLCTL_DB/VOLCTL_CONFIG reads as unset: click would take the machine's defaults.
        if target_db and self.chance(0.2):
            env["VOLCTL_DB"] = target_db
        else:
            front.append(["--db", target_db])
        if config is None and good_config and self.chance(0.3):
            keys = sorted({self.cycle("good setting", sorted(SETTINGS_GOOD)),
                           *self.rng.sample(sorted(SETTINGS_GOOD), self.rng.randint(0, 2))})
            config = "".join(f"{k} = {self.pick(SETTINGS_GOOD[k])}\n" for k in keys).encode()
            settings = tuple(f"{k}:good" for k in keys)
        if config is not None:
            path = self.file(config, ".toml") if isinstance(config, bytes) else config
            if path and self.chance(0.25):
                env["VOLCTL_CONFIG"] = path
            else:
                front.append(["--config", path])
        where = self.cycle("--json " + (args[0] if args else ""), ["after", "none", "before", "none", "none"])
        if where == "after" and tail:
            args = [*args, "--json"]
        elif where != "none":
            front.append(["--json"])
        if self.chance(0.15):
            front.append([self.pick(["-v", "--verbose"])])
        if self.chance(0.2):  # a narrow or odd terminal must not wrap the one error line
            env["COLUMNS"] = self.pick(["20", "1", "0", "abc", ""])
        self.rng.shuffle(front)
        argv = tuple(a for group in front for a in group) + tuple(args)
        case = Case(family, args[0] if args else "", argv, expect, why, self.stdin, env, self.files, settings)
        self.stdin, self.files = None, {}
        return case


# -- coverage and reporting ----------------------------------------------------------------------


def coverage(cases: list[Case]) -> Counter:
    from volctl.cli import cli

    counts: Counter = Counter()
    for case in cases:
        counts[f"command {case.command}"] += 1
        command = cli.commands.get(case.command)
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} if command else set()
        start = case.argv.index(case.command) if case.command in case.argv else len(case.argv)
        for arg in case.argv[:start]:
            if arg.startswith("-"):
                counts[f"global {arg}"] += 1
        for arg in case.argv[start + 1:]:
            if arg.split("=")[0] in known:
                counts[f"{case.command} {arg.split('=')[0]}"] += 1
        if command and any(isinstance(p, click.Argument) for p in command.params):
            counts[f"{case.command} VOL"] += 1
        for env in case.env:
            counts[f"env {env}"] += 1
        for setting in case.settings:
            counts[f"setting {setting}"] += 1
        counts[f"exit {'/'.join(map(str, sorted(case.expect)))}"] += 1
    return counts


def uncovered(cases: list[Case], cli: click.Group) -> list[str]:
    counts = coverage(cases)
    skip = {"--help", "-h", "--version"}  # eager: they print and exit 0 whatever else is given
    wanted = [f"global {o}" for p in cli.params for o in (*p.opts, *p.secondary_opts) if o not in skip]
    for name, command in cli.commands.items():
        wanted.append(f"command {name}")
        for p in command.params:
            if isinstance(p, click.Argument):
                wanted.append(f"{name} VOL")
                continue
            wanted += [f"{name} {o}" for o in (*p.opts, *p.secondary_opts) if o not in skip]
    wanted += [f"setting {f.name}:{kind}" for f in fields(Settings) for kind in ("good", "bad")]
    wanted += ["env VOLCTL_DB", "env VOLCTL_CONFIG"] + [f"exit {c}" for c in (2, 3, 4, 5, 7)]
    return [w for w in wanted if not counts[w]]


def summary(failures: list[dict], total: int) -> str:
    classes: dict[tuple, list[dict]] = {}
    for f in failures:
        kinds = tuple(sorted({re.sub(r"[:(].*", "", p).strip() for p in f["problems"]}))
        classes.setdefault((f["family"], kinds), []).append(f)
    lines = [f"{len(failures)} of {total} generated invocations broke the contract, in {len(classes)} classes:"]
    for (family, kinds), found in sorted(classes.items(), key=lambda item: -len(item[1])):
        first = found[0]
        lines.append(f"- {family} [{'; '.join(kinds)}] x{len(found)}: volctl {first['argv']}"
                     + (f" <<< {first['stdin']}" if first["stdin"] else "") + (f" env {first['env']}" if first["env"] else "")
                     + "".join(f"\n    file {k}: {v[:120]!r}" for k, v in first["files"].items())
                     + f"\n    {'; '.join(first['problems'])}; stderr {first['stderr'][:200]!r}")
    return "\n".join(lines)
