"""The console script runs `show` without click (volctl/fastpath.py) when click would read its
command line in one way only. Each command line here runs twice in a fresh interpreter: through
the console script's main (the fast path where it applies) and through the click root group alone
(as every command line ran before), and both runs must give the same stdout, stderr and exit code.
The command lines the fast path takes must never reach the click root group (volctl/group.py);
the others must. (tests/test_imports.py checks that a `show --json` imports no click at all.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import INITIATOR_1

_DRIVER = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["FASTPATH_PROBE"], "w").write(str(int("volctl.group" in sys.modules))))
mode = sys.argv.pop(1)
sys.argv[0] = "volctl"
if mode == "main":
    from volctl.cli import main
    main()
else:
    from volctl.group import cli
    cli(prog_name="volctl")
"""


@pytest.fixture
def world(service, db_path, tmp_path):
    service.create(size=1, name="vol1")
    service.connect("vol1", {"initiator": INITIATOR_1})  # exported: provider_auth holds a CHAP password
    service.create(size=2, name="vol2")
    good = tmp_path / "good.toml"
    good.write_text('volume_group = "cinder-volumes"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("volume_group = \n")
    directory = tmp_path / "a-directory"
    directory.mkdir()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    vid = service.show("vol1").id
    return {"db": str(db_path), "good": str(good), "bad": str(bad), "dir": str(directory), "junk": str(junk),
            "id": vid, "ID": vid.upper(), "missing": str(tmp_path / "nowhere" / "x.db"), "tmp": tmp_path}


def run(world, mode: str, argv: list, env: dict | None = None, stdout=subprocess.PIPE) -> tuple[int, bytes, bytes, bool]:
    """(exit code, stdout, stderr, whether the click root group was imported)"""
    probe = world["tmp"] / f"probe-{mode}"
    probe.unlink(missing_ok=True)
    full = {**os.environ, "FASTPATH_PROBE": str(probe), **(env or {})}
    done = subprocess.run([sys.executable, "-c", _DRIVER, mode, *argv], stdout=stdout, stderr=subprocess.PIPE,
                          env=full, timeout=120)
    return done.returncode, done.stdout or b"", done.stderr, probe.read_text() == "1"


def fill(world, argv: list) -> list:
    return [a.format(**world) for a in argv]


FAST = [
    ["show", "vol1", "--json"],
    ["show", "vol1"],
    ["--json", "show", "vol1"],
    ["show", "--json", "vol1"],
    ["show", "vol1", "--show-secrets", "--json"],
    ["show", "--show-secrets", "vol1"],
    ["--json", "show", "vol1", "--json"],
    ["show", "{ID}", "--json"],  # an id in upper case: canonical before the lookup
    ["show", "{id}"],
    ["--db", "{db}", "show", "vol2", "--json"],
    ["--db={db}", "--json", "show", "vol2"],
    ["--config", "{good}", "show", "vol1", "--json"],
    ["--config={good}", "--db", "{db}", "show", "vol1"],
    ["--config", "{bad}", "show", "vol1", "--json"],  # exit 2: not valid TOML
    ["--config", "{missing}", "show", "vol1"],  # exit 2: a named config must exist
    ["show", "nosuch", "--json"],  # exit 3
    ["show", "bad name!"],  # exit 2: neither a UUID nor a name
    ["show", "vol1.", "--json"],
    ["--db", "{missing}", "show", "vol1"],  # a missing inventory reads as empty: exit 3
    ["--db", "{dir}", "show", "vol1", "--json"],  # exit 7
    ["--db", "{junk}", "show", "vol1"],  # exit 7: not a database
    ["--db=", "show", "vol1"],
    ["show", "show"],
    ["show", "vol1", "--json", "--show-secrets", "--json"],
]

CLICK = [
    ["show"],
    ["show", "vol1", "vol2"],
    ["show", "--help"],
    ["show", "vol1", "-h"],
    ["--help"],
    ["--version"],
    ["-v", "show", "vol1", "--json"],
    ["--verbose", "show", "vol1"],
    ["show", "--", "vol1"],
    ["show", "-x"],
    ["show", "-"],
    ["show", "vol1", "--jso"],
    ["show", "vol1", "--json=1"],
    ["show", "vol1", "--db", "{db}"],
    ["--db", "{db}", "--db", "{db}", "show", "vol1"],
    ["--db", "-x", "show", "vol1"],
    ["--db"],
    ["--json"],
    ["--json", "--config"],
    ["--unknown", "show", "vol1"],
    ["sho", "vol1"],
    ["list", "--json"],
    [],
]


@pytest.mark.parametrize("argv", FAST, ids=lambda a: " ".join(a) or "-")
def test_show_without_click_answers_as_click_does(world, argv):
    argv = fill(world, argv)
    fast = run(world, "main", argv)
    slow = run(world, "click", argv)
    assert fast[:3] == slow[:3]
    assert not fast[3], "the root group ran"
    assert slow[3]


@pytest.mark.parametrize("argv", CLICK, ids=lambda a: " ".join(a) or "-")
def test_every_other_command_line_goes_to_click(world, argv):
    argv = fill(world, argv)
    fast = run(world, "main", argv)
    assert fast[:3] == run(world, "click", argv)[:3]
    assert fast[3], "the root group did not run"


@pytest.mark.parametrize("env", [{"VOLCTL_DB": ""}, {"VOLCTL_CONFIG": ""}, {"VOLCTL_CONFIG": "{good}"},
                                 {"VOLCTL_CONFIG": "{bad}"}, {"VOLCTL_DB": "{junk}"}, {"VOLCTL_DB": "{dir}"}],
                         ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_the_environment_is_read_as_click_reads_it(world, env):
    env = {k: v.format(**world) for k, v in env.items()}
    if env.get("VOLCTL_DB") == "":
        argv = ["--db", world["db"], "show", "vol1", "--json"]  # the default inventory is the machine's
    else:
        argv = ["show", "vol1", "--json"]
    fast = run(world, "main", argv, env)
    assert fast[:3] == run(world, "click", argv, env)[:3]
    assert not fast[3]


def test_text_that_is_not_utf8_is_refused_alike(world):
    argv = ["show", b"vol\xff", "--json"]
    fast = run(world, "main", argv)
    assert fast[:3] == run(world, "click", argv)[:3]
    assert fast[0] == 2 and not fast[3]
    env = {"VOLCTL_CONFIG": os.fsdecode(b"/tmp/\xff.toml")}
    fast = run(world, "main", ["show", "vol1"], env)
    assert fast[:3] == run(world, "click", ["show", "vol1"], env)[:3]
    assert fast[0] == 2


@pytest.mark.parametrize("argv", [["show", "vol1", "--json"], ["show", "vol1"], ["list"], ["list", "--json"]])
@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
def test_a_closed_stdout_ends_alike(world, argv, unbuffered):
    """`volctl show v1 --json | true`: the reader is gone before the first write (click: exit 1,
    quiet). Buffered too, as stdout into a pipe is in an operator's shell (PYTHONUNBUFFERED unset):
    what the command printed is written out before the process ends, not by the interpreter's
    own flush at exit, which made it exit 120 with a BrokenPipeError on stderr."""
    results = []
    for mode in ("main", "click"):
        read, write = os.pipe()
        os.close(read)
        try:
            results.append(run(world, mode, argv, {"PYTHONUNBUFFERED": unbuffered}, stdout=write))
        finally:
            os.close(write)
    assert results[0][:3] == results[1][:3]
    assert results[0][:3] == (1, b"", b"")


@pytest.mark.parametrize("argv", [["show", "vol1", "--json"], ["list", "--json"]])
def test_output_that_cannot_be_written_is_one_line_and_exit_7_alike(world, argv):
    """stdout on a full disk (/dev/full), block-buffered: the write fails at the flush, which
    volctl does itself, so one line says so and the exit is 7, not the interpreter's 120."""
    results = []
    for mode in ("main", "click"):
        with open("/dev/full", "wb") as full:
            results.append(run(world, mode, argv, {"PYTHONUNBUFFERED": ""}, stdout=full))
    assert results[0][:3] == results[1][:3]
    assert results[0][:3] == (7, b"", b"Error: cannot write the output: No space left on device\n")


def test_secrets_stay_masked_without_click(world):
    code, out, err, used_group = run(world, "main", ["show", "vol1", "--json"])
    shown = json.loads(out)
    assert code == 0 and not used_group
    assert shown["provider_auth"].startswith("CHAP ") and shown["provider_auth"].endswith(" ***")
    code, out, _, _ = run(world, "main", ["show", "vol1", "--json", "--show-secrets"])
    assert "***" not in json.loads(out)["provider_auth"]
