"""Generated bad invocations of the whole CLI against one realistic inventory (issue 10).

A seeded generator (tests/cligen*.py; VOLCTL_GEN_SEED, VOLCTL_GEN_CASES, fixed by default so CI
is reproducible) makes invocations of every command, option and TOML setting that must all be
refused, runs each in-process through the real App (--db, --config and the environment included,
only the programs are the fake host's) against one inventory and fake host, and checks the
README's promise for each: the documented exit code (never 0 or 1), no traceback, exactly one
line on stderr with nothing unprintable left unescaped, stdout empty (or one JSON document under
--json), and nothing changed: every table of the inventory (history included), the fake host's
LVs, targets, ACLs and saved config, its changing calls (even undone ones), configfs and every
file of the world are compared before and after; a change is reported and the world restored.
Bad input runs while "another volctl" holds every lock: refusing must not wait for one.
VOLCTL_GEN_REPORT=FILE writes every failing case and the coverage counts as JSON.

Which exit code is right, decided per case from the README's "Exit codes":
- 2 for anything malformed: a value that can never be valid (size, UUID, name, IQN, mode, status,
  seconds, host, mountpoint, connector document, TOML), a `VOL` that is neither a UUID nor a
  valid name, an attachment id that is not a UUID, a non-UTF-8 byte in any argument, options that
  exclude each other given together, click's own usage errors, and an `extend` that does not grow.
  Malformed input is refused before the inventory is read, so 2 wins over 3, 4, 5 whatever `VOL`.
- 3 for a well-formed `VOL`, attachment or instance that is not there.
- 4 for a well-formed `--name`/`--id` that another volume has.
- 5 for a well-formed request the volume's state does not allow.
- 7 for an inventory that cannot be used: `--db` a directory, not SQLite, truncated, under a file,
  a symlink loop, another program's SQLite file (never migrated into), or rows whose stored JSON
  does not parse.
- Where the README leaves two readings open the case accepts both and says so (`--db ''`, a --db
  name longer than the kernel takes: 2 or 7).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
import cligen
import cligen_families
from cligen_values import BAD, I3, WRONG_STATE
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2, inventory_tables
from fakebin import VOLCTL, fakebin, fakebin_pycache  # noqa: F401  (fixtures)
from fakehost import FakeHost

from volctl import config as volctl_config
from volctl.cli import cli
from volctl.config import Settings
from volctl.errors import CommandFailed
from volctl.locks import Locks
from volctl.service import VolumeService

SEED = int(os.environ.get("VOLCTL_GEN_SEED", "20261201"))
CASES = int(os.environ.get("VOLCTL_GEN_CASES", "1500"))  # enough to go through every value pool
REPORT = os.environ.get("VOLCTL_GEN_REPORT")  # a JSON file for every failing case, for a person
# A host call that changes LVM or LIO; a refused invocation must make none, even one it undoes.
_CHANGING = {"lvcreate", "lvextend", "lvremove", "lvchange", "lvconvert", "dd"}
_CHANGING_RTSTOOL = {"create", "add-initiator", "delete", "delete-initiator", "save"}
# Bad input runs with every lock of the world held by "another volctl": a case that waits for one
# before refusing shows as exit 7 after this long instead of a refusal at once.
LOCK_WAIT = 0.3


# -- the world: a realistic inventory and host, built once, restored after any change ------------


@dataclass
class World:
    root: Path  # everything a case may change lives under here
    scratch: Path  # config and connector files the cases read
    pristine: Path  # a copy of root as built
    db: Path
    configfs: Path
    save_file: Path
    ids: dict[str, str]
    attachments: dict[str, list[str]]
    host_state: dict = field(default_factory=dict)
    host: FakeHost | None = None
    before: dict = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)  # name -> id


def _build(base: Path) -> World:
    root, scratch = base / "world", base / "scratch"
    scratch.mkdir(parents=True)
    db, configfs, save_file = root / "state" / "volctl.db", root / "configfs", root / "target" / "saveconfig.json"
    configfs.mkdir(parents=True)
    host = FakeHost(configfs=configfs, save_file=save_file)
    svc = VolumeService(db, Settings(), runner=host, locks=Locks(Path(f"{db}.locks"), wait=5), configfs=configfs,
                        save_file=save_file)
    ids, attachments = {}, {}

    def made(name, size=1, multiattach=False):
        ids[name] = svc.create(size=size, name=name, multiattach=multiattach).volume.id
        return name

    def attached(name, instance, initiator, host_name):
        svc.reserve(name)
        svc.connect(name, {"initiator": initiator, "host": host_name})
        done = svc.attach(name, instance=instance, host=host_name, mountpoint="/dev/vdb", initiator=initiator)
        attachments.setdefault(name, []).append(done.data["attachment_id"])

    made("va")
    attached(made("vuse", size=2), INSTANCE_1, INITIATOR_1, "compute1")
    svc.reserve(made("vatt"))
    made("vmulti", multiattach=True)
    attached("vmulti", INSTANCE_1, INITIATOR_1, "compute1")
    attached("vmulti", INSTANCE_2, INITIATOR_2, "compute2")
    svc.connect(made("vexp"), {"initiator": INITIATOR_2})  # exported and connected, not attached
    svc.reset_state(made("vmaint"), status="maintenance")
    made("vsnap", size=2)  # a thick origin: the snapshot commands' and revert's target
    snapshots = {name: svc.snapshot_create(vol, name=name).snapshot.id for vol, name in (("vsnap", "ssnap"), ("vexp", "sexp"))}
    host.fail(["lvcreate"], times=1)
    with pytest.raises(CommandFailed):
        svc.create(size=1, name="verr")
    ids["verr"] = svc.show("verr").id
    svc.delete(made("vgone"))  # only its history is left
    svc.inventory().close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    env = root / "env"  # the bad environments a case may point --db or --config at
    (env / "dbdir").mkdir(parents=True)
    (env / "db\ndir").mkdir()
    (env / "not-sqlite.db").write_bytes(b"this is not an SQLite database\n" * 64)
    (env / "afile").write_bytes(b"a plain file\n")
    (env / "truncated.db").write_bytes(db.read_bytes()[:1536])
    (env / "loop1").symlink_to("loop2")  # ELOOP: neither absent nor readable
    (env / "loop2").symlink_to("loop1")
    foreign = sqlite3.connect(env / "foreign.db")  # SQLite, but some other program's database
    foreign.execute("CREATE TABLE notes (body TEXT)")
    foreign.execute("INSERT INTO notes VALUES ('not volctl')")
    foreign.commit()
    foreign.close()
    for name, sql in (("events", "UPDATE events SET argv = '{not json' WHERE argv IS NOT NULL"),
                      ("connections", "UPDATE connections SET connector = '{not json'"),
                      ("attachments", "UPDATE attachments SET connector = '{not json'")):
        shutil.copy(db, env / f"corrupt-{name}.db")
        corrupt = sqlite3.connect(env / f"corrupt-{name}.db")
        corrupt.execute(sql)
        corrupt.commit()
        corrupt.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        corrupt.close()
    for path in [env, *(p for p in env.iterdir() if not p.is_symlink())]:  # as volctl makes its own: no warning muddles a case
        path.chmod(0o600 if path.is_file() else 0o700)
    pristine = base / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    return World(root, scratch, pristine, db, configfs, save_file, ids, attachments, host.to_state(), snapshots=snapshots)


def _tree(root: Path, db: Path) -> dict:
    """Every file and directory under root with a digest of its content; the inventory is compared
    by its tables instead; its WAL files and lock directory are how any command runs."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.endswith(".locks")]  # <db>.locks: made by any write's open
        here = Path(dirpath)
        rel = str(here.relative_to(root))
        found[rel + "/"] = "dir"
        for name in filenames:
            path = here / name
            if name.endswith(("-wal", "-shm", "-journal")) or path == db:
                continue
            found[f"{rel}/{name}"] = ("-> " + os.readlink(path) if path.is_symlink()
                                      else hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def _tables(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {"sqlite_master": sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"), key=repr),
               "user_version": conn.execute("PRAGMA user_version").fetchone()}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            out[table] = sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        return out
    finally:
        conn.close()


def _state(world: World) -> dict:
    host = world.host
    return {
        "tables": _tables(world.db),
        "host": host.to_state(),
        "host changes": [c for c in host.calls if c[0] in _CHANGING or (c[:1] == ["cinder-rtstool"] and c[1] in _CHANGING_RTSTOOL)],
        "files": _tree(world.root, world.db),
    }


def _restore(world: World) -> None:
    gc.collect()  # a service left behind closes its SQLite connection before its files go
    shutil.rmtree(world.root)
    shutil.copytree(world.pristine, world.root, symlinks=True)
    world.host = FakeHost.from_state(world.host_state)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        w = _build(tmp_path_factory.mktemp("generated"))
        # Every invocation goes through the real App, --db, --config and env vars included; only the
        # programs are the fake host's, and the machine's own /etc/volctl is never read.
        mp.setattr("volctl.service.core.Runner", lambda *a, **k: w.host)
        mp.setattr("volctl.service.core.Locks", lambda directory, wait=LOCK_WAIT: Locks(directory, wait=LOCK_WAIT))
        mp.setattr(volctl_config, "DEFAULT_CONFIG", str(w.scratch / "no-default-config.toml"))
        w.host = FakeHost.from_state(w.host_state)
        w.before = _state(w)
        yield w


# -- running one case and judging it -------------------------------------------------------------


def run(world: World, case: cligen.Case) -> tuple[Result, list[str]]:
    for name, data in case.files.items():
        (world.scratch / name).write_bytes(data)
    world.host = FakeHost.from_state(world.host_state)
    env = {"VOLCTL_CONFIGFS": str(world.configfs), "VOLCTL_LIO_SAVE_FILE": str(world.save_file), "VOLCTL_DB": None,
           "VOLCTL_CONFIG": None, "COLUMNS": "80", **case.env}
    with _all_locks_held(world) if case.expect == BAD else contextlib.nullcontext():
        result = CliRunner().invoke(cli, list(case.argv), input=case.stdin, env=env, catch_exceptions=True)
    problems = judge(case, result)
    after = _state(world)
    changed = [key for key in after if after[key] != world.before[key]]
    if changed:
        problems.append("changed: " + ", ".join(_what_changed(world.before, after, changed)))
        _restore(world)
    return result, problems


@contextlib.contextmanager
def _all_locks_held(world: World):
    locks = Path(f"{world.db}.locks")
    fds = [os.open(locks / name, os.O_RDWR | os.O_CREAT, 0o600)
           for name in ["lio.lock", *(f"volume-{i}.lock" for i in world.ids.values()),
                        *(f"snapshot-{i}.lock" for i in world.snapshots.values())]]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        for fd in fds:
            os.close(fd)


def _what_changed(before: dict, after: dict, keys: list[str]) -> list[str]:
    said = []
    for key in keys:
        if key == "tables":
            said += [f"table {t}" for t in sorted(set(before[key]) | set(after[key])) if before[key].get(t) != after[key].get(t)]
        elif key == "files":
            said += [f"file {f}" for f in sorted(set(before[key]) | set(after[key])) if before[key].get(f) != after[key].get(f)]
        elif key == "host changes":
            said += ["host call " + " ".join(c[:2]) for c in after[key]]
        else:
            said.append(key)
    return said


def judge(case: cligen.Case, result) -> list[str]:
    problems = []
    code, out, err = result.exit_code, result.stdout, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problems.append(f"escaped {type(result.exception).__name__}: {result.exception}")
    if code in (0, 1) or code not in case.expect:
        problems.append(f"exit {code}, expected {'/'.join(map(str, sorted(case.expect)))}")
    if "Traceback" in out or "Traceback" in err:
        problems.append("traceback")
    if not err.endswith("\n") or err.count("\n") != 1 or "\r" in err:
        lines = len(err.replace("\r", "\n").splitlines())
        problems.append(f"stderr has {lines} lines" + ("" if err.endswith("\n") or not err else ", the last unterminated"))
    elif not err[:-1].isprintable():  # control, format (bidi, zero-width) and separator characters
        problems.append("stderr holds an unescaped unprintable character")
    if out:
        if "--json" not in case.argv:
            problems.append("stdout not empty")
        else:
            try:
                json.loads(out)
            except ValueError:
                problems.append("stdout is not one JSON document")
    return problems


# -- the tests -----------------------------------------------------------------------------------


def test_generated_bad_invocations_are_refused_and_change_nothing(world):
    cases, _ = cligen_families.generate(random.Random(SEED), CASES, world)
    failures = []
    for number, case in enumerate(cases):
        result, problems = run(world, case)
        if problems:
            failures.append({"case": number, "family": case.family, "why": case.why, "problems": problems,
                             "argv": cligen.shown(case.argv, world), "stdin": case.stdin_shown(), "env": case.env_shown(world),
                             "files": {k: v[:300].decode("latin-1") for k, v in case.files.items()},
                             "exit": result.exit_code, "stderr": result.stderr[:600], "stdout": result.stdout[:300]})
    if REPORT:
        Path(REPORT).write_text(json.dumps({"seed": SEED, "cases": len(cases), "failures": failures,
                                            "coverage": dict(sorted(cligen.coverage(cases).items()))}, indent=1))
    assert len(cases) >= 500
    assert not failures, cligen.summary(failures, len(cases))


def test_generated_cases_reach_every_command_option_and_setting(world):
    cases, gen = cligen_families.generate(random.Random(SEED), CASES, world)
    missing = cligen.uncovered(cases, cli)
    counts = cligen.coverage(cases)
    print("\n".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    assert not missing, f"never exercised: {missing}"
    assert not gen.unfinished(), f"value pools not gone through: {gen.unfinished()}"


def test_the_harness_sees_a_change_and_a_waited_lock(world):
    """The checks above can fail: a valid command slipped in as bad input is caught changing the
    inventory and the host, and is undone; one that takes a volume lock waits and gives up."""
    db = str(world.db)
    _, problems = run(world, cligen.Case("control", "connect", ("--db", db, "connect", "vexp", "--initiator", I3),
                                         WRONG_STATE, "a valid connect"))
    assert problems[0] == "exit 0, expected 5" and "stdout not empty" in problems
    assert "table connections" in problems[-1] and "host call cinder-rtstool add-initiator" in problems[-1], problems
    assert _state(world) == world.before, "the world is restored after a change"
    _, problems = run(world, cligen.Case("control", "export", ("--db", db, "export", "va"), BAD, "a valid export"))
    assert problems == ["exit 7, expected 2"], problems


# Real processes: the bytes an operator's shell hands over, decoded by Python itself, not by a test.
# -v too: a refused command runs no program, so its debug log adds no line.
PROCESS_CASES = [
    ([b"show", b"\xff"], None, True),
    ([b"-v", b"connect", b"va", b"--initiator", b"iqn.1994-05.com.redhat:c\xff1"], None, True),
    ([b"attach", b"va", b"--instance", INSTANCE_1.encode(), b"--mountpoint", b"/dev/\xff"], None, True),
    ([b"-v", b"connect", b"va", b"--connector", b"-"], b'{"initiator": "iqn.1994-05.com.redhat:c\xff1"}', True),
    ([b"--config", b"/tmp/no\nsuch-\xff.toml", b"list"], None, True),
    ([b"-v", b"create", b"--size", "\u0661".encode()], None, False),
    ([b"connect", b"va", b"--connector", b"/dev/zero"], None, False),  # endless: read only as far as the limit
    ([b"-v", b"disconnect", b"va", b"--connector", b"-"], Path("/dev/zero"), False),
    ([b"--config", b"/dev/zero", b"list"], None, False),  # a config, too, is read only as far as a sane size
]


def _at_most_1_gib() -> None:
    """An unbounded read of /dev/zero fails fast in the child instead of eating a shared machine's memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_bad_bytes_as_real_processes(fakebin):
    with fakebin.service() as svc:
        svc.create(size=1, name="va")
        svc.reserve("va")

    def state():
        return inventory_tables(fakebin.db), fakebin.host().to_state(), sorted(str(p) for p in fakebin.configfs.rglob("*"))

    before = state()
    for argv, stdin, shows_byte in PROCESS_CASES:
        with open(stdin if isinstance(stdin, Path) else os.devnull, "rb") as endless:
            feed = {"stdin": endless} if isinstance(stdin, Path) else {"input": stdin}
            done = subprocess.run([os.fsencode(VOLCTL), *argv], capture_output=True, env=fakebin.env(), timeout=120,
                                  preexec_fn=_at_most_1_gib, **feed)
        err = done.stderr.decode("utf-8", "backslashreplace")
        assert done.returncode == 2, (argv, done.returncode, err)
        assert done.stdout == b"", (argv, done.stdout)
        assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert err[:-1].isprintable(), (argv, err)
        if shows_byte:
            assert "\\xff" in err, (argv, err)
        assert state() == before, argv
    changing = [c["argv"] for c in fakebin.calls() if c["ev"] == "start" and c["argv"][0] != "lvs"
                and c["argv"][:2] != ["cinder-rtstool", "get-targets"]]
    assert changing == []
