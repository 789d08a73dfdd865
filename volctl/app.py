"""What every command gets through @pass_obj, in a module of its own (as hatch's
cli/application.py): the commands import it only for type checking, and nothing here imports
a command, so no import cycle runs through the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from volctl import output
from volctl.config import DEFAULT_DB

if TYPE_CHECKING:
    from volctl.service import VolumeService


class App:
    """What every command gets through @pass_obj. Tests may hand in one with a prepared service.
    A plain class: a dataclass's generated methods cost every command's start-up (volctl/record.py)."""

    def __init__(self, db: str = DEFAULT_DB, config: str | None = None, json: bool = False, verbose: bool = False,
                 _service: VolumeService | None = None):
        self.db, self.config, self.json, self.verbose, self._service = db, config, json, verbose, _service

    def __repr__(self) -> str:
        return f"App(db={self.db!r}, config={self.config!r}, json={self.json!r}, verbose={self.verbose!r})"

    @property
    def service(self) -> VolumeService:
        if self._service is None:
            from volctl.config import load_settings
            from volctl.service import VolumeService

            # The host's paths the target helpers use (LIO's configfs tree and saved config, the
            # root its restore unit is looked for under, nvmet's configfs tree and saved config);
            # overridable so whole processes can run against a fake host.
            paths = {key: Path(os.environ[var]) for key, var in (("configfs", "VOLCTL_CONFIGFS"),
                                                                 ("save_file", "VOLCTL_LIO_SAVE_FILE"),
                                                                 ("host_root", "VOLCTL_HOST_ROOT"),
                                                                 ("nvmet_root", "VOLCTL_NVMET_CONFIGFS"),
                                                                 ("nvmet_save_file", "VOLCTL_NVMET_SAVE_FILE"))
                     if os.environ.get(var)}
            self._service = VolumeService(self.db, load_settings(self.config), **paths)
        return self._service

    def notes(self, notes: tuple[str, ...] | list[str]) -> None:
        for line in [*self.service.warnings, *notes]:
            output.note(line)
