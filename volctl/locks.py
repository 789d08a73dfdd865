"""Advisory file locks: one per volume and snapshot (external steps for one never interleave) and
one host-wide per target family, which its helpers hold for every step (LIO's: rtslib is not
safe under concurrent use; Cinder serializes cinder-rtstool the same way)."""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from volctl.errors import EnvironmentProblem

DEFAULT_WAIT = 600.0


class FileLock:
    """flock on a file; re-entrant within one process, so nested users share one hold."""

    def __init__(self, path: Path, wait: float = DEFAULT_WAIT):
        self.path = path
        self.wait = wait
        self._fd: int | None = None
        self._depth = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._depth == 0:
            self._acquire()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._release()

    def _acquire(self) -> None:
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # a read-only command (doctor) before any inventory exists
                private_directory(self.path.parent)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise EnvironmentProblem(f"cannot open lock {self.path}: {e.strerror}") from None
        deadline = time.monotonic() + self.wait
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise EnvironmentProblem(f"lock {self.path} still held by another volctl after {self.wait:g} s") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        # Who holds it, for an operator looking at a stuck run.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def holder(self) -> int | None:
        """The pid of another process holding the lock right now, or None (0 if it wrote none)."""
        if self._depth:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        finally:
            os.close(fd)

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def private_directory(path: Path) -> None:
    """path and every missing parent made 0700: the inventory's directory holds CHAP credentials."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass  # another volctl made it first


class Locks:
    def __init__(self, directory: Path, wait: float = DEFAULT_WAIT):
        self.directory = directory
        self.wait = wait
        self._locks: dict[str, FileLock] = {}

    def ensure_directory(self) -> None:
        try:
            private_directory(self.directory)
        except OSError as e:
            raise EnvironmentProblem(f"cannot create lock directory {self.directory}: {e.strerror}") from None

    def volume(self, volume_id: str) -> FileLock:
        return self._entity("volume", volume_id)

    def snapshot(self, snapshot_id: str) -> FileLock:
        return self._entity("snapshot", snapshot_id)

    def lv(self, vg: str, name: str) -> FileLock:
        """An LV taken in by name (manage): two takers of one LV never both rename it."""
        return self._lock(f"lv-{vg}-{name}")

    def space(self, vg: str) -> FileLock:
        """A volume group's admission: held from the space check until the inventory carries what
        it admitted, so two creates never both count the same room (service/space.py)."""
        return self._lock(f"space-{vg}")

    def host(self, family: str) -> FileLock:
        """A target family's host-wide lock (lio.lock for LIO, as every volctl before it took)."""
        return self._lock(family)

    def _entity(self, kind: str, entity_id: str) -> FileLock:
        return self._lock(f"{kind}-{entity_id}")

    def _lock(self, key: str) -> FileLock:
        if key not in self._locks:
            self._locks[key] = FileLock(self.directory / f"{key}.lock", self.wait)
        return self._locks[key]
