"""bench/run at its smallest size, so CI keeps the benchmark scripts working. Nothing here looks
at a time: benchmarks print figures, tests never assert on them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_run_quick_writes_every_part(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "run"), "--quick", "--sizes", "0", "--runs", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| goal" in proc.stdout and "| 1 read" in proc.stdout and "| 2 write" in proc.stdout
    doc = json.loads(out.read_text())
    cases = {c["key"]: c for c in doc["startup"]["cases"]}
    assert set(cases) == {"version", "show-id-json", "show-name-json", "list-json", "list-table"}
    for case in cases.values():
        assert case["runs"] == 1 and case["wall"]["median"] > 0 and case["floor"]["median"] > 0
        assert case["maxrss_kib"] > 0
    cells = doc["contention"]["cells"]
    assert {(c["kind"], c["target"]) for c in cells} == {(k, t) for k in ("inprocess", "cli") for t in ("different", "same")}
    assert all(c["integrity"] == "ok" and c["lock_errors"] == 0 and c["operations"] > 0 for c in cells)
    assert doc["vm"] == {"skipped": "--quick"}
