"""A target helper's steps, seen from below the helper seam: counted, made to fail, made to hang
(so a test can SIGKILL the volctl process there) and logged, for the fakes the behaviour suites
run each helper on (tests/worlds.py).

The steps are the driver's (volctl/targets/driver.py), named protocol-neutrally:

    create_export   the target with its device      allow       a host on a target
    remove_export   a target                        disallow    a host off a target
    persist         what survives a reboot          targets     the helper's listing of targets

Who reports a step depends on the helper: the fake helper's wrapper (tests/worldfakes.py) around
each of its steps; the shared rtslib (tests/sharedrtslib.py) at the library calls a step makes;
for `lioadm` no Python sees the steps: its cinder-rtstool calls are the steps, and the FakeHost
(in-process) or tests/fakebin.py (processes) fail, hang and log them.

In a real volctl process the faults and the hang come from the environment (`env()` writes it):

    HELPER_FAULTS   JSON list of faults    HELPER_HANG   JSON hang, its marker file included
    FAKEHOST_LOG    the call log of tests/fakebin.py: each step's start and end are appended to
                    it in the same total order as the fake programs' calls (seq), with `locked`:
                    whether the calling process held the helper's host-wide lock (FAKEHOST_LOCK)
    FAKEHOST_DELAY  seconds each step sleeps (holding whatever the helper holds), so steps of
                    different processes would overlap if the helper did not serialize them
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

STEPS = ("create_export", "allow", "disallow", "remove_export", "persist", "targets")
HANG_SECONDS = 120.0


@dataclass(frozen=True)
class Fault:
    """The `nth` invocation of `step` in this process fails (and every later one, with `always`).
    effect: the step does some or all of its work first (rtslib: a target without its portals,
    an ACL without its LUN; the fake: all of it); echo: the failure's message carries the arguments of the failing call, secrets too,
    as a careless tool or library would."""

    step: str
    nth: int = 1
    always: bool = False
    effect: bool = False
    echo: bool = False
    message: str = ""

    def __post_init__(self) -> None:
        assert self.step in STEPS, self.step

    @property
    def text(self) -> str:
        return self.message or f"simulated {self.step} failure"

    def hits(self, n: int) -> bool:
        return n == self.nth or (self.always and n > self.nth)


@dataclass(frozen=True)
class Hang:
    """The `nth` invocation of `step` writes `marker` and sleeps: before it does anything, or
    after its work is done, before the helper gets the answer."""

    step: str
    when: str = "before"
    nth: int = 1
    marker: str = ""

    def __post_init__(self) -> None:
        assert self.step in STEPS and self.when in ("before", "after"), self


def env(faults: list[Fault] = (), hang: Hang | None = None) -> dict[str, str]:
    found = {}
    if faults:
        found["HELPER_FAULTS"] = json.dumps([asdict(f) for f in faults])
    if hang is not None:
        found["HELPER_HANG"] = json.dumps(asdict(hang))
    return found


@dataclass
class Invocation:
    steps: Steps
    step: str
    n: int
    fault: Fault | None
    hang: Hang | None

    def hang_if(self, when: str) -> None:
        if self.hang is not None and self.hang.when == when:
            self.steps.hang_now(self)

    def end(self) -> None:
        self.steps.log("end", self)


@dataclass
class Steps:
    # each fault with the count of its step when it was armed: its nth is counted from there
    faults: list[tuple[Fault, int]] = field(default_factory=list)
    hang: Hang | None = None
    log_path: str | None = None  # tests/fakebin.py's call log
    state: str | None = None  # its state file, whose lock orders every entry
    lock: str | None = None  # the helper's host-wide lock: is it held by the calling process?
    delay: float = 0.0
    counts: Counter = field(default_factory=Counter)
    seen: list[str] = field(default_factory=list)  # every step begun, in order

    @classmethod
    def from_env(cls) -> Steps:
        e = os.environ
        return cls(faults=[(Fault(**f), 0) for f in json.loads(e.get("HELPER_FAULTS") or "[]")],
                   hang=Hang(**json.loads(e["HELPER_HANG"])) if e.get("HELPER_HANG") else None,
                   log_path=e.get("FAKEHOST_LOG") or None, state=e.get("FAKEHOST_STATE") or None,
                   lock=e.get("FAKEHOST_LOCK") or None, delay=float(e.get("FAKEHOST_DELAY") or 0))

    # -- test controls (in-process worlds) -----------------------------------------------------

    def fail(self, fault: Fault) -> None:
        """From now: the fault's nth is the nth invocation of its step from here on."""
        self.faults.append((fault, self.counts[fault.step]))

    def clear(self) -> None:
        self.faults.clear()
        self.hang = None

    # -- what the fakes call -------------------------------------------------------------------

    def begin(self, step: str) -> Invocation:
        self.counts[step] += 1
        n = self.counts[step]
        self.seen.append(step)
        fault = next((f for f, base in self.faults if f.step == step and f.hits(n - base)), None)
        hang = self.hang if self.hang is not None and self.hang.step == step and self.hang.nth == n else None
        invocation = Invocation(self, step, n, fault, hang)
        self.log("start", invocation)
        if self.delay:
            time.sleep(self.delay)
        return invocation

    def hang_now(self, invocation: Invocation) -> None:
        marker = invocation.hang.marker
        if marker:
            tmp = f"{marker}.tmp"
            Path(tmp).write_text(json.dumps({"pid": os.getpid(), "step": invocation.step, "n": invocation.n,
                                             "when": invocation.hang.when}))
            os.replace(tmp, marker)
        time.sleep(HANG_SECONDS)  # the test kills us long before
        os._exit(99)

    def log(self, event: str, invocation: Invocation) -> None:
        if not (self.log_path and self.state):
            return
        entry = {"ev": event, "argv": ["helper", invocation.step], "pid": os.getpid(), "volctl": os.getpid(),
                 "step": invocation.step, "ns": time.monotonic_ns()}
        if self.lock:
            entry["locked"] = held_by(self.lock, os.getpid())
        if str(Path(__file__).parent) not in sys.path:
            sys.path.insert(0, str(Path(__file__).parent))
        from fakebin import append_log

        append_log(Path(self.state), Path(self.log_path), entry)


def held_by(lock: str | Path, pid: int) -> bool:
    """Whether process `pid` holds the flock on `lock` now: someone holds it (a shared lock
    cannot be had) and the pid volctl's FileLock writes in it is pid's."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return text == str(pid)
    finally:
        os.close(fd)
