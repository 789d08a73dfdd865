"""bench/run: every benchmark of volctl, one table, optional JSON for comparing commits.

    bench/run                     # host parts (~3 min idle), then the VM part if the VM tier is there
    bench/run --quick             # smoke: sizes 0 and 100, 3 runs, short contention, no VM
    bench/run --no-vm --json out.json
    bench/run --compare old.json  # the same table with old figures and new/old next to them
    bench/run --vm-only           # only part 3 (QEMU guest, ~17 min under TCG on 2 idle cores)
    bench/run --parts 4           # the two target helpers and restore in the guest (~2.5 h under TCG)
    bench/run --parts 5           # read commands from a regular (non-editable) install (~2 min)
    bench/run --profile           # where `list` and `show --json` spend their time (importtime, cProfile)
    bench/run --parts 1 --sizes 100,100000 --only show-name-json --runs 20   # issue 20's row: show --json vs floor
    bench/run --parts 1 ... --tree DIR     # the same, timing the volctl/ of another checkout (before/after)

Figures are printed, never asserted: the goals are shown as met / NOT met. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contention  # noqa: E402
import helpers_report  # noqa: E402
import startup  # noqa: E402
from common import PYCACHE, REPO, RESULTS, Stats, fmt_seconds, git_describe, machine, table, write_json  # noqa: E402

SHOW_GOAL = 2.5  # show --json within 2.5x its floor (issue 20; it was 3x)
FLAT_GOAL = 1.2  # show --json at 100k within 1.2x of 100
RSS_GOAL = 1.2  # list --json peak RSS at 100k within 1.2x of 10k
VM_GOAL = 1.2  # volctl command within 1.2x of the bare external commands it runs


def log(*args, end="\n") -> None:
    print(*args, end=end, file=sys.stderr, flush=True)


# -- the VM part ---------------------------------------------------------------------------------

def vm_available() -> tuple[bool, str]:
    vmrun = REPO / "tests" / "vm" / "vmrun"
    cache = REPO / ".cache" / "vm"
    if not vmrun.exists():
        return False, "tests/vm/vmrun is missing"
    kernels = list(cache.glob("vmlinux-*")) + list((cache / "kernel-root" / "boot").glob("vmlinuz-*"))
    if not kernels:
        return False, ".cache/vm has no kernel (run tests/vm/setup-host.sh)"
    if not (cache / "tools" / "bin" / "cinder-rtstool").exists():
        return False, ".cache/vm/tools has no cinder-rtstool"
    if not shutil.which("qemu-system-x86_64"):
        return False, "qemu-system-x86_64 is not installed"
    return True, ""


def other_vm_running() -> bool:
    """Only 2 cores: never two guests at once (other people's test runs boot them too)."""
    done = subprocess.run(["pgrep", "-f", "qemu-system-x86_64"], capture_output=True, text=True)
    return bool(done.stdout.strip())


def wait_for_other_guests(args) -> bool:
    """Wait up to --vm-wait for other QEMU guests to finish; whether one still runs."""
    waited = 0.0
    while other_vm_running() and waited < args.vm_wait:
        if waited == 0:
            log(f"  another QEMU guest is running; waiting up to {args.vm_wait:g} s for it to finish")
        time.sleep(10)
        waited += 10
    return other_vm_running()


def run_vm(args) -> dict:
    ok, why = vm_available()
    if not ok:
        return {"skipped": why}
    if wait_for_other_guests(args):
        return {"skipped": f"another QEMU guest was still running after {args.vm_wait:g} s"}
    out_dir = RESULTS / f"vm-{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "vm.json"
    argv = [str(REPO / "tests" / "vm" / "vmrun"), "--rw", str(out_dir), "--scratch-size", "16G",
            "--timeout", str(int(args.vm_timeout)), "--",
            str(REPO / ".venv" / "bin" / "python"), str(REPO / "bench" / "vm_flow.py"), "--out", str(out),
            "--reps", str(args.vm_reps), "--targets", args.vm_targets, "--cap", args.vm_cap]
    log("  " + " ".join(argv[:1] + ["..."] + argv[-10:]))
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, stdout=sys.stderr)
    result = json.loads(out.read_text()) if out.exists() else {}
    result["vmrun_exit"] = done.returncode
    result["vmrun_wall_s"] = time.monotonic() - started
    result["results_dir"] = str(out_dir)
    if done.returncode != 0:
        result.setdefault("error", f"vmrun exited {done.returncode} (see {out_dir})")
    return result


# -- the table -----------------------------------------------------------------------------------

def _ms(stats: dict) -> str:
    return f"{stats['median'] * 1000:.0f} ms [{stats['p10'] * 1000:.0f}-{stats['p90'] * 1000:.0f}]"


def _mb(kib: int) -> str:
    return f"{kib / 1024:.0f} MB"


def _size(n) -> str:
    return "-" if n is None else f"{n:,}"


def goals(results: dict) -> list[dict]:
    """Each goal: what, figure, met (True/False/None when not measured)."""
    out = []
    cases = {(c["key"], c["size"]): c for c in results.get("startup", {}).get("cases", []) if "wall" in c}
    sizes = sorted({s for (_, s) in cases if s is not None})
    for key in ("show-id-json", "show-name-json"):
        ratios = {s: cases[(key, s)]["ratio"] for s in sizes if (key, s) in cases}
        if ratios:
            worst = max(ratios, key=ratios.get)
            out.append({"goal": f"{key.replace('-json', '').replace('-', ' ')} --json within {SHOW_GOAL:g}x its floor (every size)",
                        "figure": ", ".join(f"{_size(s)}: {r:.2f}x" for s, r in ratios.items()),
                        "met": all(r <= SHOW_GOAL for r in ratios.values()), "worst": ratios[worst]})
        if (key, 100) in cases and (key, 100_000) in cases:
            flat = cases[(key, 100_000)]["wall"]["median"] / cases[(key, 100)]["wall"]["median"]
            out.append({"goal": f"{key.replace('-json', '').replace('-', ' ')} --json flat: 100k within {FLAT_GOAL:g}x of 100",
                        "figure": f"{flat:.2f}x", "met": flat <= FLAT_GOAL})
    if ("list-json", 10_000) in cases and ("list-json", 100_000) in cases:
        a, b = cases[("list-json", 10_000)]["maxrss_kib"], cases[("list-json", 100_000)]["maxrss_kib"]
        out.append({"goal": f"list --json streams: peak RSS at 100k within {RSS_GOAL:g}x of 10k",
                    "figure": f"{_mb(a)} -> {_mb(b)} ({b / a:.2f}x)", "met": b / a <= RSS_GOAL})
    cells = results.get("contention", {}).get("cells", [])
    if cells:
        errors = sum(c["lock_errors"] for c in cells)
        out.append({"goal": "no lock errors under contention (exit 7 / 'locked')",
                    "figure": f"{errors} in {sum(c['operations'] for c in cells):,} operations", "met": errors == 0})
    out += helpers_report.goals(results.get("vm_helpers", {}), results.get("regular", {}))
    vm = results.get("vm", {})
    for row in vm.get("flow", []):
        if row["command"] in ("create", "export", "connect"):
            out.append({"goal": f"VM: volctl {row['command']} within {VM_GOAL:g}x of its bare commands",
                        "figure": f"{row['ratio']:.2f}x ({fmt_seconds(row['volctl_median'])} vs {fmt_seconds(row['bare_median'])})",
                        "met": row["ratio"] <= VM_GOAL})
    return out


def render(results: dict, old: dict | None = None) -> str:
    rows = []
    old_cases = {(c["key"], c["size"]): c for c in (old or {}).get("startup", {}).get("cases", []) if "wall" in c}
    for c in results.get("startup", {}).get("cases", []):
        if "wall" not in c:
            continue
        runs = f"{c['runs']}" + (f" ({c['skipped']})" if c.get("skipped") else "")
        cpu = (f"; CPU {c['cpu']['median'] * 1000:.0f} ms vs {c['floor_cpu']['median'] * 1000:.0f} ms, {c['cpu_ratio']:.2f}x"
               if "cpu" in c else "")
        row = ["1 read", f"volctl {c['command']}", _size(c["size"]), _ms(c["wall"]), _mb(c["maxrss_kib"]),
               f"{c['floor_command']}: {c['floor']['median'] * 1000:.0f} ms{cpu}", f"{c['ratio']:.2f}x", runs]
        if old is not None:
            prev = old_cases.get((c["key"], c["size"]))
            row.append(f"{prev['wall']['median'] * 1000:.0f} ms -> {c['wall']['median'] / prev['wall']['median']:.2f}x" if prev else "-")
        rows.append(row)
    old_cells = {(c["kind"], c["target"], c["processes"]): c for c in (old or {}).get("contention", {}).get("cells", [])}
    for c in results.get("contention", {}).get("cells", []):
        n = c["counts"]
        lat = c.get("latency_ms") or {"p50": 0, "p99": 0, "max": 0}
        wl = (f"reserve {n['reserve']['wins']}/{n['reserve']['losses']}/{n['reserve']['lock_errors']}, "
              f"unreserve {n['unreserve']['wins']}/{n['unreserve']['losses']}/{n['unreserve']['lock_errors']}"
              + (f", other {c['other']}" if c["other"] else ""))
        row = ["2 write", f"{c['kind']}: reserve+unreserve, {c['target']} volume{'s' if c['target'] == 'different' else ''}",
               f"x{c['processes']}", f"{c['transitions_per_s']:.1f} transitions/s", "-",
               f"wins/losses/lock errors: {wl}; per call p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms",
               "-", f"{c['seconds']:.1f} s"]
        if old is not None:
            prev = old_cells.get((c["kind"], c["target"], c["processes"]))
            row.append(f"{prev['transitions_per_s']:.1f}/s -> {c['transitions_per_s'] / prev['transitions_per_s']:.2f}x" if prev else "-")
        rows.append(row)
    vm = results.get("vm", {})
    for r in vm.get("flow", []):
        bare = "python -c UPDATE" if r["bare_is_floor"] else " + ".join(x.replace("cinder-rtstool ", "rtstool ") for x in r["runs"])
        row = ["3 VM", f"volctl {r['command']}", "-", f"{fmt_seconds(r['volctl_median'])} [{fmt_seconds(r['volctl_min'])}-{fmt_seconds(r['volctl_max'])}]",
               "-", f"{bare}: {fmt_seconds(r['bare_median'])}", f"{r['ratio']:.2f}x", f"{len(vm.get('reps', []))}"]
        if old is not None:
            row.append("-")
        rows.append(row)
    for label, seconds in vm.get("guest_startup", {}).items():
        rows.append(["3 VM", f"guest start-up: {label}", "-", fmt_seconds(seconds), "-", "median of 3", "-", "3"]
                    + (["-"] if old is not None else []))
    for e in vm.get("connect_vs_targets", []):
        c = e["connect"]
        value = fmt_seconds(c["wall"]) if c["finished"] else f"did not finish within {e['cap_s']:g} s"
        parts = ", ".join(f"{x['argv'][1] if x['argv'][0] == 'cinder-rtstool' else x['argv'][0]} {x['duration']:.1f}"
                          for x in c["commands"])
        row = ["3 VM", "volctl connect (new volume: export + ACL)", f"{e['targets_present']} targets", value, "-",
               f"as volctl timed them: {parts or '-'}",
               f"{c['wall'] / c['external']:.2f}x" if c["finished"] and c["external"] else "-", "1"]
        if old is not None:
            row.append("-")
        rows.append(row)
    if vm.get("skipped"):
        rows.append(["3 VM", "(not run)", "-", vm["skipped"], "-", "-", "-", "-"] + (["-"] if old is not None else []))
    elif vm.get("error"):
        rows.append(["3 VM", "(failed)", "-", vm["error"], "-", "-", "-", "-"] + (["-"] if old is not None else []))
    rows += [r + (["-"] if old is not None else []) for r in helpers_report.rows(results.get("vm_helpers", {}),
                                                                                results.get("regular", {}))]
    headers = ["part", "what", "size", "median [p10-p90]", "peak RSS", "floor / bare / detail", "ratio", "runs"]
    if old is not None:
        headers.append(f"old ({old.get('commit', '?')}) -> new/old")
    text = [table(headers, rows), ""]
    g = goals(results)
    if g:
        text.append(table(["goal", "figure", "met"], [[x["goal"], x["figure"], "yes" if x["met"] else "NOT met"] for x in g]))
    return "\n".join(text)


def describe(m: dict) -> str:
    return (f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}, Python {m['python']}, "
            f"SQLite {m['sqlite']}; load average at start {m.get('loadavg_start', '?')}, at end {m.get('loadavg_end', '?')}")


def main() -> None:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--quick", action="store_true", help="smoke run: sizes 0 and 100, 3 runs, short contention, no VM")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON (for --compare later)")
    p.add_argument("--compare", metavar="FILE", help="a JSON from an earlier run: show old figures and new/old")
    p.add_argument("--no-vm", action="store_true", help="skip part 3 even if the VM tier is available")
    p.add_argument("--vm-only", action="store_true", help="only part 3 (same as --parts 3)")
    p.add_argument("--parts", default="1,2,3", help="which parts: 1 read, 2 write, 3 VM, 4 VM target helpers, "
                                                   "5 regular install (default %(default)s)")
    p.add_argument("--profile", action="store_true", help="only the profile of the slowest read commands")
    p.add_argument("--sizes", help="inventory sizes (default 0,100,10000,100000; quick 0,100)")
    p.add_argument("--runs", type=int, help="runs per read command (default 10; quick 3)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached inventories")
    p.add_argument("--only", help="part 1: only these cases (version, show-id-json, show-name-json, list-json, list-table)")
    p.add_argument("--tree", type=Path, help="part 1: time the volctl/ of this checkout instead (PYTHONPATH), for before/after")
    p.add_argument("--vm-reps", type=int, default=3, help="repetitions of the flow in the guest (default 3)")
    p.add_argument("--vm-targets", default="0,100,1000", help="targets present for the connect measurement")
    p.add_argument("--vm-cap", default="0:300,100:400,1000:900", help="per-size cap of that connect, N:SECONDS,...")
    p.add_argument("--vm-timeout", type=float, default=2400, help="seconds before vmrun kills the guest")
    p.add_argument("--vm-wait", type=float, default=900, help="seconds to wait for another QEMU guest to finish")
    p.add_argument("--vm-helpers-timeout", type=float, default=18000, help="seconds before vmrun kills part 4's guest")
    args = p.parse_args()

    if args.profile:
        import profile_reads

        profile_reads.main()
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    PYCACHE.mkdir(parents=True, exist_ok=True)
    m = machine()
    m["loadavg_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results: dict = {"commit": git_describe(), "when": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": m,
                     "mode": "quick" if args.quick else "full"}
    started = time.monotonic()
    parts = {"3"} if args.vm_only else set(args.parts.split(","))
    if "1" in parts:
        sizes = [int(s) for s in (args.sizes or ("0,100" if args.quick else "0,100,10000,100000")).split(",")]
        runs = args.runs or (3 if args.quick else 10)
        log(f"part 1: start-up and read commands, sizes {sizes}, {runs} runs")
        # A command slower than 60 s a run (the rich table of 100k volumes took 134 s) runs once.
        results["startup"] = startup.run(sizes, runs, rebuild=args.rebuild, log=log,
                                         budget=None if args.quick else 60.0,
                                         only=set(args.only.split(",")) if args.only else None, tree=args.tree)
    if "2" in parts:
        log("part 2: writes under contention")
        procs = [4] if args.quick else [1, 4, 16]
        seconds = {"inprocess": 0.5, "cli": 1.0} if args.quick else {"inprocess": 3.0, "cli": 5.0}
        results["contention"] = contention.run(procs, ["inprocess", "cli"], seconds, log=log)
    if "3" in parts and not args.quick and not args.no_vm:
        log("part 3: the real flow in the QEMU guest")
        results["vm"] = run_vm(args)
    else:
        results["vm"] = {"skipped": "--quick" if args.quick else ("--no-vm" if args.no_vm else f"--parts {args.parts}")}
    if "5" in parts:
        log("part 5: read commands from a regular install")
        results["regular"] = helpers_report.run_regular(args, log)
    if "4" in parts and not args.quick and not args.no_vm:
        log("part 4: the target helpers in the QEMU guest")
        results["vm_helpers"] = helpers_report.run_guest(args, log, vm_available, wait_for_other_guests)
    m["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["wall_s"] = time.monotonic() - started
    results["goals"] = goals(results)
    old = json.loads(Path(args.compare).read_text()) if args.compare else None
    tree = f", volctl/ from {args.tree}" if args.tree else ""
    print(f"volctl benchmarks, {results['commit']}{tree}, {results['when']} ({results['mode']}, {results['wall_s']:.0f} s)")
    print(describe(m))
    print()
    print(render(results, old))
    if args.json:
        write_json(Path(args.json), results)
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
