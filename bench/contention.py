"""Part 2: writes under contention. P processes each loop `reserve` then `unreserve` for a fixed
time, either each on its own volume ("different") or all on one volume ("same").

Two kinds of worker, labelled apart in every table:
- cli:       each worker runs real `.venv/bin/volctl --json reserve/unreserve` processes one after
             another, so P volctl processes run at any moment (start-up included: what a script sees);
- inprocess: each worker is one Python process that opens VolumeService once (no-op runner) and
             calls service.reserve/unreserve in a loop: the inventory's own write path.

Counted per operation: wins (exit 0), losses (exit 5 / InvalidState: the compare-and-swap found
another status, by design on the same volume), lock errors (exit 7 or stderr/exception naming
"locked"; goal 0) and other failures. Transitions per second = wins of both operations / window.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, VENV_PYTHON, VOLCTL, child_env  # noqa: E402
import inventory_fixture  # noqa: E402

INVENTORY_SIZE = 100
# Volumes of the fixture that start `available` and not multiattach (every 10th is in-use).
AVAILABLE = [i for i in range(1, INVENTORY_SIZE) if i % 10][:16]


# -- worker (runs in its own process) ------------------------------------------------------------

def _blank() -> dict:
    return {op: {"wins": 0, "losses": 0, "lock_errors": 0, "other": 0} for op in ("reserve", "unreserve")}


def _ready_then_wait() -> float:
    """Barrier: tell the orchestrator we are imported and ready, then wait for the start time."""
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    start_at = float(sys.stdin.readline())
    while time.time() < start_at:
        time.sleep(0.001)
    return start_at


def _worker_cli(db: str, ref: str, duration: float) -> dict:
    counts, samples = _blank(), []
    env = child_env()
    start_at = _ready_then_wait()
    end = start_at + duration
    latencies = []
    while time.time() < end:
        for op in ("reserve", "unreserve"):
            t0 = time.perf_counter()
            done = subprocess.run([str(VOLCTL), "--db", db, "--json", op, ref], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
            latencies.append(time.perf_counter() - t0)
            err = done.stderr.decode(errors="replace")
            c = counts[op]
            if done.returncode == 7 or "locked" in err:
                c["lock_errors"] += 1
                samples.append(err.strip()[-300:])
            elif done.returncode == 0:
                c["wins"] += 1
            elif done.returncode == 5:
                c["losses"] += 1
            else:
                c["other"] += 1
                samples.append(f"exit {done.returncode}: {err.strip()[-300:]}")
    return {"counts": counts, "finished": time.time(), "samples": samples[:3], "latencies": latencies}


def _worker_inprocess(db: str, ref: str, duration: float) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from volctl.config import Settings
    from volctl.errors import EnvironmentProblem, InvalidState
    from volctl.runner import Runner
    from volctl.service import VolumeService

    class NoopRunner(Runner):
        def run(self, argv, **kwargs):  # reserve/unreserve start no program; fail loudly if one does
            raise AssertionError(f"unexpected external command {argv}")

    service = VolumeService(db, Settings(), runner=NoopRunner())
    service.inventory()  # opened before the start, as in a long-running caller
    counts, samples = _blank(), []
    start_at = _ready_then_wait()
    end = start_at + duration
    latencies = []
    while time.time() < end:
        for op in ("reserve", "unreserve"):
            c = counts[op]
            t0 = time.perf_counter()
            try:
                getattr(service, op)(ref)
                c["wins"] += 1
            except InvalidState:
                c["losses"] += 1
            except (EnvironmentProblem, sqlite3.Error) as e:
                if "locked" in str(e) or isinstance(e, sqlite3.OperationalError):
                    c["lock_errors"] += 1
                else:
                    c["other"] += 1
                samples.append(f"{type(e).__name__}: {e}")
            except Exception as e:  # noqa: BLE001 - counted, not hidden
                c["other"] += 1
                samples.append(f"{type(e).__name__}: {e}")
            finally:
                latencies.append(time.perf_counter() - t0)
    return {"counts": counts, "finished": time.time(), "samples": samples[:3], "latencies": latencies}


# -- orchestration -----------------------------------------------------------------------------

def cell(kind: str, processes: int, target: str, duration: float, template: Path) -> dict:
    """One measurement: P workers of one kind on different volumes or the same one, on a fresh
    copy of the 100-volume inventory."""
    work = Path(tempfile.mkdtemp(prefix="volctl-bench-contention-"))
    try:
        db = work / "volctl.db"
        shutil.copy(template, db)
        refs = [inventory_fixture.volume_name(AVAILABLE[p % len(AVAILABLE)] if target == "different" else AVAILABLE[0])
                for p in range(processes)]
        workers = [
            subprocess.Popen([str(VENV_PYTHON), __file__, "--worker", kind, str(db), ref, repr(duration)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
            for ref in refs
        ]
        for w in workers:  # all imported and ready before the gun
            if w.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"contention worker failed to start: {w.communicate()[1].decode(errors='replace')[-800:]}")
        start_at = time.time() + 0.2
        for w in workers:
            w.stdin.write(f"{start_at!r}\n".encode())
            w.stdin.flush()
        reports = []
        for w in workers:
            out, err = w.communicate()
            if w.returncode != 0:
                raise RuntimeError(f"contention worker failed: {err.decode(errors='replace')[-800:]}")
            reports.append(json.loads(out))
        late = max(r["finished"] for r in reports) - start_at
        total = _blank()
        for r in reports:
            for op, c in r["counts"].items():
                for k, v in c.items():
                    total[op][k] += v
        wins = sum(total[op]["wins"] for op in total)
        ops = sum(sum(c.values()) for c in total.values())
        errors = sum(total[op]["lock_errors"] for op in total)
        latencies = sorted(x for r in reports for x in r["latencies"])
        per_worker = sorted(len(r["latencies"]) for r in reports)
        # The inventory must still be whole: every volume in a known status.
        with sqlite3.connect(db) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return {
            "kind": kind, "processes": processes, "target": target, "seconds": round(late, 3), "operations": ops,
            "transitions": wins, "transitions_per_s": wins / late, "operations_per_s": ops / late,
            "lock_errors": errors, "counts": total, "integrity": integrity,
            "other": sum(total[op]["other"] for op in total),
            # One operation = one reserve or unreserve call (a whole process for cli). SQLite's busy
            # handler polls with growing sleeps and queues nobody, so a writer can starve.
            "latency_ms": {"p50": 1000 * latencies[len(latencies) // 2], "p99": 1000 * latencies[int(len(latencies) * 0.99)],
                           "max": 1000 * latencies[-1]} if latencies else None,
            "ops_per_worker": {"min": per_worker[0], "max": per_worker[-1]},
            "samples": [s for r in reports for s in r["samples"]][:5],
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(processes: list[int], kinds: list[str], duration: dict[str, float], *, log=print) -> dict:
    template, _ = inventory_fixture.cached(INVENTORY_SIZE, RESULTS / "inventories")
    cells = []
    for kind in kinds:
        for target in ("different", "same"):
            for p in processes:
                log(f"  {kind:9} {target:9} x{p:<2} ", end="")
                c = cell(kind, p, target, duration[kind], template)
                lat = c["latency_ms"] or {"p50": 0, "max": 0}
                log(f"{c['transitions_per_s']:.1f} transitions/s, lock errors {c['lock_errors']}, other {c['other']}, "
                    f"latency p50 {lat['p50']:.1f} ms max {lat['max']:.0f} ms, ops per worker {c['ops_per_worker']['min']}-{c['ops_per_worker']['max']}")
                cells.append(c)
    return {"inventory_size": INVENTORY_SIZE, "cells": cells}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        kind, db, ref, duration = sys.argv[2:6]
        fn = _worker_cli if kind == "cli" else _worker_inprocess
        print(json.dumps(fn(db, ref, float(duration))))
        sys.exit(0)
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--processes", default="1,4,16")
    p.add_argument("--kinds", default="inprocess,cli")
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    out = run([int(x) for x in a.processes.split(",")], a.kinds.split(","), {"cli": a.seconds, "inprocess": a.seconds},
              log=lambda *x, **k: print(*x, **k, file=sys.stderr, flush=True))
    print(json.dumps(out, indent=1))
