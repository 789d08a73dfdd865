"""What a volctl process needs to run on the fake helper or on the rtslib helper of a world
(tests/worlds.py), in the test's own process or in a real volctl process:

- `fake`: the package's protocol-neutral fake (volctl/targets/fake.py) with each of its steps
  reported to tests/helpersteps.py (faults, hangs, the log), given to the service through the
  target registry, as no setting can name it;
- `rtslib`: the real rtslib helper, with the shared rtslib of tests/sharedrtslib.py in place of
  the rtslib_fb module (target_helper = "rtslib" comes from the world's settings).

A real process gets its world from the environment: `python -c "...; worldfakes.main(ARGS)"` (the
launcher tests/fakebin.py starts for these helpers; its barrier runner calls install() too) reads

    FAKEHOST_HELPER       "fake" or "rtslib" ("lioadm" needs nothing: the console script runs)
    FAKEHOST_FAKE_TARGET  the fake helper's directory (its live/ and saved.json)
    VOLCTL_CONFIGFS       the shared rtslib's iscsi directory (core/ is beside it)

and the step controls of tests/helpersteps.py (HELPER_FAULTS, HELPER_HANG, FAKEHOST_LOG ...).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from helpersteps import Steps

from volctl.errors import TargetFailed
from volctl.targets.fake import FakeTarget

FAKE_FAMILY = "fake"


class StepFakeTarget(FakeTarget):
    """FakeTarget, each step passing through `steps` first: it may fail (before its work, or after
    it with `effect`), or hang before or after its work."""

    def __init__(self, lock, root: Path, steps: Steps):
        super().__init__(lock, root)
        self.steps = steps

    def _step(self, step: str, work: Callable[[], object]):
        invocation = self.steps.begin(step)
        try:
            invocation.hang_if("before")
            fault = invocation.fault
            if fault is not None and not fault.effect:
                raise TargetFailed(f"fake target: {fault.text}")
            result = work()
            invocation.hang_if("after")
            if fault is not None:
                raise TargetFailed(f"fake target: {fault.text}")
            return result
        finally:
            invocation.end()

    def _create_export(self, volume, target):
        return self._step("create_export", lambda: super(StepFakeTarget, self)._create_export(volume, target))

    def _remove_export(self, target):
        return self._step("remove_export", lambda: super(StepFakeTarget, self)._remove_export(target))

    def _allow(self, volume, target, host, host_secrets):
        return self._step("allow", lambda: super(StepFakeTarget, self)._allow(volume, target, host, host_secrets))

    def _disallow(self, target, host):
        return self._step("disallow", lambda: super(StepFakeTarget, self)._disallow(target, host))

    def _targets(self):
        return self._step("targets", lambda: super(StepFakeTarget, self)._targets())

    def _persist(self, targets):
        return self._step("persist", lambda: super(StepFakeTarget, self)._persist(targets))

    def _save_all(self):
        return self._step("persist", lambda: super(StepFakeTarget, self)._save_all())


def fake_registry(locks, root: Path, steps: Steps):
    """The service's target registry with the fake helper alone: new exports go to it."""
    from volctl.targets import FAMILIES, Targets

    return Targets({FAKE_FAMILY: lambda: StepFakeTarget(locks.host(FAKE_FAMILY), root, steps)},
                   {**FAMILIES, StepFakeTarget.name: FAKE_FAMILY}, FAKE_FAMILY)


def shared_rtslib_module(configfs: Path, steps: Steps | None):
    from sharedrtslib import SharedRtslib

    return SharedRtslib(configfs, steps).module


def install() -> None:
    """This process's world, from the environment (nothing for lioadm)."""
    helper = os.environ.get("FAKEHOST_HELPER", "lioadm")
    if helper == "rtslib":
        sys.modules["rtslib_fb"] = shared_rtslib_module(Path(os.environ["VOLCTL_CONFIGFS"]), Steps.from_env())
    elif helper == "fake":
        from volctl.targets import Targets

        root, steps = Path(os.environ["FAKEHOST_FAKE_TARGET"]), Steps.from_env()

        def from_settings(cls, settings, runner, locks, **paths):
            return fake_registry(locks, root, steps)

        Targets.from_settings = classmethod(from_settings)


def main(args: list[str]) -> None:
    install()
    sys.argv = ["volctl", *args]
    from volctl.cli import main as volctl_main

    volctl_main()
