"""One world per target helper, for the behaviour suites (lifecycle, multiattach, failure matrix,
crash, races, secrets), as Cinder's tests/unit/targets/targets_fixture.py declares one set-up for
every target driver's tests. A suite asks the `world` fixture (in-process) or the `proc_world`
fixture (real volctl processes) of tests/conftest.py, which run it once per helper:

    fake    volctl/targets/fake.py, the package's protocol-neutral helper, given to the service
            through the target registry (tests/worldfakes.py wraps its steps for faults, hangs, log)
    lioadm  the cinder-rtstool helper, over tests/fakehost.py (in-process) or tests/fakebin.py
            (processes): the cinder-rtstool calls are its steps
    rtslib  the in-process rtslib helper, over tests/sharedrtslib.py: a fake rtslib_fb whose state
            is a configfs-like tree, so real processes share it

The helper classes themselves run; only what is below them is fake. LVM is tests/fakehost.py's
for every world. A world gives a suite:
- services (in-process) or processes whose targets are driven by its helper;
- a way to make a helper step fail or hang (tests/helpersteps.py names the steps);
- protocol-neutral views: what is live ({target: hosts}), what is persisted (the same, or None
  before anything was), the helper steps seen, the secrets that went below the helper.

Only this file and the helpers' own test files (tests/test_target_*.py) know cinder-rtstool's
command lines and rtslib's calls.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import ClassVar

from helpersteps import Fault, Hang, Steps
from helpersteps import env as steps_env
from worldfakes import fake_registry, shared_rtslib_module

from volctl import iscsi
from volctl.config import Settings
from volctl.locks import Locks
from volctl.service import VolumeService
from volctl.targets import saved as lio_saved
from volctl.targets.fake import PREFIX as FAKE_PREFIX

HELPERS = ("fake", "lioadm", "rtslib")
RTSTOOL = "cinder-rtstool"
# lioadm's steps are cinder-rtstool's subcommands
RTSTOOL_SUBCOMMAND = {"create_export": "create", "allow": "add-initiator", "disallow": "delete-initiator",
                      "remove_export": "delete", "persist": "save", "targets": "get-targets"}
STEP_OF_SUBCOMMAND = {sub: step for step, sub in RTSTOOL_SUBCOMMAND.items()}
LIO_PREFIX = iscsi.IscsiConfig().prefix


class Traits:
    """What differs between the helpers, as the suites may ask it."""

    name: ClassVar[str]
    # whether exists() (delete, unexport) is a step of the helper: a listing through the host
    # below it (lioadm: get-targets, fake: its directory); rtslib reads configfs, no step
    lists: ClassVar[bool]
    # lioadm checks with a listing that create made the target (Cinder's own check)
    lists_after_create: ClassVar[bool] = False
    # whether the helper's steps are programs, each filed in history as a command with its exit code
    commands: ClassVar[bool] = False
    # whether a step that fails can echo a secret into its message (a tool's stderr, a library's
    # error); the fake helper has nothing below it that could
    echoes: ClassVar[bool] = True

    @property
    def listing(self) -> list[str]:
        return ["targets"] if self.lists else []

    def flow_steps(self, flow: str) -> list[str]:
        """The helper steps a flow runs, in order (tests/test_world_steps.py checks them)."""
        made = ["create_export", *(["targets"] if self.lists_after_create else [])]
        return {
            "export": [*made, "persist"],
            "connect-fresh": [*made, "allow", "persist"],
            "connect-exported": ["allow", "persist"],
            "disconnect": ["disallow", "persist"],
            "detach": ["remove_export", "persist"],
            "unexport": [*self.listing, "remove_export", "persist"],
            "delete-exported": [*self.listing, "remove_export", "persist"],
            "delete-unexported": [*self.listing],
        }[flow]

    # -- names and formats ------------------------------------------------------------------------

    def target_for(self, lv_name: str) -> str:
        return LIO_PREFIX + lv_name

    def target_of(self, volume) -> str:
        return self.target_for(volume.lv_name)

    @staticmethod
    def target_in(info: dict) -> str:
        """The target a connect's connection info names."""
        return info["data"]["target_iqn"]


class FakeTraits(Traits):
    name = "fake"
    lists = True
    echoes = False

    def target_for(self, lv_name: str) -> str:
        """The fake names a target by the volume id (fake-<id>); the suites' LVs are volume-<id>."""
        return FAKE_PREFIX + lv_name.removeprefix("volume-")

    @staticmethod
    def target_in(info: dict) -> str:
        return info["data"]["target"]


class LioadmTraits(Traits):
    name = "lioadm"
    lists = True
    lists_after_create = True
    commands = True


class RtslibTraits(Traits):
    name = "rtslib"
    lists = False


TRAITS: dict[str, Traits] = {t.name: t() for t in (FakeTraits, LioadmTraits, RtslibTraits)}


# -- views of a host, shared by both kinds of world ---------------------------------------------------

def fake_live(root: Path) -> dict[str, set[str]]:
    live = root / "live"
    return {t.name: {h.name for h in (t / "hosts").iterdir()} if (t / "hosts").is_dir() else set()
            for t in sorted(live.iterdir())} if live.is_dir() else {}


def fake_persisted(root: Path) -> dict[str, set[str]] | None:
    path = root / "saved.json"
    if not path.exists():
        return None
    return {t: set((entry or {}).get("hosts", [])) for t, entry in json.loads(path.read_text()).items()}


def lio_persisted(save_file: Path) -> dict[str, set[str]] | None:
    document = lio_saved.read(save_file)
    return None if document is None else {t.iqn: set(t.initiators) for t in lio_saved.targets(document)}


def rtslib_live(configfs: Path) -> dict[str, set[str]]:
    live = {}
    for target in sorted(configfs.iterdir()) if configfs.is_dir() else ():
        if target.name.startswith(("iqn.", "eui.", "naa.")):
            acls = target / "tpgt_1" / "acls"
            live[target.name] = {a.name for a in acls.iterdir()} if acls.is_dir() else set()
    return live


def rtslib_residue(configfs: Path) -> list[str]:
    """Storage objects without their target: what a half-made export leaves."""
    core = configfs.parent / "core"
    return sorted(so.name for so in core.glob("iblock_*/*/") if not (configfs / so.name).is_dir())


def rtslib_secrets(configfs: Path) -> set[str]:
    return {p.read_text() for p in configfs.glob("*/tpgt_*/acls/*/auth/password")}


def rtstool_secrets(argvs) -> set[str]:
    """The passwords volctl handed to cinder-rtstool: create DEV IQN USER PASSWORD ..., add-initiator IQN USER PASSWORD INI."""
    found = set()
    for argv in argvs:
        if argv[:2] == [RTSTOOL, "create"]:
            found.add(argv[5])
        elif argv[:2] == [RTSTOOL, "add-initiator"]:
            found.add(argv[4])
    return found


# -- in-process worlds ---------------------------------------------------------------------------------

class World:
    """A helper's world for in-process tests: services made by `make_service` on the test's
    inventory, the FakeHost (`host`) for LVM, and the helper over its fake."""

    def __init__(self, traits: Traits, *, host, db_path: Path, settings: Settings, configfs: Path, save_file: Path,
                 host_root: Path, tmp_path: Path, monkeypatch):
        self.traits = traits
        self.name = traits.name
        self.host = host
        self.db_path, self.settings, self.configfs, self.save_file, self.host_root = db_path, settings, configfs, save_file, host_root
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.steps = Steps()

    def __getattr__(self, name):  # the traits' names and formats
        return getattr(self.traits, name)

    def make_service(self, **overrides) -> VolumeService:
        args = dict(db_path=self.db_path, settings=self.settings, runner=self.host,
                    locks=Locks(Path(f"{self.db_path}.locks"), wait=5), configfs=self.configfs,
                    save_file=self.save_file, host_root=self.host_root,
                    # never the machine's own nvmet tree or /etc/nvmet (conftest's make_service does the same)
                    nvmet_root=self.host_root / "nvmet", nvmet_save_file=self.host_root / "nvmet.json")
        args.update(overrides)
        return VolumeService(**args)

    def driver(self, service: VolumeService):
        return service.targets.for_new_export()

    def fail(self, step: str, *, nth: int = 1, always: bool = False, effect: bool = False, echo: bool = False,
             message: str = "", times: int | None = None) -> Fault:
        """Make the nth invocation of a helper step fail (and every later one, with always; the
        next `times` ones from the nth, with times)."""
        fault = Fault(step, nth, always, effect, echo, message)
        faults = [fault] if times is None else [dataclasses.replace(fault, nth=nth + i) for i in range(times)]
        for f in faults:
            self._fail(f)
        return fault

    def _fail(self, fault: Fault) -> None:
        self.steps.fail(fault)

    def clear_faults(self) -> None:
        self.steps.clear()

    def seen(self) -> list[str]:
        """The helper steps since the last forget()."""
        return list(self.steps.seen)

    def forget(self) -> None:
        """Forget the steps and LVM calls seen so far."""
        self.steps.seen.clear()
        self.host.calls.clear()

    def lvm_calls(self) -> list[list[str]]:
        """The FakeHost's calls that are not the helper's (LVM, udevadm, dd)."""
        return [c for c in self.host.calls if c[0] != RTSTOOL]

    def failure_filed(self, events, fault: Fault) -> bool:
        """Whether history files the failed step itself. Only a program's run is filed (as a
        command, with its exit code): a helper whose steps are not programs has nothing to file."""
        return not self.commands

    # views
    def live(self) -> dict[str, set[str]]:
        raise NotImplementedError

    def persisted(self) -> dict[str, set[str]] | None:
        raise NotImplementedError

    @property
    def persisted_to(self) -> str:
        return str(self.save_file)

    def residue(self) -> list[str]:
        return []

    def lose(self, target: str) -> None:
        """The target vanishes behind volctl's back."""
        raise NotImplementedError

    def teardown(self) -> None:
        pass


class FakeWorld(World):
    def __init__(self, traits, **kw):
        super().__init__(traits, **kw)
        self.root = self.tmp_path / "fake-target"

    def make_service(self, **overrides) -> VolumeService:
        service = super().make_service(**overrides)
        service.__dict__["targets"] = fake_registry(service.locks, self.root, self.steps)
        return service

    def live(self):
        return fake_live(self.root)

    def persisted(self):
        return fake_persisted(self.root)

    @property
    def persisted_to(self) -> str:
        return str(self.root / "saved.json")

    def lose(self, target: str) -> None:
        shutil.rmtree(self.root / "live" / target)

    def teardown(self) -> None:
        assert self.host.commands(RTSTOOL) == []  # the helper is the only way to the targets


class LioadmWorld(World):
    def _fail(self, fault: Fault) -> None:
        prefix = [RTSTOOL, RTSTOOL_SUBCOMMAND[fault.step]]
        seen = [0]

        def matches(argv) -> bool:
            if list(argv[:2]) != prefix:
                return False
            seen[0] += 1
            return fault.hits(seen[0])

        stderr = fault.text + "\n"
        self.host.fail(matches, exit_code=1, stderr=stderr, effect=fault.effect)

    def clear_faults(self) -> None:
        self.host.failures.clear()

    def seen(self) -> list[str]:
        return [STEP_OF_SUBCOMMAND[c[1]] for c in self.host.calls if c[0] == RTSTOOL]

    def failure_filed(self, events, fault: Fault) -> bool:
        """The failed cinder-rtstool call is in history, with exit code 1 and its stderr."""
        prefix = (RTSTOOL, RTSTOOL_SUBCOMMAND[fault.step])
        for e in events:
            e = e if isinstance(e, dict) else dataclasses.asdict(e)
            if (e["kind"] == "command" and tuple(e["argv"][:2]) == prefix and e["exit_code"] == 1
                    and fault.text in (e["detail"] or "")):
                return True
        return False

    def live(self):
        return {iqn: set(t.acls) for iqn, t in self.host.targets.items()}

    def persisted(self):
        return lio_persisted(self.save_file)

    def lose(self, target: str) -> None:
        del self.host.targets[target]
        self.host._mirror_configfs()


class RtslibWorld(World):
    def __init__(self, traits, **kw):
        super().__init__(traits, **kw)
        self.module = shared_rtslib_module(self.configfs, self.steps)
        self.monkeypatch.setitem(sys.modules, "rtslib_fb", self.module)
        self.settings = dataclasses.replace(self.settings, target_helper="rtslib")

    def make_service(self, **overrides) -> VolumeService:
        if "settings" in overrides:
            overrides["settings"] = dataclasses.replace(overrides["settings"], target_helper="rtslib")
        return super().make_service(**overrides)

    def live(self):
        return rtslib_live(self.configfs)

    def persisted(self):
        return lio_persisted(self.save_file)

    def residue(self) -> list[str]:
        return rtslib_residue(self.configfs)

    def lose(self, target: str) -> None:
        for so in (self.configfs.parent / "core").glob(f"iblock_*/{target}"):
            shutil.rmtree(so.parent)
        shutil.rmtree(self.configfs / target)

    def teardown(self) -> None:
        assert self.host.commands(RTSTOOL) == []


WORLDS = {"fake": FakeWorld, "lioadm": LioadmWorld, "rtslib": RtslibWorld}


def make_world(helper: str, **kw) -> World:
    return WORLDS[helper](TRAITS[helper], **kw)


# -- worlds of real processes ----------------------------------------------------------------------------

_LAUNCH = "import sys; sys.path.append({tests!r}); import worldfakes; worldfakes.main(sys.argv[1:])"


class ProcessWorld:
    """A helper's world shared by real volctl processes (tests/fakebin.py's FakeBin: one fake host
    in a state file, the inventory, the config) and quick in-process steps on the same host."""

    def __init__(self, traits: Traits, fb, monkeypatch):
        self.traits = traits
        self.name = traits.name
        self.fb = fb
        self.steps = Steps()  # the test process's own (in-process steps and services)
        lock_dir = Path(f"{fb.db}.locks")
        self.fake_root = fb.root / "fake-target"
        if self.name == "rtslib":
            fb.set_settings(target_helper="rtslib")
            monkeypatch.setitem(sys.modules, "rtslib_fb", shared_rtslib_module(fb.configfs, self.steps))
        if self.name != "lioadm":
            fb.launcher = [sys.executable, "-c", _LAUNCH.format(tests=str(Path(__file__).parent))]
        fb.world_env = {"FAKEHOST_HELPER": self.name, "FAKEHOST_FAKE_TARGET": str(self.fake_root),
                        "FAKEHOST_LOCK": str(lock_dir / ("fake.lock" if self.name == "fake" else "lio.lock"))}
        if self.name == "fake":
            fb.prepare = lambda service: service.__dict__.__setitem__(
                "targets", fake_registry(service.locks, self.fake_root, self.steps))

    def __getattr__(self, name):  # the traits' names and formats
        return getattr(self.traits, name)

    def cli(self, *args: str):
        """`volctl ARGS` in the test's own process, on the shared host and inventory (what is quick
        to check after a real process did the work); a tests/fakebin.py Proc."""
        from click.testing import CliRunner
        from fakebin import Proc

        from volctl.cli import App, cli

        with self.fb.service() as service:
            result = CliRunner().invoke(cli, ["--db", str(self.fb.db), *args], obj=App(_service=service),
                                        catch_exceptions=False)
        return Proc(tuple(args), result.exit_code, result.stdout, result.stderr)

    # -- faults and hangs, for a real process -----------------------------------------------------------

    def fail_env(self, step: str, *, echo: bool = False) -> dict[str, str]:
        """Every invocation of the step fails in the process run with this environment."""
        if self.name == "lioadm":  # fakebin's fake programs fail echoing their whole argv
            return {"FAKEHOST_FAIL": f"{RTSTOOL} {RTSTOOL_SUBCOMMAND[step]}", "FAKEHOST_FAIL_CODE": "1"}
        return steps_env([Fault(step, always=True, echo=echo, message="simulated failure")])

    def hang_env(self, step: str, when: str, marker: Path, nth: int = 1) -> dict[str, str]:
        if self.name == "lioadm":
            return {"FAKEHOST_HANG": f"{RTSTOOL} {RTSTOOL_SUBCOMMAND[step]}@{nth}", "FAKEHOST_HANG_WHEN": when,
                    "FAKEHOST_HANG_MARKER": str(marker)}
        return steps_env(hang=Hang(step, when, nth, str(marker)))

    def hung_at(self, marker: dict) -> str:
        """The step (or LVM program) a hang's marker names."""
        if "step" in marker:
            return marker["step"]
        argv = marker["argv"]
        return STEP_OF_SUBCOMMAND[argv[1]] if argv[0] == RTSTOOL else argv[0]

    def in_process_fail(self, step: str, *, echo: bool = False) -> None:
        """In the test's own process (a service from in_process_service): every invocation fails."""
        self.steps.fail(Fault(step, always=True, echo=echo, message="simulated failure"))

    def in_process_service(self, runner) -> VolumeService:
        """A service in the test's process on this world, with the given runner (the real Runner
        starting tests/fakebin.py's programs, say)."""
        fb = self.fb
        service = VolumeService(fb.db, Settings(**fb.settings_values), runner=runner, configfs=fb.configfs,
                                save_file=fb.save_file, host_root=fb.root / "host",
                                nvmet_root=fb.root / "host" / "nvmet", nvmet_save_file=fb.root / "host" / "nvmet.json")
        if self.name == "fake":
            service.__dict__["targets"] = fake_registry(service.locks, self.fake_root, self.steps)
        return service

    # -- views ------------------------------------------------------------------------------------------

    def live(self) -> dict[str, set[str]]:
        if self.name == "fake":
            return fake_live(self.fake_root)
        if self.name == "rtslib":
            return rtslib_live(self.fb.configfs)
        return {iqn: set(t.acls) for iqn, t in self.fb.host().targets.items()}

    def persisted(self) -> dict[str, set[str]] | None:
        if self.name == "fake":
            return fake_persisted(self.fake_root)
        return lio_persisted(self.fb.save_file)

    @property
    def persisted_to(self) -> str:
        return str(self.fake_root / "saved.json") if self.name == "fake" else str(self.fb.save_file)

    def residue(self) -> list[str]:
        return rtslib_residue(self.fb.configfs) if self.name == "rtslib" else []

    def secrets_below(self) -> set[str] | None:
        """The secrets that went below the helper, as far as the fake below sees them: the
        passwords in cinder-rtstool's argv, those in the fake configfs (live ACLs only); None
        for the fake helper, which hands none down."""
        if self.name == "lioadm":
            return rtstool_secrets(c["argv"] for c in self.fb.calls() if c["ev"] == "start")
        if self.name == "rtslib":
            return rtslib_secrets(self.fb.configfs)
        return None

    def step_records(self, since: int = 0) -> list[dict]:
        """One record per helper step and per fake program run since seq `since`: argv (a helper
        step is ["helper", STEP]), the volctl pid, its start and end in the total order, and
        whether the helper's host-wide lock was held by that volctl (helper steps; None else)."""
        starts, found = {}, []
        for entry in self.fb.calls():
            if entry["seq"] <= since:
                continue
            key = entry["pid"]
            if entry["ev"] == "start":
                starts[key] = entry
                continue
            start = starts.pop(key)
            argv = entry["argv"]
            step = argv[1] if argv[0] == "helper" else STEP_OF_SUBCOMMAND.get(argv[1]) if argv[0] == RTSTOOL else None
            found.append({"argv": argv, "step": step, "volctl": entry.get("volctl", entry.get("ppid")),
                          "start": start["seq"], "end": entry["seq"], "locked": start.get("locked")})
        assert not starts, f"calls that never ended: {starts}"
        return found

    def last_seq(self) -> int:
        entries = self.fb.calls()
        return entries[-1]["seq"] if entries else 0
