"""Writing a file that must survive a crash and a power cut whole: the saved target configs, which
a host restores at boot and which hold credentials, and the metrics file node_exporter reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

from volctl.errors import EnvironmentProblem


def read_text(path: str | Path) -> str:
    """A small file's text, stripped; "" when it cannot be read. Plain os calls: scans read it from
    hundreds of files (configfs attributes, /proc/PID/comm), and pathlib's and io's overhead per
    file was most of such a scan under TCG (BENCHMARKS.md section 7)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(fd)


def write_private(path: Path, text: str, what: str) -> None:
    """Atomically and durably, mode 0600 (write_whole)."""
    write_whole(path, text, what, 0o600)


def write_whole(path: Path, text: str, what: str, mode: int) -> None:
    """Atomically and durably: a temporary file beside it (a dot file, which neither a restore
    unit nor node_exporter's textfile collector reads), fsynced, renamed over it, then the
    directory fsynced so the rename itself is on the disk (as rtslib's and nvmetcli's own saves
    do). A half-written copy is removed: a saved config's holds the same credentials."""
    tmp = path.with_name(f".{path.name}.volctl")
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(fd, mode)  # the umask may have taken bits the reader needs
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


def json_lines(document: dict) -> str:
    """A saved config's text: sorted keys, one entry of each top-level list per line. Each line
    comes from json's C encoder; indent= would take its pure-Python one, which spent 88 of a 100 s
    `connect` at 1,000 targets under TCG (cProfile, BENCHMARKS.md), while this stays a file a
    person can read an entry at a time (rtslib's and nvmetcli's own saves indent; all load the same)."""
    encode = json.JSONEncoder(sort_keys=True).encode  # one encoder: dumps(sort_keys=) makes one a call
    lines = ["{"]
    keys = sorted(document)
    for i, key in enumerate(keys):
        value, comma = document[key], "," if i < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            last = len(value) - 1
            lines += [f"    {encode(entry)}{',' if j < last else ''}" for j, entry in enumerate(value)]
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {encode(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
