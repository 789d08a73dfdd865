"""Is the saved config volctl's rtslib helper keeps equal to a full save of what is live?

Issue 13 asks for the proof at 0, 100 and 1,000 targets; the real-kernel tier checks it at 0 and
20 (tests/vm/e2e/test_rtslib_helper.py), this one at the bench's sizes.

Runs INSIDE the vmrun guest only, with the venv's python (volctl and rtslib_fb):
    .venv/bin/python bench/vm_save_equal.py SAVE_FILE
Prints {"equal": bool, "targets": N, "storage_objects": N, "full_dump_s": S, "differences": [...]}.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "vm"))
from guard import require_guest  # noqa: E402


def main() -> None:
    require_guest()
    import rtslib_fb

    from volctl.targets import saved

    ours = json.loads(Path(sys.argv[1]).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "full.json"  # no file yet: save_to_file writes the whole config
        started = time.monotonic()
        rtslib_fb.RTSRoot().save_to_file(str(path))
        seconds = time.monotonic() - started
        full = json.loads(path.read_text())
    for so in full.get("storage_objects", []):
        if so.get("exclusive") is True:  # the one key volctl drops on purpose (saved.restorable_by_older_rtslib)
            del so["exclusive"]
    diff = saved.differences(saved.normalized(ours), saved.normalized(full))
    print(json.dumps({"equal": saved.normalized(ours) == saved.normalized(full), "targets": len(full.get("targets", [])),
                      "storage_objects": len(full.get("storage_objects", [])), "full_dump_s": round(seconds, 2),
                      "differences": diff[:20]}))


if __name__ == "__main__":
    main()
