"""Writing a file that must survive a crash and a power cut whole: the saved target configs, which
a host restores at boot and which hold credentials."""

from __future__ import annotations

import os
from pathlib import Path

from volctl.errors import EnvironmentProblem


def write_private(path: Path, text: str, what: str) -> None:
    """Atomically and durably, mode 0600: a temporary file beside it, fsynced, renamed over it,
    then the directory fsynced so the rename itself is on the disk (as rtslib's and nvmetcli's
    own saves do). A half-written copy is removed: it holds the same credentials."""
    tmp = path.with_name(f".{path.name}.volctl")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise EnvironmentProblem(f"cannot write the {what} {path}: {e.strerror}") from None
