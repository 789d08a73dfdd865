"""Secrets: the passwords volctl generates for a volume's export may appear only in `connect`
output (the initiator needs them) and in `show --show-secrets`. Never in any other stdout or
stderr (human, --json or -v), `history`, log records, or the message of a failed step, even when
what fails below the helper echoes its arguments, password included (a tool's stderr, a library's
error).

The lifecycle tests run once per target helper (tests/worlds.py): the whole lifecycle with every
command and failures of the helper steps that hand the password down (create_export, allow) or
that come between (persist). They collect the passwords from the inventory, check them against
what went below the helper (a tool's argv, a library's ACLs) where the fake below can see it, and
scan everything that came out. Also: the inventory that holds the passwords is private, and
volctl says so when it is not (about the inventory file, whichever helper: the default world).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from fakebin import fakebin, fakebin_pycache  # noqa: F401  (fixtures)

INITIATOR_3 = "iqn.2004-10.com.ubuntu:01:c0ffee"
UUID_V3 = "9d3b1c4e-2f6a-4b7c-8d9e-0a1b2c3d4e5f"


def passwords_in(db: Path) -> set[str]:
    """The secrets the inventory holds: provider_auth is "<method> <user> <secret>" for every helper."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {auth.split()[2] for (auth,) in conn.execute("SELECT provider_auth FROM volumes WHERE provider_auth IS NOT NULL")}
    finally:
        conn.close()


def assert_went_below(pw, passwords: set[str], below: set[str] | None) -> None:
    """What went below the helper is the inventory's secrets, where the fake below can see them
    (lioadm's argv, the shared rtslib's live ACLs), and nothing else."""
    if below is not None:
        assert below and below <= passwords, (below, passwords)


def allowed(args: tuple[str, ...], exit_code: int) -> bool:
    """Whether this command's stdout may carry a password."""
    words = [a for a in args if not a.startswith("-")]
    return (exit_code == 0 and bool(words) and words[0] == "connect") or ("show" in words and "--show-secrets" in args)


def scan(outputs, passwords: set[str]) -> int:
    """Assert no password in any output but the allowed stdouts; returns how many allowed stdouts
    did carry one (the positive control: the scan finds a password where it is)."""
    assert passwords and all(len(p) == 16 for p in passwords), passwords
    shown = 0
    for args, exit_code, stdout, stderr in outputs:
        for password in passwords:
            assert password not in stderr, f"password in stderr of volctl {' '.join(args)} ({exit_code}):\n{stderr}"
            if allowed(args, exit_code):
                shown += password in stdout
            else:
                assert password not in stdout, f"password in stdout of volctl {' '.join(args)} ({exit_code}):\n{stdout}"
    return shown


def scan_inventory_history(db: Path, passwords: set[str]) -> None:
    """The stored history (argv, details) holds no password either; only provider_auth does."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT * FROM events").fetchall()
        attachments = conn.execute("SELECT * FROM attachments").fetchall()
        connections = conn.execute("SELECT * FROM connections").fetchall()
    finally:
        conn.close()
    assert rows
    for row in [*rows, *attachments, *connections]:
        text = " ".join(str(v) for v in row)
        assert not any(p in text for p in passwords), row


# -- in-process: every output, and every log record -------------------------------------------------

def test_no_password_outside_connect_and_show_secrets_in_process(proc_world, monkeypatch, caplog):
    """The CLI in this process, with the real Runner starting the fake programs, so the log records
    of every command (caplog) are there to scan besides stdout and stderr."""
    from click.testing import CliRunner

    from volctl.cli import App, cli
    from volctl.runner import Runner

    pw, fb = proc_world, proc_world.fb
    caplog.set_level(logging.DEBUG, logger="volctl")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # as fb.env() does: the fake programs' bytecode is cached
    for key, value in fb.env().items():
        monkeypatch.setenv(key, value)
    outputs = []

    def run(*args: str, expect: int = 0, input: str | None = None, fail: str | None = None):
        """fail: a helper step that fails in this command (its message echoing what the call was
        given), or an LVM program."""
        if fail in ("lvremove",):
            monkeypatch.setenv("FAKEHOST_FAIL", fail)
        elif fail and pw.commands:  # the helper's steps are programs: they read the environment
            for key, value in pw.fail_env(fail, echo=True).items():
                monkeypatch.setenv(key, value)
        elif fail:
            pw.in_process_fail(fail, echo=True)
        service = pw.in_process_service(Runner())
        result = CliRunner().invoke(cli, list(args), obj=App(_service=service), input=input, catch_exceptions=False)
        monkeypatch.delenv("FAKEHOST_FAIL", raising=False)
        pw.steps.clear()
        outputs.append((args, result.exit_code, result.stdout, result.stderr))
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result

    def every_read(ref: str) -> None:
        for extra in ((), ("--json",), ("-v",)):
            run(*extra, "show", ref)
            run(*extra, "history", ref)
            run(*extra, "list")
        run("--json", "show", ref, "--show-secrets")
        run("show", ref, "--show-secrets")
        run("list", "--status", "in-use", "--json")

    # the seed flow, each command human, --json and -v somewhere
    run("create", "--size", "1", "--name", "v1")
    run("-v", "create", "--size", "1", "--name", "v2", "--json")
    run("--json", "-v", "create", "--size", "2", "--name", "v3", "--multiattach", "--id", UUID_V3)
    run("-v", "reserve", "v1")
    run("-v", "export", "v1")
    run("export", "v1", "--json")  # already exported
    run("-v", "connect", "v1", "--initiator", INITIATOR_1, "--json")
    run("connect", "v1", "--initiator", INITIATOR_2)
    run("connect", "v1", "--connector", "-", "--multipath", input=f'{{"initiator": "{INITIATOR_3}", "host": "c3"}}')
    run("-v", "attach", "v1", "--instance", INSTANCE_1, "--host", "compute1", "--initiator", INITIATOR_1, "--json")
    below = pw.secrets_below()  # while v1's hosts are allowed
    every_read("v1")

    # failures of the steps that hand the password down, and of the persist between them; what
    # fails below the helper echoes what it was given
    add, create, save = "allow", "create_export", "persist"
    failed = run("-v", "connect", "v1", "--initiator", "iqn.2001-04.com.example:bad", expect=6, fail=add)
    assert "simulated failure" in failed.stderr
    if pw.echoes:  # the echoed password, masked
        assert "***" in failed.stderr
    run("connect", "v1", "--initiator", "iqn.2001-04.com.example:bad", "--json", expect=6, fail=add)
    run("-v", "connect", "v2", "--initiator", INITIATOR_1, expect=6, fail=add)  # a fresh export by connect, undone
    run("-v", "export", "v2", expect=6, fail=create)
    run("export", "v2", "--json", expect=6, fail=create)
    run("connect", "v2", "--initiator", INITIATOR_1, "--json", expect=6, fail=create)
    run("-v", "export", "v2", expect=6, fail=save)
    run("-v", "connect", "v3", "--initiator", INITIATOR_2, expect=6, fail=save)
    run("-v", "connect", "v1", "--initiator", "iqn.2001-04.com.example:bad", expect=6, fail=save)
    run("-v", "disconnect", "v1", "--initiator", INITIATOR_3, expect=6, fail=save)
    every_read("v2")
    every_read("v3")

    # the rest of the lifecycle
    run("-v", "doctor", "--repair", "--stale-after", "0")  # what the failed saves left behind
    run("-v", "reserve", "v2", "--json")
    run("-v", "unreserve", "v2")
    run("-v", "export", "v2", "--json")
    run("-v", "connect", "v3", "--initiator", INITIATOR_2, "--json")
    run("-v", "reserve", "v3")
    run("attach", "v3", "--instance", INSTANCE_2, "--initiator", INITIATOR_2)
    run("-v", "disconnect", "v1", "--initiator", INITIATOR_3)
    run("disconnect", "v1", "--initiator", INITIATOR_2, "--json")
    run("-v", "detach", "v1", "--json")
    run("-v", "detach", "v3")
    run("-v", "unexport", "v2")
    run("-v", "extend", "v2", "--size", "3", "--json")
    run("-v", "reset-state", "v2", "--status", "error")
    run("-v", "reset-state", "v2", "--status", "available", "--attach-status", "detached")
    run("-v", "doctor")
    run("--json", "doctor", "--stale-after", "0")
    run("-v", "doctor", "--repair", "--json")
    every_read("v1")
    passwords = passwords_in(fb.db)
    run("-v", "delete", "v2", expect=6, fail="lvremove")
    for name in ("v1", "v2", "v3"):
        run("-v", "delete", name, "--json")
        run("history", name)
        run("-v", "history", name, "--json")
    run("list", "--json")

    assert len(passwords) == 3  # one per volume, reused on every export
    assert_went_below(pw, passwords, below)
    assert scan(outputs, passwords) >= 6  # connect and show --show-secrets did show them
    records = [r for r in caplog.records if r.name.startswith("volctl")]
    texts = [r.getMessage() for r in records] + [caplog.text]
    if pw.commands:
        assert any("run: " in t and "***" in t for t in texts)  # the log saw the commands that carry it ...
    assert not any(p in t for p in passwords for t in texts)  # ... masked
    scan_inventory_history(fb.db, passwords)


# -- real processes: their whole stdout and stderr ------------------------------------------------

def test_no_password_outside_connect_and_show_secrets_in_real_processes(proc_world):
    pw, fb = proc_world, proc_world.fb

    def failing(step: str) -> dict:
        return pw.fail_env(step, echo=True)

    def run(*args: str, expect: int = 0, env: dict | None = None, input: str | None = None):
        proc = fb.run(*args, env=env, input=input)
        assert proc.exit_code == expect, str(proc)
        return proc

    run("create", "--size", "1", "--name", "v1")
    run("-v", "create", "--size", "1", "--name", "v2", "--json")
    run("-v", "reserve", "v1", "--json")
    run("-v", "connect", "v1", "--initiator", INITIATOR_1, "--json")
    run("-v", "connect", "v1", "--initiator", INITIATOR_2)
    run("-v", "attach", "v1", "--instance", INSTANCE_1, "--host", "compute1")
    below = pw.secrets_below()  # while v1's hosts are allowed
    # v2 was never exported: its password is generated by the first of these and stored before create runs
    for step, args in [
        ("create_export", ("-v", "export", "v2", "--json")),
        ("create_export", ("connect", "v2", "--initiator", INITIATOR_1, "--json")),
        ("persist", ("-v", "export", "v2")),
        ("persist", ("-v", "connect", "v2", "--initiator", INITIATOR_1)),
        ("allow", ("-v", "connect", "v2", "--initiator", INITIATOR_1, "--json")),
        ("allow", ("connect", "v1", "--initiator", INITIATOR_3)),
        ("persist", ("-v", "--json", "connect", "v1", "--initiator", INITIATOR_3)),
        ("persist", ("-v", "disconnect", "v1", "--initiator", INITIATOR_2)),
    ]:
        proc = run(*args, expect=6, env=failing(step))
        assert "simulated failure" in proc.stderr, proc
        if pw.echoes and step == "allow":
            assert "***" in proc.stderr, proc  # the echoed password, masked
    for args in (("show", "v1"), ("show", "v2", "--json"), ("history", "v1"), ("-v", "history", "v2", "--json"),
                 ("list",), ("list", "--json"), ("show", "v1", "--show-secrets"), ("show", "v2", "--show-secrets", "--json")):
        run(*args)
    run("-v", "disconnect", "v1", "--initiator", INITIATOR_2)
    run("-v", "detach", "v1")
    run("-v", "reserve", "v2")
    run("-v", "unreserve", "v2", "--json")
    run("-v", "export", "v2")
    run("-v", "unexport", "v2", "--json")
    run("-v", "extend", "v2", "--size", "2")
    run("-v", "reset-state", "v2", "--status", "available", "--attach-status", "detached")
    run("-v", "doctor", "--repair", "--json", "--stale-after", "0")
    run("-v", "doctor", "--stale-after", "0")
    passwords = passwords_in(fb.db)
    run("-v", "delete", "v1", "--json")
    run("-v", "delete", "v2")
    run("-v", "history", "v1", "--json")
    run("history", "v2")

    assert len(passwords) == 2
    assert_went_below(pw, passwords, below)
    outputs = [(p.args, p.exit_code, p.stdout, p.stderr) for p in fb.procs]
    assert scan(outputs, passwords) >= 3
    if pw.commands:
        assert any("volctl: run: " in p.stderr and "***" in p.stderr for p in fb.procs)
    scan_inventory_history(fb.db, passwords)
    fb.assert_never_locked()


# -- the inventory that holds them -----------------------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_inventory_is_created_private(fakebin):
    fb = fakebin
    assert not fb.db.parent.exists()
    fb.ok("create", "--size", "1", "--name", "v1")
    assert mode(fb.db) == 0o600
    assert mode(fb.db.parent) == 0o700
    for companion in (Path(f"{fb.db}-wal"), Path(f"{fb.db}-shm")):
        if companion.exists():
            assert mode(companion) & 0o077 == 0, companion
    locks = Path(f"{fb.db}.locks")
    assert mode(locks) == 0o700 and all(mode(p) & 0o077 == 0 for p in locks.iterdir())


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_an_inventory_open_to_others_gets_a_warning(fakebin, json_flag):
    fb = fakebin
    fb.ok("create", "--size", "1", "--name", "v1")
    quiet = fb.ok("reserve", "v1", *json_flag).stderr  # private: nothing to say
    assert "others" not in quiet and "chmod" not in quiet, quiet
    fb.db.chmod(0o644)
    proc = fb.ok("unreserve", "v1", *json_flag)
    assert "readable by others (mode 0644)" in proc.stderr and "chmod 600" in proc.stderr, proc
    if json_flag:
        assert proc.json()["status"] == "available"  # the warning stays off stdout
    fb.db.chmod(0o600)
    fb.db.parent.chmod(0o755)
    proc = fb.ok("reserve", "v1", *json_flag)
    assert "open to others (mode 0755)" in proc.stderr and "chmod 700" in proc.stderr, proc
    assert "readable by others" not in proc.stderr


# -- every other command, in-process over each helper ----------------------------------------------

def test_no_password_in_any_other_command_its_log_errors_or_history(world, db_path, caplog):
    """The commands the lifecycle tests above do not run (restore, doctor --repair of what a
    failure left, the snapshot commands, volumes from snapshots and clones, revert, extend,
    manageable/manage/unmanage), human, --json and -v, over exported volumes whose
    passwords are known; and their failures with a message echoing the password. Only connect's
    stdout and show --show-secrets may carry it; the -v log and the whole history never."""
    from click.testing import CliRunner

    from volctl.cli import App, cli

    caplog.set_level(logging.DEBUG, logger="volctl")
    host = world.host
    outputs = []

    def run(*args: str, expect: int | None = 0):
        service = world.make_service()
        result = CliRunner().invoke(cli, ["--db", str(db_path), *args], obj=App(_service=service), catch_exceptions=False)
        outputs.append((args, result.exit_code, result.stdout, result.stderr))
        world.clear_faults()
        host.failures.clear()
        assert expect is None or result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr)
        return result

    def fail(step: str, password: str) -> None:
        """Every call of the step fails with a message carrying the password, as a careless tool would."""
        if world.name == "lioadm":  # cinder-rtstool echoing its arguments: the calls for this password's volume
            sub = {"create_export": "create", "allow": "add-initiator", "persist": "save"}[step]
            host.fail(lambda argv: list(argv[:2]) == ["cinder-rtstool", sub] and (sub == "save" or password in argv),
                      exit_code=1, stderr=f"simulated failure: given {password if sub != 'save' else ''}\n")
        else:
            world.fail(step, echo=True, always=True)

    def lose_every_target() -> None:
        for target in list(world.live()):
            world.lose(target)

    run("create", "--size", "1", "--name", "v1")
    run("-v", "connect", "v1", "--initiator", INITIATOR_1, "--json")
    run("-v", "create", "--size", "1", "--name", "v2", "--json")
    run("-v", "export", "v2")
    passwords = passwords_in(db_path)
    assert len(passwords) == 2

    for extra in ((), ("-v",), ("--json",)):
        name = "s1" + "".join(extra).replace("-", "")
        run(*extra, "snapshot", "create", "v1", "--name", name)
        run(*extra, "snapshot", "list")
        run(*extra, "snapshot", "list", "v1")
        run(*extra, "snapshot", "show", name)
        run(*extra, "manageable")
        run(*extra, "doctor", "--stale-after", "0")
    run("-v", "create", "--snapshot", "s1", "--name", "fs1", "--json")
    run("-v", "create", "--source-volume", "v1", "--name", "c1")
    run("-v", "history", "s1", "--json")
    run("-v", "extend", "v2", "--size", "2", "--json")
    run("-v", "unexport", "v2")
    run("-v", "snapshot", "create", "v2", "--name", "s2")
    run("-v", "revert", "v2", "--snapshot", "s2", "--json")
    run("-v", "export", "v2", "--json")
    run("-v", "snapshot", "delete", "s2", "--json")
    host.add_lv(world.settings.volume_group, "legacy", 1)
    run("-v", "manage", "--source-name", "legacy", "--name", "m1", "--json")
    info = json.loads(run("-v", "connect", "m1", "--initiator", INITIATOR_2, "--json").stdout)
    m1_password = info["data"].get("auth_password") or passwords_in(db_path).difference(passwords).pop()
    passwords |= {m1_password}
    run("-v", "disconnect", "m1", "--initiator", INITIATOR_2)
    run("-v", "unmanage", "m1", "--json")
    assert len(passwords) == 3

    # a reboot: restore and doctor --repair, failing with each password echoed, then working
    lose_every_target()
    for password in sorted(passwords_in(db_path)):
        lose_every_target()
        fail("create_export", password)
        run("-v", "restore", expect=6)
        fail("create_export", password)
        run("-v", "--json", "restore", expect=6)
        fail("create_export", password)
        run("-v", "doctor", "--repair", "--stale-after", "0", expect=None)
    run("-v", "restore", "v2")
    fail("persist", sorted(passwords)[0])
    run("-v", "restore", expect=None)  # a whole save where the helper finds the saved file stale
    run("-v", "doctor", "--repair", "--json", "--stale-after", "0")
    run("-v", "connect", "v1", "--initiator", INITIATOR_2)
    fail("allow", sorted(passwords)[0])
    lose_every_target()
    run("-v", "restore", expect=None)
    run("-v", "doctor", "--repair", "--stale-after", "0")
    run("-v", "doctor", "--stale-after", "0")

    for name in ("v1", "v2", "fs1", "c1", "m1"):
        run("-v", "history", name)
        run("history", name, "--json")
    for name in ("v1", "v2", "fs1", "c1"):
        run("show", name)
        run("--json", "-v", "show", name)
    run("-v", "show", "v1", "--show-secrets")
    run("list")
    run("-v", "list", "--json")
    run("-v", "snapshot", "list", "--json")

    assert scan(outputs, passwords) >= 2  # connect and show --show-secrets did show them
    assert any("re-created" in out or "restored" in out.lower() for _, _, out, _ in outputs)
    texts = [r.getMessage() for r in caplog.records if r.name.startswith("volctl")] + [caplog.text]
    if world.commands:
        assert any("run: " in t and "***" in t for t in texts)  # the log saw the commands that carry it ...
    assert not any(p in t for p in passwords for t in texts)  # ... masked
    scan_inventory_history(db_path, passwords)
