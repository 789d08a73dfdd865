"""Issue 21's benchmarks on a real kernel: NVMe/TCP through the kernel's nvmet, in one guest boot.

- connect: with 0, 100 and 1,000 filler subsystems present (bench/vm_nvmet_bare.py fill: written
  bare in one process, each closed to unknown hosts with one allowed host, namespace 10 and port 1,
  and all in the saved nvmet config, as on a host where volctl made them), a new volume is created
  (not timed) and `volctl connect NEW --protocol nvmet_tcp --initiator HOST` is timed: the export
  and the host's access in one command. SAMPLES per size; each sample's volume is deleted again so
  the count stays put. Then the fillers are removed and 0 is measured once more (how far the
  machine drifted over the run), and one connect at each size runs under cProfile.
- restore: on the second disk, N LVs (one vgcfgrestore) and an inventory of N NVMe/TCP exports
  with one connection (its own host NQN) each, rows as `volctl connect` leaves them, and the saved
  config a first `volctl restore` writes; then at each N, with nothing live in nvmet (bare clear,
  as after a reboot), `volctl restore` against bench/vm_nvmet_bare.py restore (the same configfs objects written bare in one
  process, and one save of them), alternating which goes first; "again": a restore with
  everything live. One restore at each N runs under cProfile.

Runs INSIDE the vmrun guest only, Debian's stock kernel (no in-band authentication: no keys):

    tests/vm/vmrun --rw OUT --scratch-size 1100G --disk OUT/restore-disk.img --mem 4096 --timeout 21600 -- \\
        .venv/bin/python bench/vm_nvme.py --out OUT/nvme.json [--quick]
    .venv/bin/python bench/vm_nvme.py --report OUT/nvme.json      # the tables for BENCHMARKS.md (on the host)

Every figure is a whole process's wall time; results are written to --out after every step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests" / "vm")]

VOLCTL = HERE.parent / ".venv" / "bin" / "volctl"
PYTHON = HERE.parent / ".venv" / "bin" / "python"
TOOLS = HERE.parent / ".cache" / "vm" / "tools" / "bin"
BARE = HERE / "vm_nvmet_bare.py"
NVMET = Path("/sys/kernel/config/nvmet")
SAVE_FILE = Path("/etc/nvmet/config.json")  # nvmet_save_file's default
VG, VG_RESTORE = "volctl-nvbench", "volctl-nvrestore"
HOST = "nqn.2014-08.org.nvmexpress.volctl:bench-compute1"
RESTORE_HOST = "nqn.2014-08.org.nvmexpress.volctl:restore-"
FILLER_PREFIX = "nqn.nvme-subsystem-1-b0000000-"  # bench/vm_nvmet_bare.py's filler volume ids
GOAL = 1.3


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def stats(values: list[float]) -> dict:
    values = sorted(values)
    return {"n": len(values), "median": statistics.median(values), "min": values[0], "max": values[-1]}


def subsystems() -> int:
    path = NVMET / "subsystems"
    return len(os.listdir(path)) if path.is_dir() else 0


def nvme_volctl(work: Path, db: Path, vg: str):
    """`volctl` processes whose new exports are NVMe/TCP (vm_helpers.Volctl: what each ran, from the history)."""
    from vm_helpers import Volctl

    return Volctl(work, db, None, vg, extra='target_protocol = "nvmet_tcp"\n')


def bare(*args: str, env: dict) -> tuple[float, dict]:
    from vm_flow import timed

    wall, done = timed([str(PYTHON), str(BARE), *args], env)
    return wall, json.loads(done.stdout)


def profiled(v, out_dir: Path, label: str, *args: str) -> list[dict]:
    from vm_helpers import top_functions

    prof = out_dir / f"{label}.pstats"
    v(*args, prefix=(str(PYTHON), "-m", "cProfile", "-o", str(prof)))
    return top_functions(prof, 40)


# -- connect with N subsystems present -------------------------------------------------------------

def run_connect(v, sizes: list[int], samples: int, device: str, results: dict, save, out_dir: Path) -> None:
    out = results.setdefault("connect", {"samples": [], "fills": [], "profiles": {}})
    present = 0
    plan = [(n, "up") for n in sizes] + [(0, "again")]
    for n, phase in plan:
        if phase == "again":
            wall, done = bare("drop-fillers", "--save", str(SAVE_FILE), env=v.env)
            out["fills"].append({"dropped": done, "wall": wall})
            present = 0
        elif n > present:
            wall, done = bare("fill", "--first", str(present), "--count", str(n - present), "--device", device,
                              "--save", str(SAVE_FILE), env=v.env)
            out["fills"].append({"to": n, "wall": round(wall, 1), **done})
            log(f"connect: filled {n - present} subsystems in {wall:.1f} s ({done})")
            present = n
        for s in range(samples):
            name = f"c-{phase}-{n}-{s}"
            v("create", "--size", "1", "--name", name)
            before = subsystems()
            r = v("connect", name, "--protocol", "nvmet_tcp", "--initiator", HOST)
            info = (r["out"] or {}).get("driver_volume_type")
            if info != "nvmeof":
                raise RuntimeError(f"connect {name}: {r}")
            out["samples"].append({"fillers": n, "phase": phase, "subsystems_before": before, "wall": r["wall"],
                                   "commands": r["commands"]})
            log(f"connect: {before} subsystems present ({phase}): {r['wall']:.2f} s")
            v("delete", name)  # the export goes with it: the count stays put
            save()
        if phase == "up" or n == 0:
            name = f"c-profile-{phase}-{n}"
            v("create", "--size", "1", "--name", name)
            out["profiles"][f"{phase}-{n}"] = profiled(v, out_dir, f"connect-{phase}-{n}", "connect", name,
                                                       "--protocol", "nvmet_tcp", "--initiator", HOST)
            v("delete", name)
            save()
    rows = []
    for n, phase in plan:
        walls = [x["wall"] for x in out["samples"] if (x["fillers"], x["phase"]) == (n, phase)]
        rows.append({"fillers": n, "phase": phase, **stats(walls)})
    base = next(r for r in rows if r["fillers"] == 0 and r["phase"] == "up")["median"]
    for r in rows:
        r["ratio_to_0"] = r["median"] / base
    out["summary"] = rows
    save()


# -- restore of N exports against the bare objects ------------------------------------------------

def build_inventory(db: Path, config: Path, ids: list[str], first: int, count: int) -> dict:
    """N exported volumes, each with one connection, written as `volctl connect --protocol nvmet_tcp`
    leaves them (provider_location, the helper and protocol of the export, the connection's host
    NQN and connector): nothing live, as after a reboot. A connect per volume through volctl would
    rewrite the saved config each time (minutes at 1,000 under TCG); the first restore writes it."""
    from volctl import nvmeof
    from volctl.config import load_settings
    from volctl.inventory import Inventory, now
    from volctl.model import Connection

    settings = load_settings(str(config))
    nvme = nvmeof.NvmeConfig(settings.nvmet_target_prefix, settings.portal_ips, settings.nvmet_target_port,
                             settings.nvmet_port_id, settings.nvmet_ns_id, settings.nvmeof_conn_info_version)
    started = time.monotonic()
    inv = Inventory.open(db, create=True)
    with inv.write():
        for i in range(first, first + count):
            stamp, host = now(), f"{RESTORE_HOST}{i:04d}"
            inv.add_volume(id=ids[i], name=f"r{i:04d}", size=1, status="available", attach_status="detached",
                           multiattach=0, volume_group=settings.volume_group, lv_name=settings.lv_name(ids[i]),
                           provider_location=nvmeof.provider_location(nvme.ips, nvme.port, nvme.nqn(ids[i]), nvme.ns_id),
                           target_helper="nvmet", export_protocol=nvmeof.PROTOCOL, created_at=stamp, updated_at=stamp)
            inv.add_connection(Connection(ids[i], host, {"nqn": host}, stamp))
    inv.close()
    return {"volumes": count, "rows_s": round(time.monotonic() - started, 2)}


def run_restore(work: Path, sizes: list[int], samples: int, results: dict, save, out_dir: Path, profile: bool) -> None:
    import vm_inventory
    from guard import DISK_SERIAL, require_guest
    from vm_flow import sh

    out = results.setdefault("restore", {"sizes": {}})
    disk = require_guest("VMRUN_DISK", DISK_SERIAL)
    sh("pvcreate", "-qq", "-ff", "-y", "--metadatasize", "16m", disk)
    sh("vgcreate", "-qq", VG_RESTORE, disk)
    ids = vm_inventory.volume_ids(max(sizes), seed=21)
    out["lvs"] = vm_inventory.make_lvs(VG_RESTORE, [f"volume-{i}" for i in ids])
    log(f"restore: {out['lvs']}")
    db = work / "restore" / "volctl.db"
    db.parent.mkdir(mode=0o700)
    v = nvme_volctl(work, db, VG_RESTORE)
    run_probes(v.env, VG_RESTORE, results, save)
    bare("clear", env=v.env)  # the connect part's port and anything else: the inventory is the whole host
    SAVE_FILE.unlink(missing_ok=True)
    built = 0
    for n in sizes:
        b = build_inventory(db, v.config, ids, built, n - built)
        built = n
        bare("clear", env=v.env)
        first = v("restore")  # not timed against the floor: it also writes the saved config the first time
        b["first_restore_s"] = first["wall"]
        if subsystems() != n:
            raise RuntimeError(f"the first restore of {n}: {json.dumps(first['out'])[:800]}")
        log(f"restore: built {n}: {b}")
        saved_copy = work / f"saved-{n}.json"
        shutil.copy2(SAVE_FILE, saved_copy)  # the saved config as the host had it before the "reboot"
        size = out["sizes"][str(n)] = {"build": b, "restore": [], "floor": [], "clear_s": []}
        for j in range(samples):
            for what in (("restore", "floor") if j % 2 == 0 else ("floor", "restore")):
                wall, cleared = bare("clear", env=v.env)
                size["clear_s"].append(round(wall, 1))
                if subsystems():
                    raise RuntimeError(f"{subsystems()} subsystems live after the clear")
                if what == "restore":
                    shutil.copy2(saved_copy, SAVE_FILE)
                    r = v("restore")
                    report = r["out"] or {}
                    if report.get("failed") or len(report.get("restored", [])) != n:
                        raise RuntimeError(f"volctl restore of {n}: {json.dumps(report)[:800]}")
                    size["restore"].append({"wall": r["wall"], "commands": r["commands"], "saved": report.get("saved")})
                else:
                    floor_save = work / "floor-config.json"
                    shutil.copy2(saved_copy, floor_save)
                    wall, inside = bare("restore", "--db", str(db), "--vg", VG_RESTORE, "--save", str(floor_save), env=v.env)
                    if inside["exports"] != n:
                        raise RuntimeError(f"the floor restored {inside['exports']} of {n}")
                    size["floor"].append({"wall": round(wall, 3), **{k: round(x, 3) for k, x in inside.items()}})
                if subsystems() != n:
                    raise RuntimeError(f"{what}: {subsystems()} subsystems live, {n} recorded")
                log(f"restore: {n}: {what} {size[what][-1]['wall']:.1f} s")
                save()
        again = v("restore")
        size["restore_again"] = {"wall": again["wall"], "commands": again["commands"],
                                 "present": len((again["out"] or {}).get("present", []))}
        log(f"restore: {n}: again {again['wall']:.1f} s")
        if profile:
            bare("clear", env=v.env)
            shutil.copy2(saved_copy, SAVE_FILE)
            size["profile"] = profiled(v, out_dir, f"restore-{n}", "restore")
        walls = [x["wall"] for x in size["restore"]]
        floors = [x["wall"] for x in size["floor"]]
        size["summary"] = {"restore": stats(walls), "floor": stats(floors),
                           "ratio": statistics.median(walls) / statistics.median(floors)}
        save()


# -- what a restore pays whatever N: each program on its own -------------------------------------

PROBE = """
import json, subprocess, sys, time
argv, how, reps = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if how != "bare":  # the modules a `volctl restore` process has loaded by then
    import volctl.cli, volctl.commands.restore, volctl.restore, volctl.service  # noqa
    from volctl.lvm import host_for
    from volctl.runner import Runner
    env = host_for("auto").env if argv[0] == "lvs" else {}
times = []
for _ in range(reps):
    t = time.perf_counter()
    if how == "runner":
        Runner().run(argv, env=env)
    else:
        subprocess.run(argv, capture_output=True, check=True)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def run_probes(env: dict, vg: str, results: dict, save, reps: int = 3) -> None:
    """The two programs `volctl restore` runs on an NVMe/TCP-only host (`lvs` of the group, and
    `cinder-rtstool get-targets`, which the LIO helper runs for its saved-config check when
    configfs has no iSCSI fabric), each from a bare Python (subprocess) and from a process with
    volctl's restore modules loaded, through volctl's Runner (the sh library) and through
    subprocess; and volctl's start-up (`volctl --version`)."""
    from vm_flow import sh, timed

    out = results.setdefault("probes", {})
    lvs = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
           "vg_name,lv_name,lv_size,lv_attr,lv_path,pool_lv", vg]
    rtstool = ["cinder-rtstool", "get-targets"]
    for label, argv in (("lvs", lvs), ("cinder-rtstool get-targets", rtstool)):
        for how in ("bare", "loaded-subprocess", "runner"):
            times = json.loads(sh(str(PYTHON), "-c", PROBE, json.dumps(argv), how, str(reps), env=env))
            out[f"{label} / {how}"] = stats(times)
            log(f"probe: {label} from {how}: {statistics.median(times):.2f} s")
            save()
    out["volctl --version"] = stats([timed([str(VOLCTL), "--version"], env)[0] for _ in range(reps)])
    out["python -c pass"] = stats([timed([str(PYTHON), "-c", "pass"], env)[0] for _ in range(reps)])
    save()


# -- the report ----------------------------------------------------------------------------------------

def report(path: Path) -> None:
    r = json.loads(path.read_text())
    print(f"guest {r.get('guest')}, started {r.get('started')}, {r.get('elapsed_s')} s\n")
    c = r.get("connect", {})
    if c.get("summary"):
        print("| subsystems present | connect, median [min-max] | samples | ratio to 0 |")
        print("|---|---|---|---|")
        for row in c["summary"]:
            label = f"{row['fillers']:,}" + (" (again, fillers removed)" if row["phase"] == "again" else "")
            print(f"| {label} | {row['median']:.2f} s [{row['min']:.2f}-{row['max']:.2f}] | {row['n']} | {row['ratio_to_0']:.2f}x |")
        print()
    for label, s in r.get("probes", {}).items():
        print(f"probe {label}: {s['median']:.2f} s [{s['min']:.2f}-{s['max']:.2f}]")
    for n, size in r.get("restore", {}).get("sizes", {}).items():
        s = size.get("summary")
        if not s:
            continue
        floor_parts = {k: statistics.median(f[k] for f in size["floor"]) for k in ("read_s", "lvs_s", "create_s", "save_s")}
        print(f"restore {n}: volctl {s['restore']['median']:.1f} s [{s['restore']['min']:.1f}-{s['restore']['max']:.1f}], "
              f"floor {s['floor']['median']:.1f} s [{s['floor']['min']:.1f}-{s['floor']['max']:.1f}], ratio {s['ratio']:.2f}x; "
              f"again {size['restore_again']['wall']:.1f} s; floor inside: "
              + ", ".join(f"{k} {x:.1f}" for k, x in floor_parts.items()))
        cmds = {}
        for x in size["restore"]:
            for cmd in x["commands"]:
                key = " ".join(cmd["argv"][:2]) if cmd["argv"][0] == "cinder-rtstool" else cmd["argv"][0]
                cmds.setdefault(key, []).append(cmd["duration"] or 0)
        print("   programs volctl ran: " + ", ".join(f"{k} {statistics.median(x):.1f} s" for k, x in cmds.items()))
        print(f"   build: {size['build']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="results JSON (in a --rw directory)")
    p.add_argument("--report", type=Path, help="print the tables of a results JSON and exit (host or guest)")
    p.add_argument("--quick", action="store_true", help="smoke sizes: connect 0/10, restore 10/30, one sample")
    p.add_argument("--parts", default="connect,restore")
    p.add_argument("--sizes", help="filler subsystems for the connect part (default 0,100,1000)")
    p.add_argument("--samples", type=int, help="connect samples per size (default 5)")
    p.add_argument("--restore-sizes", help="recorded exports for the restore part (default 100,1000)")
    p.add_argument("--restore-samples", type=int, help="restore and floor samples per size (default 2)")
    p.add_argument("--no-profile", action="store_true", help="skip the cProfile'd restores")
    a = p.parse_args()
    if a.report:
        report(a.report)
        return
    if not a.out:
        p.error("--out is required")
    from guard import require_guest
    from vm_flow import sh

    scratch = require_guest()
    q = a.quick
    sizes = [int(x) for x in a.sizes.split(",")] if a.sizes else ([0, 10] if q else [0, 100, 1000])
    samples = a.samples or (1 if q else 5)
    restore_sizes = [int(x) for x in a.restore_sizes.split(",")] if a.restore_sizes else ([10, 30] if q else [100, 1000])
    restore_samples = a.restore_samples or (1 if q else 2)
    out = Path(a.out)
    results: dict = {"mode": "quick" if q else "full", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "guest": {"kernel": os.uname().release, "nproc": os.cpu_count()}}
    started = time.monotonic()

    def save() -> None:
        results["elapsed_s"] = round(time.monotonic() - started, 1)
        out.write_text(json.dumps(results, indent=1))

    work = Path(tempfile.mkdtemp(prefix="volctl-nvme-", dir="/var/tmp"))
    env0 = {k: x for k, x in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    sh(str(PYTHON), "-m", "compileall", "-q", str(HERE.parent / "volctl"), str(BARE), env=env0)
    sh("pvcreate", "-qq", "-f", scratch)
    sh("vgcreate", "-qq", VG, scratch)
    # the fillers' namespaces: one small device, shared (nvmet opens it without exclusivity)
    sh("lvcreate", "-qq", "-L", "64m", "-n", "filler", VG)
    device = f"/dev/{VG}/filler"
    v = nvme_volctl(work, work / "state" / "volctl.db", VG)
    for argv in ([str(VOLCTL), "--version"], ["lvs", VG]):
        sh(*argv, env=v.env)  # page cache over 9p
    results["loadavg_start"] = os.getloadavg()
    save()
    parts = set(a.parts.split(","))
    for name, run in (("connect", lambda: run_connect(v, sizes, samples, device, results, save, out.parent)),
                      ("restore", lambda: run_restore(work, restore_sizes, restore_samples, results, save, out.parent,
                                                      not a.no_profile))):
        if name not in parts:
            continue
        log(f"part {name}")
        try:
            run()
        except Exception as e:  # noqa: BLE001  (recorded, and the next part still runs)
            import traceback

            results.setdefault("errors", {})[name] = traceback.format_exc()[-3000:]
            log(f"part {name} FAILED: {e}")
            save()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["loadavg_end"] = os.getloadavg()
    save()
    log(f"done in {results['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
