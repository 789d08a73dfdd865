"""Lazy imports are a measured start-up cost (BENCHMARKS.md): each volctl process a script runs
pays for every module it imports, 3-4 s each for sqlite-utils and rich under the VM tier's QEMU.
These run the real CLI in a fresh interpreter and look at what it loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("rich", "sh", "sqlite_utils")

# What issue 20 took off a read's start-up: click (volctl/fastpath.py), dataclasses and the
# inspect it brings (volctl/record.py), and the modules of the commands that do not run.
STARTUP = ("click", "dataclasses", "inspect", "volctl.group", "volctl.commands.show", "volctl.commands.list_cmd",
           "volctl.commands.create")

_DRIVER = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("MODULES=" + json.dumps(
    sorted(m for m in %r if m in sys.modules)) + "\\n"))
from volctl.cli import main
sys.argv = ["volctl"] + sys.argv[1:]
main()
"""


def loaded_by(db_path, *args: str, watched: tuple[str, ...] = HEAVY) -> tuple[int, str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER % (watched,), "--db", str(db_path), *args],
        capture_output=True, text=True, timeout=120,
    )
    line = next(line for line in proc.stderr.splitlines() if line.startswith("MODULES="))
    return proc.returncode, proc.stdout, json.loads(line.removeprefix("MODULES="))


@pytest.fixture
def one_volume(service, db_path):
    service.create(size=1, name="vol1")
    return db_path


def test_a_json_read_imports_none_of_rich_sh_or_sqlite_utils(one_volume):
    code, out, modules = loaded_by(one_volume, "show", "vol1", "--json")
    assert code == 0 and json.loads(out)["name"] == "vol1"
    assert modules == []


def test_a_json_list_imports_none_of_them(one_volume):
    code, out, modules = loaded_by(one_volume, "list", "--json")
    assert code == 0 and [v["name"] for v in json.loads(out)] == ["vol1"]
    assert modules == []


def test_a_write_that_runs_no_program_imports_none_of_them(one_volume):
    code, out, modules = loaded_by(one_volume, "reserve", "vol1", "--json")
    assert code == 0 and json.loads(out)["status"] == "attaching"
    assert modules == []


def test_a_table_for_a_person_is_where_rich_comes_in(one_volume):
    code, out, modules = loaded_by(one_volume, "show", "vol1")
    assert code == 0 and "vol1" in out
    assert modules == ["rich"]


def test_show_json_starts_without_click_or_dataclasses(one_volume):
    code, out, modules = loaded_by(one_volume, "show", "vol1", "--json", watched=STARTUP)
    assert code == 0 and json.loads(out)["name"] == "vol1"
    assert modules == []


def test_a_command_imports_its_own_module_only(one_volume):
    """The root group imports a subcommand's module when that command runs (volctl/group.py)."""
    code, out, modules = loaded_by(one_volume, "list", "--json", watched=STARTUP)
    assert code == 0
    assert modules == ["click", "inspect", "volctl.commands.list_cmd", "volctl.group"]
    code, out, modules = loaded_by(one_volume, "--version", watched=STARTUP)
    assert code == 0 and out == "volctl, version 0.1.0\n"
    assert modules == ["click", "inspect", "volctl.group"]


def test_the_command_table_names_each_command_as_click_does():
    """volctl/commands/__init__.py maps each name to its module; --help and completion list the names."""
    from volctl.cli import cli
    from volctl.commands import COMMANDS

    assert sorted(COMMANDS) == cli.list_commands(None)
    assert {name: command.name for name, command in cli.commands.items()} == {name: name for name in COMMANDS}
