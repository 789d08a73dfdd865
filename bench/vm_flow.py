"""Part 3: the seed's flow on a real kernel, timed command by command, next to the bare external
commands each volctl command runs; then `connect` of a new volume with 0, 100 and 1,000 other
LIO targets present.

Runs INSIDE the vmrun guest only (real LVM on the scratch disk, real LIO, Cinder's cinder-rtstool):

    tests/vm/vmrun --rw DIR --scratch-size 16G -- .venv/bin/python bench/vm_flow.py --out DIR/vm.json

bench/run does that when the VM tier is available. How it measures:

- volctl side: `volctl create/reserve/export/connect/attach` as separate processes (wall time);
  which external commands each one ran, and how long each took as volctl's runner saw it, comes
  from the inventory's history (read with sqlite3 between commands).
- bare side: the same external command lines (same program, subcommand and argument shapes, on
  another LV and IQN), run directly and timed one by one, in the same boot. Volctl and bare
  alternate which goes first from one repetition to the next.
- overhead ratio of a command = volctl wall / sum of its bare commands; reserve and attach run no
  external command and are compared with a bare `python -c` that does their SQLite UPDATE.
- N targets: filler targets are made in-process with rtslib (bench/vm_fill_targets.py); then a
  fresh volume is created and `volctl connect` (export + ACL + one save) is timed, killed after a
  per-size cap and reported as "did not finish within N s".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests" / "vm")]

from guard import require_guest  # noqa: E402

from volctl.savefile import default_save_file  # noqa: E402

VOLCTL = REPO / ".venv" / "bin" / "volctl"
PYTHON = REPO / ".venv" / "bin" / "python"
TOOLS = REPO / ".cache" / "vm" / "tools" / "bin"
VG = "volctl-bench"
PREFIX = "iqn.2010-10.org.openstack:"
INITIATOR = "iqn.2024-01.test.volctl:bench1"
SAVE_FILE = default_save_file()  # where volctl saves with lio_save_file unset, as the bench runs it
FLOW = ("create", "reserve", "export", "connect", "attach")
FLOOR_UPDATE = ("import sqlite3,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); "
                "c.execute('UPDATE volumes SET updated_at = updated_at WHERE name = ?', (sys.argv[2],)); c.execute('COMMIT')")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def sh(*argv: str, env: dict | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return done.stdout


def timed(argv: list[str], env: dict, *, timeout: float | None = None, check: bool = True) -> tuple[float, subprocess.CompletedProcess | None]:
    """Wall time of one process; (elapsed, None) when it was killed at the timeout. The process
    runs in its own session so a timeout kills its children (cinder-rtstool) too."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return time.perf_counter() - started, None
    elapsed = time.perf_counter() - started
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if done.returncode and check:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {err.strip()[-800:]}")
    return elapsed, done


class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.db = work / "state" / "volctl.db"
        config = work / "volctl.toml"
        config.write_text(f'volume_group = "{VG}"\ntarget_ip_address = "127.0.0.1"\nvolume_clear = "none"\n')
        self.env = {**os.environ, "VOLCTL_DB": str(self.db), "VOLCTL_CONFIG": str(config),
                    "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore", "LC_ALL": "C"}
        self.env.pop("PYTHONPYCACHEPREFIX", None)

    # -- volctl side -----------------------------------------------------------------------

    def _watermark(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def _commands_since(self, mark: int) -> list[dict]:
        with sqlite3.connect(self.db) as c:
            rows = c.execute("SELECT argv, duration, exit_code FROM events WHERE id > ? AND kind = 'command' ORDER BY id", [mark])
            return [{"argv": json.loads(a), "duration": d, "exit_code": e} for a, d, e in rows]

    def volctl(self, *args: str, timeout: float | None = None) -> dict:
        mark = self._watermark()
        elapsed, done = timed([str(VOLCTL), *args], self.env, timeout=timeout)
        commands = self._commands_since(mark)
        return {"args": list(args[:1]), "wall": elapsed, "finished": done is not None, "commands": commands,
                "external": sum(c["duration"] or 0 for c in commands)}

    def volctl_flow(self, name: str) -> dict:
        steps = {}
        steps["create"] = self.volctl("--json", "create", "--size", "1", "--name", name)
        steps["reserve"] = self.volctl("--json", "reserve", name)
        steps["export"] = self.volctl("--json", "export", name)
        steps["connect"] = self.volctl("--json", "connect", name, "--initiator", INITIATOR)
        steps["attach"] = self.volctl("--json", "attach", name, "--instance", str(uuid.uuid4()), "--host", "bench-host",
                                      "--mountpoint", "/dev/vdb")
        return steps

    # -- bare side ---------------------------------------------------------------------------

    def bare_flow(self, template: dict) -> dict:
        """The external commands volctl ran in `template` (a volctl_flow result), on a new LV and
        IQN, each timed on its own; for reserve/attach the SQLite UPDATE floor."""
        lv = f"volume-{uuid.uuid4()}"
        iqn = PREFIX + lv
        user, password = "benchUser23456789abcd", "benchPass234567A"
        shapes = {
            ("lvcreate",): ["lvcreate", "-n", lv, VG, "-L", "1g"],
            ("cinder-rtstool", "get-targets"): ["cinder-rtstool", "get-targets"],
            ("cinder-rtstool", "create"): ["cinder-rtstool", "create", f"/dev/{VG}/{lv}", iqn, user, password, "False",
                                           "-p3260", "-a127.0.0.1"],
            ("cinder-rtstool", "save"): ["cinder-rtstool", "save", SAVE_FILE],
            ("cinder-rtstool", "add-initiator"): ["cinder-rtstool", "add-initiator", iqn, user, password, INITIATOR],
        }
        steps = {}
        for step in FLOW:
            ran = template[step]["commands"]
            if not ran:
                elapsed, _ = timed([str(PYTHON), "-c", FLOOR_UPDATE, str(self.db), "bench-floor-none"], self.env)
                steps[step] = {"commands": [{"argv": ["python -c UPDATE"], "wall": elapsed}], "total": elapsed, "floor": True}
                continue
            out = []
            for command in ran:
                argv = command["argv"]
                key = (argv[0],) if argv[0] != "cinder-rtstool" else (argv[0], argv[1])
                if key not in shapes:
                    raise RuntimeError(f"no bare equivalent for {argv}")
                elapsed, _ = timed(shapes[key], self.env)
                out.append({"argv": shapes[key][:2] if argv[0] == "cinder-rtstool" else shapes[key][:1], "wall": elapsed})
            steps[step] = {"commands": out, "total": sum(c["wall"] for c in out), "floor": False}
        return steps

    # -- N targets ----------------------------------------------------------------------------

    def fill(self, first: int, count: int) -> dict:
        if count <= 0:
            return {"created": 0, "seconds": 0.0}
        return json.loads(sh(str(TOOLS / "python"), str(HERE / "vm_fill_targets.py"), str(first), str(count), env=self.env))

    def rtstool_targets(self) -> int:
        return len(sh("cinder-rtstool", "get-targets", env=self.env).split())


def summarise(reps: list[dict]) -> list[dict]:
    rows = []
    for step in FLOW:
        walls = [r["volctl"][step]["wall"] for r in reps]
        inside = [r["volctl"][step]["external"] for r in reps]
        bare = [r["bare"][step]["total"] for r in reps]
        floor = reps[0]["bare"][step]["floor"]
        commands = [" ".join(c["argv"][:2] if c["argv"][0] == "cinder-rtstool" else c["argv"][:1])
                    for c in reps[0]["volctl"][step]["commands"]]
        rows.append({
            "command": step, "volctl_median": statistics.median(walls), "volctl_min": min(walls), "volctl_max": max(walls),
            "external_in_volctl_median": statistics.median(inside),
            "bare_median": statistics.median(bare), "bare_min": min(bare), "bare_max": max(bare),
            "bare_is_floor": floor, "runs": commands or ["(none: python -c UPDATE floor)"],
            "ratio": statistics.median(walls) / statistics.median(bare),
            "overhead_s": statistics.median([w - i for w, i in zip(walls, inside)]),
        })
    total_v = [sum(r["volctl"][s]["wall"] for s in FLOW) for r in reps]
    total_b = [sum(r["bare"][s]["total"] for s in FLOW if not r["bare"][s]["floor"]) for r in reps]
    rows.append({"command": "flow total", "volctl_median": statistics.median(total_v), "volctl_min": min(total_v),
                 "volctl_max": max(total_v), "bare_median": statistics.median(total_b), "bare_min": min(total_b),
                 "bare_max": max(total_b), "bare_is_floor": False, "runs": ["all of the above"],
                 "ratio": statistics.median(total_v) / statistics.median(total_b)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="write the results as JSON here (a --rw directory)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the flow (default 3)")
    p.add_argument("--targets", default="0,100,1000", help="targets present for the connect measurement")
    p.add_argument("--cap", default="0:300,100:400,1000:900",
                   help="per-size time cap of the connect, N:SECONDS,... (default %(default)s)")
    a = p.parse_args()
    scratch = require_guest()
    caps = {int(k): float(v) for k, v in (x.split(":") for x in a.cap.split(","))}
    sizes = [int(x) for x in a.targets.split(",") if x]
    results: dict = {"guest": {"kernel": os.uname().release, "nproc": os.cpu_count()}, "reps": [], "connect_vs_targets": []}

    def save() -> None:
        if a.out:
            Path(a.out).write_text(json.dumps(results, indent=1))

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="volctl-bench-"))
    bench = Bench(work)
    # Bytecode for volctl into the guest's overlay (the host tree may have none or stale).
    sh(str(PYTHON), "-m", "compileall", "-q", str(REPO / "volctl"), env=bench.env)
    sh("pvcreate", "-qq", "-f", scratch)
    sh("vgcreate", "-qq", VG, scratch)
    # Warm-up, not timed: page cache over 9p, kernel modules loaded on first use.
    timed([str(VOLCTL), "--version"], bench.env)
    timed([str(PYTHON), "-c", "import sqlite3, volctl.cli, volctl.service, sqlite_utils"], bench.env)
    timed(["cinder-rtstool", "get-targets"], bench.env)
    timed(["lvs", VG], bench.env)
    # One whole flow, not timed: the first target loads iscsi_target_mod, and until then volctl
    # cannot read configfs and asks get-targets (one more cinder-rtstool call than a warm host).
    bench.volctl_flow("warm-up")
    # What a Python process costs in this guest, to read the overheads below against.
    startup = {
        "python -c pass": [str(PYTHON), "-c", "pass"],
        "volctl --version": [str(VOLCTL), "--version"],
        "python -c 'import volctl.cli, volctl.service'": [str(PYTHON), "-c", "import volctl.cli, volctl.service"],
        "python -c 'import sqlite_utils'": [str(PYTHON), "-c", "import sqlite_utils"],
        "cinder-rtstool (usage only: its imports)": ["cinder-rtstool"],
    }
    results["guest_startup"] = {label: statistics.median(timed(argv, bench.env, check=False)[0] for _ in range(3))
                                for label, argv in startup.items()}
    log("vm_flow: guest start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in results["guest_startup"].items()))
    results["setup_s"] = time.monotonic() - started
    log(f"vm_flow: setup {results['setup_s']:.1f} s; flow x{a.reps}")

    for r in range(a.reps):
        rep: dict = {}
        if r % 2 == 0:
            rep["volctl"] = bench.volctl_flow(f"flow{r}")
            rep["bare"] = bench.bare_flow(rep["volctl"])
        else:
            # Bare first needs the command list: after the warm-up it is the same every rep.
            rep["bare"] = bench.bare_flow(results["reps"][-1]["volctl"])
            rep["volctl"] = bench.volctl_flow(f"flow{r}")
        results["reps"].append(rep)
        log(f"vm_flow: rep {r + 1}: volctl {sum(s['wall'] for s in rep['volctl'].values()):.1f} s, "
            f"bare {sum(s['total'] for s in rep['bare'].values()):.1f} s")
        save()
    results["flow"] = summarise(results["reps"])
    save()

    present = 0
    for n in sizes:
        filler = n - present
        fill = bench.fill(present, filler)
        present = n
        total = bench.rtstool_targets()
        name = f"conn{n}"
        created = bench.volctl("--json", "create", "--size", "1", "--name", name)
        log(f"vm_flow: {total} targets present (filled {filler} in {fill['seconds']:.1f} s); connect (cap {caps.get(n, 300):g} s)")
        res = bench.volctl("--json", "connect", name, "--initiator", INITIATOR, timeout=caps.get(n, 300.0))
        entry = {"fillers": n, "targets_present": total, "fill_seconds": fill["seconds"], "cap_s": caps.get(n, 300.0),
                 "create_wall": created["wall"], "connect": res}
        results["connect_vs_targets"].append(entry)
        log(f"vm_flow:   connect {'%.1f s' % res['wall'] if res['finished'] else 'did not finish within %g s' % entry['cap_s']}: "
            + ", ".join(f"{' '.join(c['argv'][:2])} {c['duration']:.1f}" for c in res["commands"]))
        save()
        if not res["finished"]:
            break  # a killed cinder-rtstool may leave LIO half-changed; larger sizes would only take longer
    results["total_s"] = time.monotonic() - started
    save()
    if not a.out:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
