"""`target_helper = "lioadm"`: LIO through Cinder's own `cinder-rtstool`, as Cinder's LioAdm
drives it (the default; its command lines are the ones the seed's card gives).

Targets are matched by exact line, not by substring (Cinder's `if iqn in line` confuses
volume-1 with volume-10). The CHAP password is in cinder-rtstool's argv while `create` and
`add-initiator` run: rtstool takes it nowhere else (the README's "What remains exposed").
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from volctl.errors import CommandFailed, EnvironmentProblem
from volctl.iscsi import Chap, IscsiConfig
from volctl.locks import FileLock
from volctl.runner import Runner
from volctl.targets import saved
from volctl.targets.lio import CONFIGFS_ISCSI, SAVE_FILE, LioTarget

RTSTOOL = "cinder-rtstool"


class LioAdm(LioTarget):
    name = "lioadm"

    def __init__(self, runner: Runner, lock: FileLock, configfs: Path = CONFIGFS_ISCSI, save_file: Path = SAVE_FILE,
                 iscsi: IscsiConfig = IscsiConfig(), host_root: Path = Path("/")):
        super().__init__(lock, configfs, save_file, iscsi, host_root)
        self.runner = runner

    def _rtstool(self, *args: str, secrets: Sequence[str] = ()) -> str:
        with self.lock.held():
            return self.runner.run([RTSTOOL, *args], secrets=secrets).stdout

    def _create(self, device: str, iqn: str, chap: Chap, *, iser: bool, ips: Sequence[str], port: int) -> None:
        self._rtstool(
            "create", device, iqn, chap.username, chap.password, str(iser), f"-p{port}", "-a" + ",".join(ips),
            secrets=[chap.password],
        )
        # rtstool create returns 0 without doing anything when a storage object of that name exists
        if not self.exists(iqn):
            raise CommandFailed([RTSTOOL, "get-targets"], 0, "", reason=f"target {iqn} is not listed after create")

    def _targets(self) -> list[str]:
        return [line.strip() for line in self._rtstool("get-targets").splitlines() if line.strip()]

    def _delete(self, iqn: str) -> None:
        self._rtstool("delete", iqn)

    def _add_initiator(self, iqn: str, chap: Chap, initiator: str) -> None:
        self._rtstool("add-initiator", iqn, chap.username, chap.password, initiator, secrets=[chap.password])

    def _delete_initiator(self, iqn: str, initiator: str) -> bool:
        try:
            out = self._rtstool("delete-initiator", iqn, initiator)
        except CommandFailed as e:
            if "Could not find target" in e.stderr:
                return False
            raise
        return "ACL not found" not in out  # rtstool says so and exits 0

    def _persist(self, iqns: frozenset[str]) -> None:
        """rtstool has only a whole-config save (lio-lvm-facts.md §1.5): every change set pays it,
        however little it touched, and its cost grows with every target on the host."""
        self._save_all()

    def _save_all(self) -> None:
        """Always to an explicit path: without one, rtslib picks its own default, which differs
        between PyPI's and Debian's rtslib. Given a path, cinder-rtstool makes no directory."""
        try:
            self.save_file.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as e:
            raise EnvironmentProblem(f"cannot create {self.save_file.parent} for the saved LIO config: {e.strerror}") from None
        self._rtstool("save", str(self.save_file))
        try:
            document = saved.read(self.save_file)
        except EnvironmentProblem:
            return  # doctor reports an unreadable saved config
        if document is not None and saved.restorable_by_older_rtslib(document):
            saved.write(self.save_file, document)
