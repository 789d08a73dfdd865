"""Issue 13's benchmarks on a real kernel, both target helpers in one boot, and issue 11's figure
of `volctl restore` with the default helper.

Runs INSIDE the vmrun guest only (bench/run --parts 4 does this):

    tests/vm/vmrun --rw OUT --scratch-size 1200G --disk IMG --mem 4096 --timeout 18000 -- \\
        .venv/bin/python bench/vm_helpers.py --out OUT/helpers.json [--quick]

Parts, in this order (--parts):
- flow: the seed's flow (create reserve export connect attach disconnect detach unexport delete)
  as `volctl` processes with target_helper = "rtslib", each step against its floor, one Python
  process doing what the step needs done with bare rtslib (bench/vm_floor.py); volctl and floor
  alternate which goes first from one repetition to the next.
- connect: with 0, 100, 1,000 filler targets present (bare rtslib, bench/vm_fill_targets.py),
  a new volume is created, then `volctl export` and `volctl connect` are timed, lioadm and
  rtslib; the volume is deleted again (with rtslib) so the count stays put. lioadm goes first at
  each size: its whole-config save writes the fillers into the saved config, as a host's file
  would hold them. One lioadm sample at 1,000 (each of its saves takes minutes).
- restore: on the second disk, an inventory of 10, 100, 1,000 recorded exports with one ACL each
  (bench/vm_inventory.py); at each size `targetctl clear`, then `volctl restore` (rtslib), and
  against it bench/vm_floor.py restore after another clear.
- the saved file after an rtslib connect at each size, against a full dump of what is live
  (bench/vm_save_equal.py).
- lioadm-restore: the 10- and 100-export inventories (copied aside when they were built, with
  their saved config) restored with the default helper after `targetctl clear`.
Every figure is a whole process's wall time; results are written to --out after every step.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401  (run as python -m cProfile below; imported so a missing one fails early)
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Stats  # noqa: E402
from vm_flow import PREFIX, PYTHON, TOOLS, VOLCTL, sh, timed  # noqa: E402  (also puts tests/vm on sys.path)
import vm_inventory  # noqa: E402
from guard import DISK_SERIAL, require_guest  # noqa: E402

from volctl.savefile import default_save_file  # noqa: E402

SAVE_FILE = Path(default_save_file())
CONFIGFS = Path("/sys/kernel/config/target/iscsi")
TARGETCTL = "/usr/bin/targetctl"  # Debian's, as rtslib-fb-targetctl.service runs it
VG, VG_RESTORE = "volctl-bench", "volctl-restore"
INITIATOR = "iqn.2024-01.test.volctl:bench1"
FLOW = ("create", "reserve", "export", "connect", "attach", "disconnect", "detach", "unexport", "delete")
FLOOR_BOOT = f"import sys; sys.path.insert(0, {str(HERE)!r}); import vm_floor; vm_floor.main()"


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def stats(values: list[float]) -> dict:
    return Stats.of(values).__dict__


def live_targets() -> int:
    return len([p for p in CONFIGFS.iterdir() if p.name.startswith("iqn.")]) if CONFIGFS.is_dir() else 0


class Volctl:
    """`volctl` processes with one config; what each ran, from the inventory's history."""

    def __init__(self, work: Path, db: Path, helper: str | None, vg: str, extra: str = ""):
        """helper None: target_helper left at its default; extra: more settings, a line each."""
        self.db = db
        config = work / (f"{vg}-{helper}.toml" if helper else f"{vg}.toml")
        config.write_text(f'volume_group = "{vg}"\ntarget_ip_address = "127.0.0.1"\nvolume_clear = "none"\n'
                          + (f'target_helper = "{helper}"\n' if helper else "") + extra)
        self.config = config
        self.env = {**os.environ, "VOLCTL_DB": str(db), "VOLCTL_CONFIG": str(config),
                    "PATH": f"{TOOLS}:{os.environ['PATH']}", "PYTHONWARNINGS": "ignore", "LC_ALL": "C"}
        self.env.pop("PYTHONPYCACHEPREFIX", None)

    def _mark(self) -> int:
        if not self.db.exists():
            return 0
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def __call__(self, *args: str, timeout: float | None = None, prefix: tuple[str, ...] = (), check: bool = True) -> dict:
        """check=False: a failed command is a result (rc, error), not an exception."""
        mark = self._mark()
        wall, done = timed([*prefix, str(VOLCTL), "--json", *args], self.env, timeout=timeout, check=check)
        with sqlite3.connect(self.db) as c:
            rows = c.execute("SELECT argv, duration FROM events WHERE id > ? AND kind = 'command' ORDER BY id", [mark])
            commands = [{"argv": json.loads(a), "duration": d} for a, d in rows]
        out = None
        if done is not None and done.stdout.strip():
            try:
                out = json.loads(done.stdout)
            except ValueError:
                out = None
        result = {"wall": wall, "finished": done is not None, "commands": commands,
                  "external": sum(c["duration"] or 0 for c in commands), "out": out}
        if done is not None and done.returncode:
            result.update(rc=done.returncode, error=done.stderr.strip()[-600:])
        return result


def floor(step: str, env: dict, **options) -> tuple[float, dict]:
    argv = [str(PYTHON), "-c", FLOOR_BOOT, step]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    wall, done = timed(argv, env)
    return wall, json.loads(done.stdout)


def short(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "cinder-rtstool" else argv[0]


def top_functions(path: Path, n: int = 60) -> list[dict]:
    p = pstats.Stats(str(path))
    rows = sorted(p.stats.items(), key=lambda kv: kv[1][3], reverse=True)[:n]
    return [{"function": f"{Path(f).name}:{line}({name})", "ncalls": nc, "tottime": round(tt, 3), "cumtime": round(ct, 3)}
            for (f, line, name), (_, nc, tt, ct, _) in rows]


def top_imports(stderr: str, n: int = 15) -> list[dict]:
    """`-X importtime` lines of top-level imports (no indent), largest cumulative first."""
    out = []
    for line in stderr.splitlines():
        raw = line[len("import time:"):].split("|") if line.startswith("import time:") else []
        if len(raw) != 3 or not raw[1].strip().isdigit():
            continue
        if raw[2][1:2] == " ":  # nested: counted in its parent's cumulative time
            continue
        out.append({"module": raw[2].strip(), "cumulative_s": int(raw[1]) / 1e6})
    return sorted(out, key=lambda x: x["cumulative_s"], reverse=True)[:n]


# -- flow -----------------------------------------------------------------------------------------

def flow_volctl(v: Volctl, name: str) -> dict:
    s = {"create": v("create", "--size", "1", "--name", name)}
    vid = s["create"]["out"]["id"]
    s["reserve"] = v("reserve", name)
    s["export"] = v("export", name)
    s["connect"] = v("connect", name, "--initiator", INITIATOR)
    s["attach"] = v("attach", name, "--instance", str(uuid.uuid4()), "--host", "bench-host", "--mountpoint", "/dev/vdb")
    s["disconnect"] = v("disconnect", name, "--initiator", INITIATOR)
    s["detach"] = v("detach", name)
    s["unexport"] = v("unexport", name)
    s["delete"] = v("delete", name)
    return {"id": vid, "steps": {k: {x: y for x, y in r.items() if x != "out"} for k, r in s.items()}}


def flow_floor(v: Volctl, template: dict) -> dict:
    fid = str(uuid.uuid4())
    lv = f"volume-{fid}"
    common = {"db": v.db, "row": "floor-row", "iqn": PREFIX + lv, "dev": f"/dev/{VG}/{lv}", "save": SAVE_FILE,
              "user": "benchUser23456789abcd", "password": "benchPass234567A", "initiator": INITIATOR}
    out = {}
    for step in FLOW:
        commands = [[arg.replace(template["id"], fid) for arg in c["argv"]] for c in template["steps"][step]["commands"]]
        wall, _ = floor(step, v.env, commands=json.dumps(commands), **common)
        out[step] = wall
    return out


def run_flow(v: Volctl, reps: int, results: dict, save) -> None:
    v("create", "--size", "1", "--name", "floor-row")  # the row every floor step's SQLite write updates
    flow_volctl(v, "warm-up")  # not timed: first rtslib use in the boot, first LV
    reps_out = results.setdefault("flow", {"reps": []})["reps"]
    for r in range(reps):
        if r % 2 == 0:
            vol = flow_volctl(v, f"flow{r}")
            bare = flow_floor(v, vol)
        else:
            bare = flow_floor(v, reps_out[-1]["volctl"])
            vol = flow_volctl(v, f"flow{r}")
        reps_out.append({"volctl": vol, "floor": bare})
        log(f"flow rep {r + 1}: volctl {sum(s['wall'] for s in vol['steps'].values()):.1f} s, floor {sum(bare.values()):.1f} s")
        save()
    rows = []
    for step in FLOW + ("total",):
        if step == "total":
            walls = [sum(r["volctl"]["steps"][s]["wall"] for s in FLOW) for r in reps_out]
            floors = [sum(r["floor"].values()) for r in reps_out]
            programs = []
        else:
            walls = [r["volctl"]["steps"][step]["wall"] for r in reps_out]
            floors = [r["floor"][step] for r in reps_out]
            programs = [short(c["argv"]) for c in reps_out[0]["volctl"]["steps"][step]["commands"]]
        rows.append({"step": step, "volctl": stats(walls), "floor": stats(floors), "programs": programs,
                     "ratio": statistics.median(walls) / statistics.median(floors)})
    results["flow"]["summary"] = rows
    # Where a step's time goes: imports of one export, and a profile of one connect.
    name = "flow-profile"
    v("create", "--size", "1", "--name", name)
    _, done = timed([str(PYTHON), "-X", "importtime", str(VOLCTL), "--json", "export", name], v.env)
    results["flow"]["export_imports"] = top_imports(done.stderr)
    prof = Path(results["_out_dir"]) / "flow-connect.pstats"
    v("connect", name, "--initiator", INITIATOR, prefix=(str(PYTHON), "-m", "cProfile", "-o", str(prof)))
    results["flow"]["connect_profile"] = top_functions(prof)
    v("delete", name)
    save()


# -- connect vs targets ---------------------------------------------------------------------------

def run_connect(vs: dict[str, Volctl], sizes: list[int], samples: dict[str, int], caps: dict[str, float],
                results: dict, save, equality: bool = True) -> None:
    entries = results.setdefault("connect", [])
    present = 0
    for n in sizes:
        if n > present:
            fill = json.loads(sh(str(TOOLS / "python"), str(HERE / "vm_fill_targets.py"), str(present), str(n - present),
                                 env=vs["rtslib"].env))
            log(f"connect: filled {n - present} targets in {fill['seconds']:.1f} s")
            if "lioadm" not in vs and (equality or n < 1000):  # nothing else writes the fillers into the saved config
                sh(str(TOOLS / "python"), "-c", f"import rtslib_fb; rtslib_fb.RTSRoot().save_to_file({str(SAVE_FILE)!r})")
            elif "lioadm" not in vs:  # copies of one filler's entries: a full dump of 1,000 takes ~12 minutes
                sh(str(TOOLS / "python"), str(HERE / "vm_fill_targets.py"), "--saved", str(SAVE_FILE), "0", str(n),
                   env=vs["rtslib"].env)
            present = n
        for helper, v in vs.items():
            k = 1 if helper == "lioadm" and n >= 1000 else samples[helper]
            for s in range(k):
                name = f"c-{helper}-{n}-{s}"
                v("create", "--size", "1", "--name", name)
                entry = {"helper": helper, "fillers": n, "targets_present": live_targets(), "sample": s}
                # A failure is a figure too: lioadm's connect at 1,000 targets on a loaded guest ran
                # into volctl's 600 s limit on one program (its save) and exited 6.
                entry["export"] = v("export", name, timeout=caps[helper], check=False)
                if entry["export"]["finished"] and "rc" not in entry["export"]:
                    entry["connect"] = v("connect", name, "--initiator", INITIATOR, timeout=caps[helper], check=False)
                for key in ("export", "connect"):
                    e = entry.get(key)
                    if e:
                        e.pop("out", None)
                        log(f"connect: {helper} at {entry['targets_present']}: {key} "
                            + (f"{e['wall']:.1f} s" if e["finished"] else f"killed at {caps[helper]:g} s")
                            + (f" FAILED (exit {e['rc']}: {e['error'][-200:]})" if "rc" in e else "") + " "
                            + ", ".join(f"{short(c['argv'])} {c['duration'] or 0:.1f}" for c in e["commands"]))
                entries.append(entry)
                save()
                try:
                    vs["rtslib"]("delete", name, timeout=1800)
                except RuntimeError as e:  # after a killed export: the count is off by one, said in the log
                    log(f"connect: delete {name} failed: {e}")
        if "lioadm" in vs:
            # The bare whole-config save lioadm pays on every change, with no time limit; it also
            # leaves the fillers in the saved config for the rtslib samples, whatever lioadm did.
            wall, done = timed(["cinder-rtstool", "save", str(SAVE_FILE)], vs["lioadm"].env, timeout=caps["lioadm"], check=False)
            results.setdefault("bare_save", {})[str(n)] = {"wall": wall, "finished": done is not None,
                                                           "targets_present": live_targets()}
            log(f"connect: bare cinder-rtstool save at {live_targets()} targets: {wall:.1f} s")
            save()
        if "rtslib" in vs:  # where an rtslib connect spends its time at this size
            v = vs["rtslib"]
            name = f"c-profile-{n}"
            v("create", "--size", "1", "--name", name)
            v("export", name)
            prof = Path(results["_out_dir"]) / f"connect-rtslib-{n}.pstats"
            v("connect", name, "--initiator", INITIATOR, prefix=(str(PYTHON), "-m", "cProfile", "-o", str(prof)))
            results.setdefault("connect_profiles", {})[str(n)] = top_functions(prof)
            if not equality and n >= 1000:  # the saved file holds copies, not what is live
                save()
                v("delete", name)
                continue
            # the file after a merge of one target and its ACL, against a full dump of what is live
            check = json.loads(sh(str(PYTHON), str(HERE / "vm_save_equal.py"), str(SAVE_FILE), env=v.env))
            results.setdefault("save_equality", {})[str(n)] = check
            log(f"connect: saved file at {check['targets']} targets equal to a full save: {check['equal']} "
                f"(full dump {check['full_dump_s']:.1f} s) {check['differences'][:3]}")
            v("delete", name)
            save()


def summarise_connect(entries: list[dict]) -> list[dict]:
    rows = []
    for key in sorted({(e["helper"], e["fillers"]) for e in entries}, key=lambda k: (k[1], k[0])):
        mine = [e for e in entries if (e["helper"], e["fillers"]) == key]
        row = {"helper": key[0], "fillers": key[1], "targets_present": sorted({e["targets_present"] for e in mine}),
               "samples": len(mine)}
        for step in ("export", "connect"):
            ran = [e[step] for e in mine if e.get(step)]
            done = [d for d in ran if d["finished"] and "rc" not in d]
            if done:
                row[step] = stats([d["wall"] for d in done])
                parts: dict[str, list[float]] = {}
                for d in done:
                    for c in d["commands"]:
                        parts.setdefault(short(c["argv"]), []).append(c["duration"] or 0)
                row[f"{step}_programs"] = {k: statistics.median(x) for k, x in parts.items()}
            row[f"{step}_killed"] = sum(1 for d in ran if not d["finished"])
            row[f"{step}_failed"] = [{"wall": d["wall"], "rc": d["rc"], "error": d["error"][-300:]} for d in ran if "rc" in d]
        rows.append(row)
    return rows


# -- restore --------------------------------------------------------------------------------------

def clear() -> float:
    started = time.perf_counter()
    sh(TARGETCTL, "clear")
    if live_targets():
        raise RuntimeError(f"{live_targets()} targets live after targetctl clear")
    return time.perf_counter() - started


def timed_restore(v: Volctl, expect: int, timeout: float, prefix: tuple[str, ...] = ()) -> dict:
    r = v("restore", timeout=timeout, prefix=prefix)
    if not r["finished"]:
        return {"wall": r["wall"], "finished": False}
    report = r["out"] or {}
    got = {k: len(report.get(k, [])) for k in ("restored", "present", "failed")}
    if got["failed"] or got["restored"] + got["present"] != expect:
        raise RuntimeError(f"volctl restore of {expect}: {report if got['failed'] else got}")
    programs: dict[str, float] = {}
    for c in r["commands"]:
        programs[short(c["argv"])] = programs.get(short(c["argv"]), 0) + (c["duration"] or 0)
    return {"wall": r["wall"], "finished": True, **got, "saved": report.get("saved"), "programs": programs,
            "program_runs": len(r["commands"])}


def run_restore(work: Path, sizes: list[int], samples: int, lioadm_sizes: list[int], snapshots: dict, results: dict,
                save, profile: bool = True) -> None:
    out = results.setdefault("restore", {"sizes": {}})
    out["clear_before_s"] = clear()
    SAVE_FILE.unlink(missing_ok=True)
    disk = require_guest("VMRUN_DISK", DISK_SERIAL)
    sh("pvcreate", "-qq", "-ff", "-y", "--metadatasize", "16m", disk)
    sh("vgcreate", "-qq", VG_RESTORE, disk)
    ids = vm_inventory.volume_ids(max(sizes))
    (work / "ids.json").write_text(json.dumps(ids))
    out["lvs"] = vm_inventory.make_lvs(VG_RESTORE, [f"volume-{i}" for i in ids])
    log(f"restore: {out['lvs']}")
    db = work / "restore" / "volctl.db"
    db.parent.mkdir(mode=0o700)
    v = Volctl(work, db, "rtslib", VG_RESTORE)
    built = 0
    for n in sizes:
        b = json.loads(sh(str(PYTHON), str(HERE / "vm_inventory.py"), "--db", str(db), "--config", str(v.config),
                          "--ids", str(work / "ids.json"), "--first", str(built), "--count", str(n - built), env=v.env))
        built = n
        log(f"restore: built {n}: {b}")
        size = out["sizes"][str(n)] = {"build": b, "restore": [], "floor": [], "clear_s": []}
        if n in lioadm_sizes:
            snap = work / f"snap-{n}"
            snap.mkdir(mode=0o700)
            with sqlite3.connect(db) as src, sqlite3.connect(snap / "volctl.db") as dst:
                src.backup(dst)
            shutil.copy2(SAVE_FILE, snap / "saveconfig.json")
            snapshots[n] = snap
        k = samples if n < 1000 else 1
        for j in range(k):
            for what in (("restore", "floor") if j % 2 == 0 else ("floor", "restore")):
                size["clear_s"].append(clear())
                if what == "restore":
                    r = timed_restore(v, n, timeout=7200)
                    size["restore"].append(r)
                else:
                    copy = work / "floor-saveconfig.json"
                    shutil.copy2(SAVE_FILE, copy)
                    wall, inside = floor("restore", v.env, db=db, vg=VG_RESTORE, save=copy)
                    if inside["exports"] != n:
                        raise RuntimeError(f"floor restored {inside['exports']} of {n}")
                    size["floor"].append({"wall": wall, **inside})
                log(f"restore: {n}: {what} {size[what][-1]['wall']:.1f} s")
                save()
        size["restore_again"] = timed_restore(v, n, timeout=7200)  # everything live: nothing to do
        log(f"restore: {n}: again {size['restore_again']['wall']:.1f} s")
        if profile and (n == 100 or (n == max(sizes) and 100 not in sizes)):
            clear()
            prof = Path(results["_out_dir"]) / f"restore-rtslib-{n}.pstats"
            timed_restore(v, n, timeout=7200, prefix=(str(PYTHON), "-m", "cProfile", "-o", str(prof)))
            size["profile"] = top_functions(prof, 30)
        save()


def run_lioadm_restore(work: Path, snapshots: dict, results: dict, save) -> None:
    out = results.setdefault("lioadm_restore", {})
    for n, snap in sorted(snapshots.items()):
        clear()
        db = work / f"lioadm-{n}" / "volctl.db"
        db.parent.mkdir(mode=0o700)
        shutil.copy2(snap / "volctl.db", db)
        db.chmod(0o600)
        shutil.copy2(snap / "saveconfig.json", SAVE_FILE)
        v = Volctl(work, db, "lioadm", VG_RESTORE)
        log(f"lioadm restore: {n} exports")
        r = out[str(n)] = {"restore": timed_restore(v, n, timeout=14400)}
        save()
        log(f"lioadm restore: {n}: {r['restore']['wall']:.1f} s {r['restore'].get('programs')}")
        if r["restore"]["finished"]:
            r["restore_again"] = timed_restore(v, n, timeout=3600)
            save()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="results JSON (in a --rw directory)")
    p.add_argument("--quick", action="store_true", help="smoke sizes: 1 flow rep, 0/10 targets, 3/10 exports")
    p.add_argument("--parts", default="flow,connect,restore,lioadm-restore")
    p.add_argument("--helpers", default="lioadm,rtslib", help="for the connect part")
    p.add_argument("--targets", help="filler targets for the connect part (default 0,100,1000; quick 0,10)")
    p.add_argument("--samples", help="connect part samples per size, HELPER:N,... (default rtslib:5,lioadm:2; "
                                     "lioadm runs once at 1,000 and more)")
    p.add_argument("--restore-sizes", help="recorded exports for the restore part (default 10,100,1000; quick 3,10)")
    p.add_argument("--restore-samples", type=int, help="restore and floor samples per size under 1,000 (default 2)")
    p.add_argument("--lioadm-sizes", help="of those, the sizes restored with lioadm too (default 10,100; quick 3)")
    p.add_argument("--no-restore-profile", action="store_true", help="skip the profiled restore")
    p.add_argument("--no-equality", action="store_true", help="connect part: at 1,000 targets and more, write the fillers' saved entries as copies "
                                                             "and skip the check against a full dump (~12 min each)")
    a = p.parse_args()
    scratch = require_guest()
    parts = set(a.parts.split(","))
    q = a.quick
    flow_reps = 1 if q else 5
    sizes = [int(x) for x in a.targets.split(",")] if a.targets else ([0, 10] if q else [0, 100, 1000])
    samples = {"rtslib": 2, "lioadm": 1} if q else {"rtslib": 5, "lioadm": 2}
    if a.samples:
        samples.update({k: int(v) for k, v in (x.split(":") for x in a.samples.split(","))})
    restore_sizes = [int(x) for x in a.restore_sizes.split(",")] if a.restore_sizes else ([3, 10] if q else [10, 100, 1000])
    restore_samples = a.restore_samples or (1 if q else 2)
    if a.lioadm_sizes is not None:  # "" for none
        lioadm_sizes = [int(x) for x in a.lioadm_sizes.split(",") if x]
    else:
        lioadm_sizes = [3] if q else [10, 100]
    out = Path(a.out)
    results: dict = {"mode": "quick" if q else "full", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "guest": {"kernel": os.uname().release, "nproc": os.cpu_count()}, "_out_dir": str(out.parent)}
    started = time.monotonic()

    def save() -> None:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        out.write_text(json.dumps(results, indent=1))

    work = Path(tempfile.mkdtemp(prefix="volctl-helpers-", dir="/var/tmp"))
    env0 = {**os.environ}
    env0.pop("PYTHONPYCACHEPREFIX", None)
    # Bytecode for volctl and the floors into the guest's overlay (the host tree may have none).
    sh(str(PYTHON), "-m", "compileall", "-q", str(HERE.parent / "volctl"), str(HERE / "vm_floor.py"), env=env0)
    results["volctl_file"] = sh(str(PYTHON), "-c", "import volctl; print(volctl.__file__)", env=env0).strip()
    sh("pvcreate", "-qq", "-f", scratch)
    sh("vgcreate", "-qq", VG, scratch)
    db = work / "state" / "volctl.db"
    vs = {h: Volctl(work, db, h, VG) for h in ("lioadm", "rtslib")}
    for argv in ([str(VOLCTL), "--version"], [str(PYTHON), "-c", "import rtslib_fb, volctl.cli, volctl.service"],
                 ["cinder-rtstool", "get-targets"], ["lvs", VG]):
        timed(argv, vs["rtslib"].env, check=False)  # page cache over 9p, modules loaded on first use
    results["guest_startup"] = {
        label: statistics.median(timed(argv, vs["rtslib"].env, check=False)[0] for _ in range(3))
        for label, argv in {"python -c pass": [str(PYTHON), "-c", "pass"],
                            "python -c 'import rtslib_fb'": [str(PYTHON), "-c", "import rtslib_fb"],
                            "volctl --version": [str(VOLCTL), "--version"]}.items()}
    log(f"start-up: {results['guest_startup']}")
    save()
    def part(name: str, run) -> object:
        """A part that fails is recorded and the next one still runs."""
        if name not in parts:
            return None
        log(f"part {name}")
        try:
            return run()
        except Exception as e:  # noqa: BLE001  (recorded, and the run goes on)
            import traceback

            results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]
            log(f"part {name} FAILED: {e}")
            save()
            return None

    if "rtslib" not in a.helpers.split(","):
        raise SystemExit("--helpers must include rtslib (deletes go through it)")
    part("flow", lambda: run_flow(vs["rtslib"], flow_reps, results, save))
    part("connect", lambda: run_connect({h: vs[h] for h in a.helpers.split(",")}, sizes, samples,
                                        {"lioadm": 1800.0, "rtslib": 600.0}, results, save,
                                        equality=not a.no_equality))
    if results.get("connect"):
        results["connect_summary"] = summarise_connect(results["connect"])
        save()
    snapshots: dict = {}  # filled as the restore part builds them, so a later failure there keeps them
    part("restore", lambda: run_restore(work, restore_sizes, restore_samples, lioadm_sizes, snapshots, results, save,
                                            profile=not a.no_restore_profile))
    if snapshots:
        part("lioadm-restore", lambda: run_lioadm_restore(work, snapshots, results, save))
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save()
    log(f"done in {results['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
