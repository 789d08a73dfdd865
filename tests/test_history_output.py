"""`volctl history` for a person on a terminal (a real pty of 80 and of 200 columns) and for a
script reading it piped: real volctl processes against a fake host (tests/fakebin.py)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import sqlite3
import struct
import subprocess
import termios
import time
from datetime import datetime, timedelta

import pytest

from conftest import INITIATOR_1, INSTANCE_1
from fakebin import VOLCTL, FakeBin, fakebin, fakebin_pycache  # noqa: F401  (fixtures)

from volctl.errors import CommandFailed

# A POSIX TZ string (no tzdata needed): UTC+05:45, so a local time that merely looked like UTC would fail.
TZ = "XST-5:45"
OFFSET = timedelta(hours=5, minutes=45)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
HEADER = "CHANGE / COMMAND"


@pytest.fixture
def history(fakebin: FakeBin) -> dict:
    """v1: created, one failed export (a save that fails), exported, connected, reserved, attached."""
    with fakebin.service() as svc:
        svc.create(size=1, name="v1")
        svc.runner.fail(["cinder-rtstool", "save"], times=1)
        with pytest.raises(CommandFailed):
            svc.export("v1")
        svc.export("v1")
        svc.connect("v1", {"initiator": INITIATOR_1})
        svc.reserve("v1")
        svc.attach("v1", instance=INSTANCE_1)
        volume = svc.show("v1")
    _, user, password = volume.provider_auth.split()
    # Two rows no volctl code writes, as if an older version had: the secret in provider_auth's shape
    # (output masks it again) and a tool's stderr with a terminal escape in it (shown, not obeyed).
    conn = sqlite3.connect(fakebin.db)
    with conn:
        for detail in (f"auth was CHAP {user} {password}", "lvs said \x1b[31mred\x1b[0m\tand more"):
            conn.execute("INSERT INTO events (volume_id, volume_name, at, kind, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
                         [volume.id, "v1", "2026-01-02T03:04:05.678901+00:00", "note", "import", detail])
    conn.close()
    events = fakebin.ok("history", "v1", "--json").json()
    return {"events": events, "password": password}


def on_terminal(fakebin: FakeBin, *args: str, columns: int, columns_env: bool) -> tuple[list[str], str]:
    """Run volctl with stdin and stdout on a pty of COLUMNS columns (TIOCSWINSZ; COLUMNS too if
    columns_env); stderr piped apart. Returns the lines seen on the terminal, the header's bold
    stripped (and checked to be the only escape sequence), and stderr."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = fakebin.env({"TZ": TZ, "TERM": "xterm-256color"})
    for var in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(var, None)
    if columns_env:
        env["COLUMNS"] = str(columns)
    proc = subprocess.Popen([str(VOLCTL), *args], env=env, stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=fakebin.root)
    os.close(slave)
    data = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError as e:  # EIO: the last writer closed the pty
                if e.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            data += chunk
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0, stderr
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    raw = data.decode()
    text = ANSI.sub("", raw)
    if "--json" not in args:
        assert "\x1b" not in ANSI.sub("", raw.split("\n", 1)[0]) + raw.split("\n", 1)[1], "an escape outside the header"
    return text.replace("\r\n", "\n").rstrip("\n").split("\n"), stderr


def local_second(at: str) -> str:
    return (datetime.fromisoformat(at) + OFFSET).strftime("%Y-%m-%d %H:%M:%S")


def change_or_command(event: dict, password: str, *, terminal: bool) -> str:
    """What the last column must carry for an event: the secret masked, on a terminal control
    characters shown as escapes."""
    if event["kind"] == "command":
        what = " ".join(event["argv"])
    else:
        what = f"{event['from_status'] or '-'} -> {event['to_status']}" if event["to_status"] else ""
    if event["detail"]:
        what = f"{what}: {event['detail']}" if what else event["detail"]
    what = what.replace(password, "***")
    return what.replace("\x1b", "\\x1b").replace("\t", "\\t") if terminal else what


def rows(lines: list[str]) -> tuple[int, list[list[str]]]:
    """The header's start of the last column, and each event's lines (its first line, then continuations)."""
    assert HEADER in lines[0], lines[0]
    start = lines[0].index(HEADER)
    events: list[list[str]] = []
    for line in lines[1:]:
        if line[:1].strip():
            events.append([line])
        else:
            assert events, f"a continuation line before any event: {line!r}"
            events[-1].append(line)
    return start, events


@pytest.mark.parametrize("columns_env", [False, True], ids=["ioctl", "ioctl+COLUMNS"])
@pytest.mark.parametrize("columns", [80, 200])
def test_a_person_gets_one_line_per_timestamp_and_the_command_wrapped_last(fakebin, history, columns, columns_env):
    lines, stderr = on_terminal(fakebin, "history", "v1", columns=columns, columns_env=columns_env)
    events = history["events"]
    assert stderr == ""
    assert all(len(line) <= columns for line in lines), max(lines, key=len)
    start, shown = rows(lines)
    assert len(shown) == len(events), lines

    long_command = None
    for event, event_lines in zip(events, shown):
        first = event_lines[0]
        # The time on the event's own line, whole, local (TZ of the process), to the second.
        assert first.startswith(local_second(event["at"]) + "  "), (first, event["at"])
        assert event["at"] not in first and "+00:00" not in first
        short = first[:start].split()
        assert event["kind"] in short, first
        if event["kind"] == "command":
            result = "ok" if event["exit_code"] == 0 else f"exit {event['exit_code']}"
            assert f"{result} {event['duration']:.3f}s" in first[:start], first
        else:
            assert event["action"] in short, first
        # Only the last column wraps: every continuation line is blank up to where it starts.
        for continuation in event_lines[1:]:
            assert continuation[:start].strip() == "", continuation
        carried = "".join(line[start:] for line in event_lines)
        expected = change_or_command(event, history["password"], terminal=True)
        assert carried.replace(" ", "") == expected.replace(" ", ""), (carried, expected)
        if event["kind"] == "command" and event["argv"][:2] == ["cinder-rtstool", "create"]:
            long_command = (event_lines, expected)

    assert long_command, "the history holds a cinder-rtstool create"
    event_lines, expected = long_command
    width = columns - start
    assert len(expected) > width  # long enough to wrap on both terminals
    # Wrapped, not cut, and using the width it has: no more lines than word wrapping at that width needs.
    assert len(event_lines) > 1

    text = "\n".join(lines)
    assert history["password"] not in text and "auth was CHAP" in text
    assert "exit 5" in text  # the failed save


def test_80_columns_is_not_a_strip(fakebin, history):
    """The short columns as narrow as they can be, so the last one gets more than the 14-16 columns
    that six rich-sized columns left it (where a cinder-rtstool create took 12-15 lines)."""
    lines, _ = on_terminal(fakebin, "history", "v1", columns=80, columns_env=False)
    start, shown = rows(lines)
    assert 80 - start >= 22, lines[0]
    assert max(len(event_lines) for event_lines in shown) <= 10, lines


def test_piped_output_keeps_the_full_values_on_one_line(fakebin, history):
    """grep and awk read it: full ISO timestamps, whole command lines, one event per line, even when
    the calling shell exports an 80-column COLUMNS."""
    proc = fakebin.ok("history", "v1", env={"TZ": TZ, "COLUMNS": "80"})
    lines = proc.stdout.splitlines()
    events = history["events"]
    assert len(lines) == len(events) + 1, lines
    assert lines[0].split()[0] == "TIME"
    for event, line in zip(events, lines[1:]):
        assert line.startswith(event["at"] + " "), (line, event["at"])
        # (rich expands a tab to the next stop of 8, as a terminal would)
        assert change_or_command(event, history["password"], terminal=False).split("\t")[0] in line
        assert event["action"] in line.split()
    assert history["password"] not in proc.stdout and "auth was CHAP" in proc.stdout


def test_json_on_a_terminal_keeps_the_stored_values(fakebin, history):
    lines, stderr = on_terminal(fakebin, "history", "v1", "--json", columns=80, columns_env=True)
    assert stderr == ""
    assert json.loads("\n".join(lines)) == history["events"]
    assert all(e["at"].endswith("+00:00") and "." in e["at"] for e in history["events"])
