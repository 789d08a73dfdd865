"""Shared helpers for volctl's benchmarks: paths, the environment child processes run in,
timing of whole processes (wall time and peak RSS per child), statistics, machine facts.

Stdlib only. bench/vm_flow.py, which runs inside the QEMU guest, has its own timer: it needs
a kill at a time cap rather than an RSS figure.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
VOLCTL = REPO / ".venv" / "bin" / "volctl"
RESULTS = BENCH / "results"  # gitignored
# Bytecode for every child goes here, not into volctl/__pycache__ (the tree is shared, and this
# environment sets PYTHONDONTWRITEBYTECODE=1, which would make each run recompile volctl).
PYCACHE = RESULTS / ".pycache"


def child_env(**extra: str) -> dict:
    """The environment of every timed process: pyc cached (as after `pip install`), C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOLCTL_", "PYTHONDONTWRITEBYTECODE"))}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["LC_ALL"] = "C"
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


@dataclass
class Run:
    wall: float  # seconds
    maxrss_kib: int  # this child's peak RSS (wait4's rusage), KiB
    rc: int
    stderr: str = ""
    cpu: float = 0.0  # seconds of user + system CPU (wait4's rusage: GNU time and the command it waited for)


GNU_TIME = Path("/usr/bin/time")


def run_measured(argv: list[str], *, env: dict | None = None, stdout=subprocess.DEVNULL,
                 input_text: str | None = None) -> Run:
    """One process from fork to reaped: wall time and its peak RSS. stdout goes to /dev/null
    unless told otherwise; stderr to a temporary file (no pipe to drain while we wait).

    Peak RSS comes from GNU time (`/usr/bin/time -f %M`) wrapped around the command: Linux carries
    the hiwater RSS of the process image an exec replaces into the new program's ru_maxrss, so a
    child forked straight from this (larger) Python process would report at least our own peak.
    GNU time is a small C program, so its child's figure is the command's own. The wrapper adds
    about a millisecond to every run, command and floor alike. Without GNU time: os.wait4's
    figure, which then means "at least the parent's size" (noted in the results)."""
    import tempfile

    with tempfile.TemporaryFile() as err_file, tempfile.NamedTemporaryFile("r") as rss_file:
        wrapped = ([str(GNU_TIME), "-f", "%M", "-o", rss_file.name, *argv] if GNU_TIME.exists() else list(argv))
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, stdout=stdout, stderr=err_file,
                                stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL)
        if input_text is not None:
            proc.stdin.write(input_text.encode())
            proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
        rss = usage.ru_maxrss
        if GNU_TIME.exists():
            text = rss_file.read().strip().splitlines()
            # GNU time prefixes "Command exited with non-zero status N" on its own line.
            rss = int(text[-1]) if text and text[-1].isdigit() else 0
    return Run(wall, rss, proc.returncode, err, usage.ru_utime + usage.ru_stime)


@dataclass
class Stats:
    n: int
    median: float
    p10: float
    p90: float
    min: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> "Stats":
        values = sorted(values)
        if len(values) == 1:
            v = values[0]
            return cls(1, v, v, v, v, v)
        q = statistics.quantiles(values, n=10, method="inclusive")
        return cls(len(values), statistics.median(values), q[0], q[-1], values[0], values[-1])

    def ms(self) -> str:
        return f"{self.median * 1000:.0f} ms [{self.p10 * 1000:.0f}-{self.p90 * 1000:.0f}]"


def fmt_seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    return f"{s:.2f} s"


def machine() -> dict:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    venv_python = subprocess.run([str(VENV_PYTHON), "-c", "import sys,sqlite3;print(sys.version.split()[0], sqlite3.sqlite_version)"],
                                 capture_output=True, text=True).stdout.split() if VENV_PYTHON.exists() else ["?", "?"]
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": venv_python[0] if venv_python else sys.version.split()[0],
        "sqlite": venv_python[1] if len(venv_python) > 1 else sqlite3.sqlite_version,
        "python_executable": str(VENV_PYTHON.resolve()) if VENV_PYTHON.exists() else sys.executable,
    }


def git_describe() -> str:
    """The commit the figures belong to (read-only git)."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except OSError:
        return "?"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (also valid Markdown)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)
