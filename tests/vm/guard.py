"""Refuse destructive storage tests anywhere but inside the vmrun guest.

Inside the guest the scratch disk is /dev/vda; on the development and CI
machines /dev/vda is the root disk.  Every e2e test that creates PVs, LVs,
LIO targets or iSCSI sessions must call require_guest() first (the Python
twin of tests/vm/guard.sh) and use only the device it returns.

    from tests.vm.guard import require_guest      # or import by path
    scratch = require_guest()                     # e.g. "/dev/vda"

For a pytest skip on the host, test ``in_guest()`` in a skipif marker; the
check itself raises, so a test that does reach it on the host fails loudly.
"""

import os
import stat

SCRATCH_SERIAL = "vmrun-scratch"
DISK_SERIAL = "vmrun-disk"  # vmrun --disk: the disk that persists across boots


def in_guest() -> bool:
    """Cheap check for skip markers: are we in a vmrun guest at all?"""
    return os.environ.get("VMRUN_GUEST") == "1"


def _mounted_devices() -> set:
    """(major, minor) of every device that backs a mounted filesystem."""
    devs = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            major, _, minor = line.split()[2].partition(":")
            devs.add((int(major), int(minor)))
    return devs


def require_guest(env: str = "VMRUN_SCRATCH", serial: str = SCRATCH_SERIAL) -> str:
    """Return the scratch block device path, or raise RuntimeError.
    require_guest("VMRUN_DISK", DISK_SERIAL): the same checks for vmrun --disk."""
    def refuse(why):
        raise RuntimeError(
            f"refusing destructive storage test: {why}; "
            "run it only inside the VM: tests/vm/vmrun ...")

    if not in_guest():
        refuse("VMRUN_GUEST is not 1 (not inside the vmrun guest)")
    link = os.environ.get(env)
    if not link:
        refuse(f"{env} is not set")
    dev = os.path.realpath(link)
    try:
        st = os.stat(dev)
    except OSError as e:
        refuse(f"scratch disk {link} is missing ({e})")
    if not stat.S_ISBLK(st.st_mode):
        refuse(f"scratch disk {link} ({dev}) is not a block device")
    name = os.path.basename(dev)
    expected = serial
    try:
        with open(f"/sys/class/block/{name}/serial") as f:
            found = f.read().strip()
    except OSError:
        found = None
    if found != expected:
        refuse(f"{dev} does not carry the serial {expected}")
    disk = (os.major(st.st_rdev), os.minor(st.st_rdev))
    root = os.stat("/").st_dev
    if disk == (os.major(root), os.minor(root)):
        refuse(f"{dev} is the root filesystem's device")
    # The disk and each of its partitions must be unmounted.
    mounted = _mounted_devices()
    sysdir = f"/sys/class/block/{name}"
    for entry in [sysdir] + [os.path.join(sysdir, p) for p in os.listdir(sysdir)
                             if p.startswith(name)]:
        try:
            with open(os.path.join(entry, "dev")) as f:
                major, _, minor = f.read().strip().partition(":")
        except OSError:
            continue
        if (int(major), int(minor)) in mounted:
            refuse(f"{dev} ({os.path.basename(entry)}) backs a mounted filesystem")
    return dev
