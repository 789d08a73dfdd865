"""Fake LVM and LIO programs for tests that run real `volctl` processes.

`install(directory)` writes tiny `#!/bin/sh` programs named lvcreate, lvs, vgs, lvextend, lvremove,
udevadm, dd and cinder-rtstool that exec this file with the tool's name. Each call loads the
FakeHost of tests/fakehost.py from a JSON state file (FAKEHOST_STATE), runs the handler for its
exact command line under an flock on `<state>.lock`, stores the state back and answers as the
real tool would, so any number of volctl processes share one fake host. configfs and LIO's saved
config are mirrored to the paths recorded in the state (volctl reads them through VOLCTL_CONFIGFS
and VOLCTL_LIO_SAVE_FILE).

Environment hooks of the fake programs:

    FAKEHOST_STATE        the JSON state file (required)
    FAKEHOST_LOG          append one JSON line per call start and end: seq (a total order taken under
                          the state lock), ev ("start"/"end"), argv (unmasked), pid, ppid (the volctl
                          process), ns (CLOCK_MONOTONIC), exit; a helper step of a volctl process
                          (tests/helpersteps.py) is logged in the same order by append_log()
    FAKEHOST_LOCK         a cinder-rtstool call's start line gets "locked": whether the volctl that
                          started it held this lock file (the host-wide LIO lock) at that moment
    FAKEHOST_DELAY        seconds to sleep between a call's start and its effect, outside the state
                          lock, so calls from different processes can overlap unless volctl prevents it;
    FAKEHOST_DELAY_<PROG>  the same for one program (FAKEHOST_DELAY_LVCREATE), instead of FAKEHOST_DELAY
    FAKEHOST_FAIL         "<argv prefix>[;<argv prefix>...]": matching calls exit FAKEHOST_FAIL_CODE
                          (default 5) with "simulated failure: <the whole argv>" on stderr, secrets
                          included, as a careless tool would
    FAKEHOST_HANG         "<argv prefix>[@N]": the N-th matching call (default 1, counted in the state)
                          writes FAKEHOST_HANG_MARKER and sleeps, so a test can SIGKILL volctl there;
                          FAKEHOST_HANG_WHEN is "before" (default: the call has no effect) or "after"
                          (the effect is stored, the answer never comes)

`python tests/fakebin.py --volctl BARRIER READY_DIR -- ARGS...` runs volctl's CLI in this process
after importing everything a command needs, touching READY_DIR/<pid> and waiting for a shared
flock on BARRIER: a test holding the exclusive lock releases all waiting processes at once.
With FAKEHOST_MEET_DIR and FAKEHOST_MEET_COUNT set, it also holds the process's first inventory
write transaction (before its BEGIN IMMEDIATE) until COUNT processes have reached theirs, or
MEET_TIMEOUT has passed: every racer has read what it reads before writing before any of them
writes, so a check-then-act loses every race instead of one in several.

As a module (imported by tests) it provides FakeBin, one shared fake host with its own inventory,
config and paths, and the `fakebin` pytest fixture. A world of tests/worlds.py (`proc_world`) sets a
FakeBin's launcher, the environment its processes get (FAKEHOST_HELPER ...) and what its quick
in-process services need, so the same host serves the fake and rtslib helpers too
(tests/worldfakes.py); the barrier runner installs that world as well.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TOOLS = ("lvcreate", "lvs", "vgs", "lvextend", "lvremove", "lvchange", "lvconvert", "lvrename", "udevadm", "dd",
         "cinder-rtstool")
# Programs that change a host's storage and that the fake does not model: a stub that refuses, so a
# volctl that starts one here fails the test instead of reaching this machine's real LVM or LIO.
NOT_MODELLED = ("lvm", "pvcreate", "vgcreate", "vgremove", "vgchange", "lvresize", "lvreduce",
                "dmsetup", "wipefs", "blkdiscard", "targetcli", "targetctl", "iscsiadm")
HANG_SECONDS = 120.0
# Long enough for 16 processes on 2 busy cores to reach their write; only a process that never
# writes (a test bug, caught by together()) makes the others wait this long.
MEET_TIMEOUT = 30.0


# -- the shared state ---------------------------------------------------------------------------

@contextmanager
def locked(state: Path) -> Iterator[None]:
    fd = os.open(f"{state}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load(state: Path) -> dict:
    return json.loads(Path(state).read_text())


def store(state: Path, document: dict) -> None:
    tmp = Path(f"{state}.tmp.{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True))
    os.replace(tmp, state)


def _prefix_matches(prefix: str, argv: list[str]) -> bool:
    words = prefix.split()
    return bool(words) and argv[: len(words)] == words


def _log(document: dict, event: str, argv: list[str], **extra: object) -> None:
    """Under the state lock: the sequence number gives all processes' calls one total order."""
    document["_seq"] = document.get("_seq", 0) + 1
    path = os.environ.get("FAKEHOST_LOG")
    if path:
        entry = {"seq": document["_seq"], "ev": event, "argv": argv, "pid": os.getpid(), "ppid": os.getppid(),
                 "ns": time.monotonic_ns(), **extra}
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def append_log(state: Path, log: Path, entry: dict) -> None:
    """An entry made elsewhere than in a fake program (a helper step in a volctl process,
    tests/helpersteps.py), in the same total order: its seq is taken under the state lock."""
    with locked(state):
        document = load(state)
        document["_seq"] = document.get("_seq", 0) + 1
        with open(log, "a") as f:
            f.write(json.dumps({"seq": document["_seq"], **entry}) + "\n")
        store(state, document)


def _lock_held_by_volctl() -> dict:
    """With FAKEHOST_LOCK: whether the volctl that started this program holds that lock."""
    lock = os.environ.get("FAKEHOST_LOCK")
    if not lock:
        return {}
    from helpersteps import held_by

    return {"locked": held_by(lock, os.getppid())}


def _hang(argv: list[str]) -> None:
    marker = os.environ.get("FAKEHOST_HANG_MARKER")
    if marker:
        tmp = f"{marker}.tmp"
        Path(tmp).write_text(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": argv}))
        os.replace(tmp, marker)
    time.sleep(HANG_SECONDS)  # the test kills us long before
    sys.exit(99)


def tool_main(tool: str, args: list[str]) -> int:
    sys.path[:0] = [str(ROOT), str(TESTS)]
    from fakehost import FakeHost

    argv = [tool, *args]
    state = Path(os.environ["FAKEHOST_STATE"])
    hang_spec = os.environ.get("FAKEHOST_HANG", "")
    hang_when = os.environ.get("FAKEHOST_HANG_WHEN", "before")
    hang_now = False
    with locked(state):
        document = load(state)
        if hang_spec:
            prefix, _, nth = hang_spec.partition("@")
            if _prefix_matches(prefix, argv):
                counts = document.setdefault("_hang_counts", {})
                counts[hang_spec] = counts.get(hang_spec, 0) + 1
                hang_now = counts[hang_spec] == int(nth or 1)
        _log(document, "start", argv, **(_lock_held_by_volctl() if tool == "cinder-rtstool" else {}))
        store(state, document)
    if hang_now and hang_when == "before":
        _hang(argv)
    delay = float(os.environ.get(f"FAKEHOST_DELAY_{argv[0].upper().replace('-', '_')}") or os.environ.get("FAKEHOST_DELAY") or 0)
    if delay:
        time.sleep(delay)
    with locked(state):
        document = load(state)
        failing = [p for p in os.environ.get("FAKEHOST_FAIL", "").split(";") if _prefix_matches(p, argv)]
        if failing:
            code, out, err = int(os.environ.get("FAKEHOST_FAIL_CODE") or 5), "", f"simulated failure: {' '.join(argv)}\n"
        else:
            host = FakeHost.from_state(document)
            code, out, err = host.answer(argv)
            document.update(host.to_state())
        _log(document, "end", argv, exit=code)
        store(state, document)
    if hang_now:
        _hang(argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def volctl_main(barrier: str, ready_dir: str, args: list[str]) -> None:
    # Everything a command would import, paid for before the start line.
    import sh  # noqa: F401
    import sqlite_utils  # noqa: F401
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401

    import volctl.cli
    import volctl.doctor  # noqa: F401
    import volctl.service  # noqa: F401

    if os.environ.get("FAKEHOST_HELPER", "lioadm") != "lioadm":
        from worldfakes import install

        install()
    if os.environ.get("FAKEHOST_MEET_DIR"):
        _meet_before_first_write(Path(os.environ["FAKEHOST_MEET_DIR"]), int(os.environ["FAKEHOST_MEET_COUNT"]))
    fd = os.open(barrier, os.O_RDONLY | os.O_CLOEXEC)
    Path(ready_dir, str(os.getpid())).touch()
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.close(fd)
    sys.argv = ["volctl", *args]
    volctl.cli.main()


def _meet_before_first_write(directory: Path, count: int) -> None:
    """Wrap Inventory.write in this process only (volctl has no test hook): the first call marks
    directory/arrived/<pid> and waits until `count` processes have, then opens the transaction.
    A wait that times out marks directory/late/<pid>, so the test can tell the race was not held."""
    from volctl.inventory import Inventory

    original = Inventory.write
    first = [True]

    def write(self):
        if first:
            first.clear()
            arrived = directory / "arrived"
            (arrived / str(os.getpid())).touch()
            deadline = time.monotonic() + MEET_TIMEOUT
            while len(os.listdir(arrived)) < count:
                if time.monotonic() > deadline:
                    (directory / "late" / str(os.getpid())).touch()
                    break
                time.sleep(0.002)
        return original(self)

    Inventory.write = write


if __name__ == "__main__":
    if sys.argv[1] == "--volctl":
        volctl_main(sys.argv[2], sys.argv[3], sys.argv[5:])
    sys.exit(tool_main(sys.argv[1], sys.argv[2:]))

# The programs import this module (rather than run it) so its bytecode can be cached.
_BOOT = f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]; import fakebin; "
# volctl itself is imported as installed (PYTHONPATH, then the venv), like the console script does.
_BOOT_VOLCTL = f"import sys; sys.path.append({str(TESTS)!r}); import fakebin; "


# -- for the tests ------------------------------------------------------------------------------

import signal  # noqa: E402
import subprocess  # noqa: E402
from dataclasses import dataclass  # noqa: E402


VOLCTL = Path(sys.executable).with_name("volctl")
LOCKED = "database is locked"


def install(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        program = directory / tool
        code = _BOOT + "sys.exit(fakebin.tool_main(sys.argv[1], sys.argv[2:]))"
        program.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -c "{code}" {tool} "$@"\n')
        program.chmod(0o755)
    for tool in NOT_MODELLED:
        program = directory / tool
        program.write_text(f'#!/bin/sh\necho "fakebin: {tool} is not modelled; volctl must not start it here" >&2\nexit 127\n')
        program.chmod(0o755)
    return directory


@dataclass
class Proc:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    pid: int = 0

    def json(self):
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"volctl {' '.join(self.args)} -> {self.exit_code}\nstdout: {self.stdout}\nstderr: {self.stderr}"


class FakeBin:
    """One fake host shared by real volctl processes, with its own inventory, config and paths.
    Every finished process is kept in `procs`, so a test can scan all output afterwards."""

    def __init__(self, root: Path, *, vg: str = "cinder-volumes", vg_size_gib: int = 1000, settings: dict | None = None,
                 pycache: Path | None = None):
        from fakehost import FakeHost

        self.root = root
        self.pycache = pycache
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin = install(root / "fakebin")
        self.state = root / "host.json"
        self.log = root / "calls.jsonl"
        self.db = root / "state" / "volctl.db"
        self.config = root / "volctl.toml"
        self.configfs = root / "configfs"
        self.configfs.mkdir(exist_ok=True)
        self.save_file = root / "target" / "saveconfig.json"
        self.settings_values = {"volume_group": vg, "volume_clear": "zero", "lvm_udev": "on", **(settings or {})}
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in self.settings_values.items()))
        self.procs: list[Proc] = []
        # Set by a world of tests/worlds.py: the command that starts volctl (default: the console
        # script), what every process's environment gets, and what a quick in-process service needs.
        self.launcher: list[str] | None = None
        self.world_env: dict[str, str] = {}
        self.prepare = None
        host = FakeHost(vg=vg, vg_size_gib=vg_size_gib, configfs=self.configfs, save_file=self.save_file)
        store(self.state, host.to_state())

    def set_settings(self, **values) -> None:
        self.settings_values.update(values)
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in self.settings_values.items()))

    # -- the host ---------------------------------------------------------------------------

    def host(self):
        from fakehost import FakeHost

        with locked(self.state):
            return FakeHost.from_state(load(self.state))

    def set_host(self, host) -> None:
        with locked(self.state):
            document = load(self.state)
            document.update(host.to_state())
            store(self.state, document)

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    @contextmanager
    def service(self):
        """An in-process VolumeService on the shared host and inventory (quick setup steps)."""
        from volctl.config import Settings
        from volctl.service import VolumeService

        host = self.host()
        try:
            service = VolumeService(self.db, Settings(**self.settings_values), runner=host, configfs=self.configfs,
                                    save_file=self.save_file, host_root=self.root / "host")
            if self.prepare is not None:
                self.prepare(service)
            yield service
        finally:
            self.set_host(host)

    # -- processes --------------------------------------------------------------------------

    def env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKEHOST_", "VOLCTL_", "HELPER_"))}
        if self.pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        env.update(
            PATH=f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            VOLCTL_DB=str(self.db), VOLCTL_CONFIG=str(self.config), VOLCTL_CONFIGFS=str(self.configfs),
            VOLCTL_LIO_SAVE_FILE=str(self.save_file), VOLCTL_HOST_ROOT=str(self.root / "host"), FAKEHOST_STATE=str(self.state), FAKEHOST_LOG=str(self.log),
            # never the machine's own nvmet tree or /etc/nvmet
            VOLCTL_NVMET_CONFIGFS=str(self.root / "host" / "nvmet"), VOLCTL_NVMET_SAVE_FILE=str(self.root / "host" / "nvmet.json"),
        )
        env.update(self.world_env)
        env.update(extra or {})
        return env

    def start(self, *args: str, env: dict | None = None, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        return subprocess.Popen([*(self.launcher or [str(VOLCTL)]), *args], env=self.env(env), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=self.root)

    def finish(self, args, popen: subprocess.Popen, input: str | None = None, timeout: float = 120) -> Proc:
        out, err = popen.communicate(input, timeout=timeout)
        proc = Proc(tuple(args), popen.returncode, out, err, popen.pid)
        self.procs.append(proc)
        return proc

    def run(self, *args: str, env: dict | None = None, input: str | None = None) -> Proc:
        popen = self.start(*args, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        return self.finish(args, popen, input)

    def ok(self, *args: str, env: dict | None = None, input: str | None = None) -> Proc:
        proc = self.run(*args, env=env, input=input)
        assert proc.exit_code == 0, str(proc)
        return proc

    def together(self, commands: list[list[str]], env: dict | None = None, timeout: float = 180,
                 meet_before_write: bool = False) -> list[Proc]:
        """Start one volctl process per command, wait until every one has imported what it needs and
        waits on the start line, then release them all at once. Results in the order given.

        meet_before_write: besides, no process opens its first write transaction before every one
        has reached its own (see volctl_main), so all have read the volume before anyone writes.
        Every command must then write; together() checks that each one arrived and none timed out."""
        round_dir = self.root / f"barrier-{time.monotonic_ns()}"
        ready = round_dir / "ready"
        ready.mkdir(parents=True)
        if meet_before_write:
            meet = round_dir / "meet"
            (meet / "arrived").mkdir(parents=True)
            (meet / "late").mkdir()
            env = {**(env or {}), "FAKEHOST_MEET_DIR": str(meet), "FAKEHOST_MEET_COUNT": str(len(commands))}
        barrier = round_dir / "barrier"
        barrier.touch()
        fd = os.open(barrier, os.O_RDWR | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        popens = []
        try:
            for args in commands:
                popens.append(subprocess.Popen(
                    [sys.executable, "-c", _BOOT_VOLCTL + "fakebin.volctl_main(sys.argv[1], sys.argv[2], sys.argv[4:])",
                     str(barrier), str(ready), "--", *args],
                    env=self.env(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True, start_new_session=True, cwd=self.root,
                ))
            deadline = time.monotonic() + timeout
            while len(list(ready.iterdir())) < len(commands):
                early = [p for p in popens if p.poll() is not None]
                assert not early, f"a volctl process ended before the start line: {early[0].communicate()}"
                assert time.monotonic() < deadline, "volctl processes did not reach the start line"
                time.sleep(0.01)
        except BaseException:
            for p in popens:
                _kill_group(p)
            raise
        finally:
            os.close(fd)  # the start: every waiting process gets its shared lock now
        procs = [self.finish(args, p, timeout=timeout) for args, p in zip(commands, popens)]
        if meet_before_write:
            arrived, late = (sorted(int(p) for p in os.listdir(meet / d)) for d in ("arrived", "late"))
            assert (arrived, late) == (sorted(p.pid for p in procs), []), \
                f"the meet before the first write did not hold every process: arrived {arrived}, timed out {late}"
        return procs

    def assert_never_locked(self) -> None:
        """No "database is locked" reached any process's output."""
        for proc in self.procs:
            assert LOCKED not in proc.stderr.lower() and LOCKED not in proc.stdout.lower(), str(proc)

    # -- the inventory, read directly --------------------------------------------------------

    def check_inventory(self) -> None:
        """A sound SQLite file whose rows are whole records with known statuses, no attachment or
        connection without its volume, and every volume's history readable."""
        import sqlite3

        from volctl.model import AttachStatus, Status

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = conn.execute("SELECT id, status, attach_status, name, lv_name, updated_at FROM volumes").fetchall()
            for _id, status, attach_status, name, lv_name, updated in rows:
                assert status in set(Status) and attach_status in set(AttachStatus), (name, status, attach_status)
                assert name and lv_name and updated
            for table in ("attachments", "connections"):
                lost = conn.execute(f"SELECT count(*) FROM {table} WHERE volume_id NOT IN (SELECT id FROM volumes)").fetchone()[0]
                assert lost == 0, f"{lost} {table} rows without their volume"
            ids = [r[0] for r in rows] + [r[0] for r in conn.execute("SELECT DISTINCT volume_id FROM events")]
        finally:
            conn.close()
        with self.service() as svc:
            for volume_id in ids:
                assert svc.history(volume_id)

    def transitions(self, ref: str) -> list:
        """The volume's transitions, checked to form one chain: each starts where the one before ended."""
        with self.service() as svc:
            found = [e for e in svc.history(ref) if e.kind == "transition"]
        for before, after in zip(found, found[1:]):
            assert after.from_status == before.to_status, f"history breaks between {before} and {after}"
        return found

    # -- crashes ----------------------------------------------------------------------------

    def killed_at(self, args: list[str], hang: str, when: str = "before", timeout: float = 60) -> dict:
        """Run volctl ARGS until the fake tool call `hang` ("<argv prefix>[@N]") is reached, then
        SIGKILL volctl and that call. Returns the marker (the hung call's argv and pid)."""
        marker = self.marker()
        return self.killed_with(args, {"FAKEHOST_HANG": hang, "FAKEHOST_HANG_WHEN": when,
                                       "FAKEHOST_HANG_MARKER": str(marker)}, marker, timeout)

    def marker(self) -> Path:
        return self.root / f"hang-{time.monotonic_ns()}.json"

    def killed_with(self, args: list[str], env: dict, marker: Path, timeout: float = 60) -> dict:
        """Run volctl ARGS with `env`, which makes something in it or below it hang (a fake
        program, FAKEHOST_HANG; a helper step, tests/helpersteps.py) after writing `marker`;
        then SIGKILL volctl's process group. Returns the marker's content."""
        hang = env.get("FAKEHOST_HANG") or env.get("HELPER_HANG")
        popen = self.start(*args, env=env)
        deadline = time.monotonic() + timeout
        try:
            while not marker.exists():
                if popen.poll() is not None:
                    proc = self.finish(args, popen)
                    raise AssertionError(f"volctl ended before reaching {hang!r}: {proc}")
                assert time.monotonic() < deadline, f"volctl did not reach {hang!r}"
                time.sleep(0.005)
        finally:
            _kill_group(popen)
        found = json.loads(marker.read_text())  # the hung fake program ran in volctl's process group: gone too
        out, err = popen.communicate()
        self.procs.append(Proc(tuple(args), popen.returncode, out, err))
        assert popen.returncode == -signal.SIGKILL
        return found


def _kill_group(popen: subprocess.Popen) -> None:
    if popen.poll() is None:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.wait()


if "pytest" in sys.modules:  # imported by a test, not by a fake program: offer the fixtures
    import pytest

    @pytest.fixture(scope="session")
    def fakebin_pycache(tmp_path_factory) -> Path:
        """One bytecode cache for all processes of the session (PYTHONDONTWRITEBYTECODE would make
        every volctl and fake program compile its modules again), outside the source tree."""
        return tmp_path_factory.mktemp("pycache")

    @pytest.fixture
    def fakebin(tmp_path, fakebin_pycache) -> FakeBin:
        return FakeBin(tmp_path / "host", pycache=fakebin_pycache)
