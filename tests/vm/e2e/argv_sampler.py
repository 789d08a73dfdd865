"""Every process's command line, sampled while a volctl command runs: what a local user sees of it
in `ps` or /proc/PID/cmdline (test_rtslib_helper.py: the CHAP password; test_nvme_auth.py: the
DH-HMAC-CHAP keys)."""

from __future__ import annotations

import os
import threading
from collections import Counter


class ArgvSampler:
    """Reads every process's /proc/PID/cmdline in a tight loop on a thread, counting how often it
    saw each command line, for as long as the `with` block runs."""

    def __init__(self):
        self.seen: Counter[str] = Counter()
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        raw = f.read()
                except OSError:
                    continue  # the process ended between the listing and the read
                if raw:
                    self.seen[raw.replace(b"\0", b" ").decode(errors="replace")] += 1
            self.scans += 1

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def hits(self, secret: str) -> int:
        return sum(n for line, n in self.seen.items() if secret in line)

    def saw_volctl(self, *words: str) -> bool:
        """Whether it caught the volctl process itself: proof it sampled while the command ran."""
        return any("volctl" in line and all(w in line.split() for w in words) for line in self.seen)


def sampled(volctl, *args: str) -> tuple[ArgvSampler, dict]:
    """volctl --json ARGS (a conftest.Volctl) under the sampler; it must have seen the volctl process."""
    with ArgvSampler() as sampler:
        out = volctl.json(*args)
    assert sampler.scans > 10 and sampler.saw_volctl(*args[:2]), (sampler.scans, list(sampler.seen)[:20])
    return sampler, out
