"""Shell completion from the inventory: what an operator pressing TAB is offered, and that a TAB
never changes, creates or complains about the inventory.

In-process tests use click's own completion machinery (what `_VOLCTL_COMPLETE=bash_complete`
runs); the rest drive the installed `volctl` as the shell does, through the environment."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

from conftest import INSTANCE_1, INSTANCE_2

from volctl.cli import cli

VOLCTL = Path(sys.executable).with_name("volctl")
README = Path(__file__).resolve().parent.parent / "README.md"
INSTANCE_3 = "3e0c55a2-8c1f-4b8e-9a63-7d2f7c9a1b44"
INSTANCE_GONE = "9a7b3c1d-2e4f-4a6b-8c0d-1e2f3a4b5c6d"


@pytest.fixture
def inv(service, db_path):
    """db1, db2 and web available; an unnamed volume; `shared` (multiattach) attached to two instances
    after a third one detached; `solo` attached once; `gone` deleted (its history remains)."""
    names = ("db1", "db2", "web", "shared", "solo", "gone", "unnamed")
    ids = {name: f"{c}{c}0c55a2-8c1f-4b8e-9a63-7d2f7c9a1b4{c}" for c, name in zip("89abcef", names)}
    ids["db2"] = "d00c55a2-8c1f-4b8e-9a63-7d2f7c9a1b49"  # an id that starts like two of the names
    for name, volume_id in ids.items():
        service.create(size=2 if name == "unnamed" else 1, name=None if name == "unnamed" else name,
                       multiattach=name == "shared", volume_id=volume_id)
    service.reserve("shared")
    gone_attachment = service.attach("shared", instance=INSTANCE_GONE).data["attachment_id"]
    service.detach("shared", attachment_id=gone_attachment)
    attachments = {}
    for instance in (INSTANCE_1, INSTANCE_2):
        service.reserve("shared")
        attachments[instance] = service.attach("shared", instance=instance).data["attachment_id"]
    service.reserve("solo")
    attachments["solo"] = service.attach("solo", instance=INSTANCE_3).data["attachment_id"]
    service.delete("gone")
    return {"db": db_path, "ids": ids, "attachments": attachments, "detached": gone_attachment}


def offered(*words: str, incomplete: str = "") -> list[str]:
    """What `volctl WORDS... INCOMPLETE<TAB>` offers, by click's completion (VOLCTL_DB from conftest)."""
    complete = BashComplete(cli, {}, "volctl", "_VOLCTL_COMPLETE")
    return [item.value for item in complete.get_completions(list(words), incomplete)]


# -- what is offered ----------------------------------------------------------------------------------

def test_vol_offers_the_names_in_order_and_an_unnamed_volume_by_its_id(inv):
    assert offered("detach") == sorted(["db1", "db2", "web", "shared", "solo", inv["ids"]["unnamed"]])


def test_vol_is_filtered_by_the_typed_prefix(inv):
    assert offered("show", incomplete="d") == ["db1", "db2"]
    assert offered("show", incomplete="db2") == ["db2"]
    assert offered("show", incomplete="s") == ["shared", "solo"]
    assert offered("show", incomplete="D") == []  # as VOL is matched: exactly
    assert offered("show", incomplete="zz") == []


def test_vol_offers_ids_once_the_prefix_starts_no_name(inv):
    ids = inv["ids"]
    assert offered("show", incomplete="d") == ["db1", "db2"]  # not buried under the UUIDs starting with d
    assert offered("show", incomplete="d0") == [ids["db2"]]
    assert offered("show", incomplete=ids["web"][:6]) == [ids["web"]]
    assert offered("show", incomplete=ids["web"]) == [ids["web"]]
    assert ids["db1"] not in offered("show")  # an empty prefix: names only, not a wall of UUIDs


def test_every_command_taking_vol_completes_it(inv):
    taking_vol = sorted(name for name, command in cli.commands.items() if any(p.name == "volume" for p in command.params))
    assert len(taking_vol) >= 13, taking_vol
    for name in taking_vol:
        assert offered(name, incomplete="db") == ["db1", "db2"], name
    assert offered(incomplete="hi") == ["history"]  # commands themselves: click's own


def test_history_also_offers_deleted_volumes(inv):
    assert offered("history", incomplete="g") == ["gone"]
    assert offered("history", incomplete=inv["ids"]["gone"][:8]) == [inv["ids"]["gone"]]
    assert offered("show", incomplete="g") == []
    assert offered("delete", incomplete="g") == []


def test_attachment_offers_the_live_attachments_of_the_typed_volume(inv):
    a = inv["attachments"]
    assert offered("detach", "shared", "--attachment") == [a[INSTANCE_1], a[INSTANCE_2]]
    assert offered("detach", inv["ids"]["shared"], "--attachment") == [a[INSTANCE_1], a[INSTANCE_2]]  # by id
    assert offered("detach", "solo", "--attachment") == [a["solo"]]
    assert offered("detach", "shared", "--attachment", incomplete=a[INSTANCE_2][:6]) == [a[INSTANCE_2]]
    assert offered("detach", "db1", "--attachment") == []
    assert offered("detach", "nosuch", "--attachment") == []
    assert inv["detached"] not in offered("detach", "--attachment")


def test_attachment_before_the_volume_offers_every_live_attachment(inv):
    a = inv["attachments"]
    assert sorted(offered("detach", "--attachment")) == sorted([a[INSTANCE_1], a[INSTANCE_2], a["solo"]])


def test_instance_offers_the_instances_attached_to_the_typed_volume(inv):
    assert offered("detach", "shared", "--instance") == [INSTANCE_1, INSTANCE_2]
    assert offered("detach", "shared", "--instance", incomplete=INSTANCE_2[:4]) == [INSTANCE_2]
    assert offered("detach", "solo", "--instance") == [INSTANCE_3]
    assert INSTANCE_GONE not in offered("detach", "--instance")
    assert sorted(offered("detach", "--instance")) == sorted([INSTANCE_1, INSTANCE_2, INSTANCE_3])


def test_attach_instance_is_a_new_instance_and_is_not_completed(inv):
    assert offered("attach", "shared", "--instance") == []


def test_db_given_on_the_command_line_is_the_one_read(inv, tmp_path, make_service):
    other = tmp_path / "other" / "volctl.db"
    make_service(db_path=other).create(size=1, name="elsewhere")
    assert offered("--db", str(other), "show") == ["elsewhere"]
    assert offered(f"--db={other}", "show", incomplete="e") == ["elsewhere"]
    assert offered("--db", str(tmp_path / "none.db"), "show") == []


def test_db_with_a_tilde_is_expanded_as_the_shell_would_have(inv, monkeypatch):
    home = inv["db"].parent
    monkeypatch.setenv("HOME", str(home))
    assert offered("--db", "~/volctl.db", "show", incomplete="w") == ["web"]


# -- as the shell runs it -------------------------------------------------------------------------------

def shell(words: list[str], *, env: dict | None = None, style: str = "bash") -> subprocess.CompletedProcess:
    """What bash's (or zsh's) completion function runs at a TAB after WORDS (the last one incomplete)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("VOLCTL_")}
    full.update(COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1), _VOLCTL_COMPLETE=f"{style}_complete",
                **(env or {}))
    return subprocess.run([str(VOLCTL)], env=full, capture_output=True, text=True, timeout=60)


def plain(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0 and proc.stderr == "", (proc.returncode, proc.stderr)
    return [line.removeprefix("plain,") for line in proc.stdout.splitlines() if line]  # click ends with a newline


def fingerprint(path: Path) -> dict:
    """The inventory's bytes and times, and those of its WAL if there is one."""
    found = {}
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            st = file.stat()
            found[file.name] = (st.st_mtime_ns, st.st_size, hashlib.sha256(file.read_bytes()).hexdigest())
    return found


def test_the_shell_protocol_through_volctl_db(inv):
    db = inv["db"]
    before = fingerprint(db)
    env = {"VOLCTL_DB": str(db)}
    assert plain(shell(["volctl", "detach", "d"], env=env)) == ["db1", "db2"]
    assert plain(shell(["volctl", "detach", "solo", "--instance", ""], env=env)) == [INSTANCE_3]
    assert plain(shell(["volctl", "--db", str(db), "history", "go"])) == ["gone"]
    assert fingerprint(db) == before


def test_zsh_gets_the_status_and_size_beside_each_name(inv):
    proc = shell(["volctl", "show", "db"], env={"VOLCTL_DB": str(inv["db"])}, style="zsh")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.splitlines() == ["plain", "db1", "available, 1 GiB", "plain", "db2", "available, 1 GiB"]


def test_a_write_lock_held_elsewhere_does_not_hold_up_a_tab(inv):
    """Completion takes no lock that waits for a writer: it answers while another process writes."""
    db = inv["db"]
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE volumes SET status = 'maintenance' WHERE name = 'web'")
        started = time.monotonic()
        assert plain(shell(["volctl", "--db", str(db), "show", "w"])) == ["web"]
        assert time.monotonic() - started < 30  # volctl's own busy timeout, had it asked for the write lock
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("where", ["--db", "VOLCTL_DB"])
@pytest.mark.parametrize("directory", ["missing", "there"])
def test_a_missing_inventory_offers_nothing_and_is_not_created(tmp_path, where, directory):
    db = tmp_path / "state" / "volctl.db"
    if directory == "there":
        db.parent.mkdir()
    words, env = (["volctl", "--db", str(db)], {}) if where == "--db" else (["volctl"], {"VOLCTL_DB": str(db)})
    for tail in (["show", ""], ["detach", "--attachment", ""], ["detach", "v1", "--instance", ""]):
        assert plain(shell([*words, *tail], env=env)) == []
    assert not db.exists()
    assert list(db.parent.iterdir()) == [] if directory == "there" else not db.parent.exists()


@pytest.mark.parametrize("content", [b"not an inventory at all\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
                         ids=["text", "damaged-header"])
def test_a_corrupt_inventory_offers_nothing_silently_and_stays_as_it_was(tmp_path, content):
    db = tmp_path / "volctl.db"
    db.write_bytes(content)
    before = fingerprint(db)
    for tail in (["show", ""], ["history", "x"], ["detach", "v1", "--attachment", ""], ["detach", "--instance", ""]):
        assert plain(shell(["volctl", "--db", str(db), *tail])) == []
    assert fingerprint(db) == before


def test_an_empty_or_foreign_sqlite_file_is_not_migrated(tmp_path):
    """A 0-byte file is an empty SQLite database: a normal command would create volctl's tables in it."""
    empty = tmp_path / "empty.db"
    empty.touch()
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE volumes (x)")
    conn.commit()
    conn.close()
    before = fingerprint(foreign)
    for db in (empty, foreign):
        assert plain(shell(["volctl", "--db", str(db), "show", ""])) == []
        assert plain(shell(["volctl", "--db", str(db), "detach", "--attachment", ""])) == []
    assert empty.stat().st_size == 0
    assert fingerprint(foreign) == before


def test_a_directory_or_unreadable_path_offers_nothing(tmp_path):
    assert plain(shell(["volctl", "--db", str(tmp_path), "show", ""])) == []
    assert plain(shell(["volctl", "--db", "/proc/self/mem/x", "show", ""])) == []


_DRIVER = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("MODULES=" + json.dumps(
    sorted(m for m in ("rich", "sh", "sqlite_utils") if m in sys.modules)) + "\\n"))
from volctl.cli import main
sys.argv = ["volctl"]
main()
"""


def test_a_tab_imports_none_of_rich_sh_or_sqlite_utils(inv):
    env = {**os.environ, "VOLCTL_DB": str(inv["db"]), "COMP_WORDS": "volctl detach shared --attachment ",
           "COMP_CWORD": "4", "_VOLCTL_COMPLETE": "bash_complete"}
    proc = subprocess.run([sys.executable, "-c", _DRIVER], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert sorted(proc.stdout.splitlines()) == sorted(f"plain,{inv['attachments'][i]}" for i in (INSTANCE_1, INSTANCE_2))
    assert proc.stderr.splitlines() == ['MODULES=[]']


def test_the_readme_bash_line_installs_a_working_completion(inv):
    """The line README.md tells an operator to put in ~/.bashrc, run by bash, then one TAB as bash makes it."""
    line = re.search(r"""echo '(eval "\$\(_VOLCTL_COMPLETE=bash_source volctl\)")' >> ~/\.bashrc""", README.read_text())
    assert line, "README.md: the bash line of 'Shell completion'"
    script = f"""{line.group(1)}
complete -p volctl
COMP_WORDS=(volctl detach s); COMP_CWORD=2
_volctl_completion volctl
printf 'offered %s\\n' "${{COMPREPLY[@]}}"
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLCTL_")}
    env.update(PATH=f"{VOLCTL.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}", VOLCTL_DB=str(inv["db"]))
    proc = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == ["complete -o nosort -F _volctl_completion volctl", "offered shared", "offered solo"]
