"""Secrets: the CHAP passwords volctl generates may appear only in `connect` output (the initiator
needs them) and in `show --show-secrets`. Never in any other stdout or stderr (human, --json or -v),
`history`, log records, or the message of a failed command, even when the failing tool echoes its
whole command line, password included, on stderr.

Each test runs the whole lifecycle itself with every command and the failures whose argv carries
the password (cinder-rtstool create and add-initiator) or that come between (save), collects the
passwords from the fake host's record of the real argv, and scans everything that came out.
Also: the inventory that holds the passwords is private, and volctl says so when it is not.
"""

from __future__ import annotations

import logging
import sqlite3
import stat
from pathlib import Path

import pytest
from conftest import INITIATOR_1, INITIATOR_2, INSTANCE_1, INSTANCE_2

from fakebin import fakebin, fakebin_pycache  # noqa: F401  (fixtures)

INITIATOR_3 = "iqn.2004-10.com.ubuntu:01:c0ffee"
UUID_V3 = "9d3b1c4e-2f6a-4b7c-8d9e-0a1b2c3d4e5f"


def passwords_in(argvs) -> set[str]:
    """The passwords volctl handed to cinder-rtstool: create DEV IQN USER PASSWORD ..., add-initiator IQN USER PASSWORD INI."""
    found = set()
    for argv in argvs:
        if argv[:2] == ["cinder-rtstool", "create"]:
            found.add(argv[5])
        elif argv[:2] == ["cinder-rtstool", "add-initiator"]:
            found.add(argv[4])
    return found


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

def test_no_password_outside_connect_and_show_secrets_in_process(fakebin, monkeypatch, caplog):
    """The CLI in this process, with the real Runner starting the fake programs, so the log records
    of every command (caplog) are there to scan besides stdout and stderr."""
    from click.testing import CliRunner

    from volctl.cli import App, cli
    from volctl.config import Settings
    from volctl.runner import Runner
    from volctl.service import VolumeService

    fb = fakebin
    caplog.set_level(logging.DEBUG, logger="volctl")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # as fb.env() does: the fake programs' bytecode is cached
    for key, value in fb.env().items():
        monkeypatch.setenv(key, value)
    outputs = []

    def run(*args: str, expect: int = 0, input: str | None = None, fail: str | None = None):
        if fail:
            monkeypatch.setenv("FAKEHOST_FAIL", fail)
        service = VolumeService(fb.db, Settings(**fb.settings_values), runner=Runner(), configfs=fb.configfs,
                                save_file=fb.save_file, host_root=fb.root / "host")
        result = CliRunner().invoke(cli, list(args), obj=App(_service=service), input=input, catch_exceptions=False)
        monkeypatch.delenv("FAKEHOST_FAIL", raising=False)
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
    every_read("v1")

    # failures of the commands whose argv carries the password, and of save between them; the fake
    # tool echoes its whole argv on stderr
    add, create, save = "cinder-rtstool add-initiator", "cinder-rtstool create", "cinder-rtstool save"
    failed = run("-v", "connect", "v1", "--initiator", "iqn.2001-04.com.example:bad", expect=6, fail=add)
    assert "simulated failure: cinder-rtstool add-initiator" in failed.stderr and "***" in failed.stderr
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
    run("-v", "delete", "v2", expect=6, fail="lvremove")
    for name in ("v1", "v2", "v3"):
        run("-v", "delete", name, "--json")
        run("history", name)
        run("-v", "history", name, "--json")
    run("list", "--json")

    passwords = passwords_in(c["argv"] for c in fb.calls() if c["ev"] == "start")
    assert len(passwords) == 3  # one per volume, reused on every export
    assert scan(outputs, passwords) >= 6  # connect and show --show-secrets did show them
    records = [r for r in caplog.records if r.name.startswith("volctl")]
    texts = [r.getMessage() for r in records] + [caplog.text]
    assert any("run: cinder-rtstool create" in t and "***" in t for t in texts)  # the log saw the commands ...
    assert not any(p in t for p in passwords for t in texts)  # ... masked
    scan_inventory_history(fb.db, passwords)


# -- real processes: their whole stdout and stderr ------------------------------------------------

def test_no_password_outside_connect_and_show_secrets_in_real_processes(fakebin):
    fb = fakebin
    fail = {"FAKEHOST_FAIL_CODE": "1"}

    def failing(prefix: str) -> dict:
        return {**fail, "FAKEHOST_FAIL": prefix}

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
    # v2 was never exported: its password is generated by the first of these and stored before create runs
    for prefix, args in [
        ("cinder-rtstool create", ("-v", "export", "v2", "--json")),
        ("cinder-rtstool create", ("connect", "v2", "--initiator", INITIATOR_1, "--json")),
        ("cinder-rtstool save", ("-v", "export", "v2")),
        ("cinder-rtstool save", ("-v", "connect", "v2", "--initiator", INITIATOR_1)),
        ("cinder-rtstool add-initiator", ("-v", "connect", "v2", "--initiator", INITIATOR_1, "--json")),
        ("cinder-rtstool add-initiator", ("connect", "v1", "--initiator", INITIATOR_3)),
        ("cinder-rtstool save", ("-v", "--json", "connect", "v1", "--initiator", INITIATOR_3)),
        ("cinder-rtstool save", ("-v", "disconnect", "v1", "--initiator", INITIATOR_2)),
    ]:
        proc = run(*args, expect=6, env=failing(prefix))
        assert prefix in proc.stderr and "simulated failure" in proc.stderr, proc
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
    run("-v", "delete", "v1", "--json")
    run("-v", "delete", "v2")
    run("-v", "history", "v1", "--json")
    run("history", "v2")

    passwords = passwords_in(c["argv"] for c in fb.calls() if c["ev"] == "start")
    assert len(passwords) == 2
    outputs = [(p.args, p.exit_code, p.stdout, p.stderr) for p in fb.procs]
    assert scan(outputs, passwords) >= 3
    assert any("volctl: run: cinder-rtstool create" in p.stderr and "***" in p.stderr for p in fb.procs)
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
