# shellcheck shell=bash
# Source this first in any script that writes to disks or configures LVM,
# LIO or iSCSI:   . "$(dirname "$0")/guard.sh"
#
# Why: inside the vmrun guest the scratch disk is /dev/vda, but on the
# development/CI machine /dev/vda is the ROOT disk.  A destructive script run
# on the host by mistake must stop here, before its first pvcreate.  It exits
# 99 (not a normal test failure) unless all of these hold:
#   - VMRUN_GUEST=1 (set only by tests/vm/vmrun's guest job)
#   - $VMRUN_SCRATCH is a block device whose serial is "vmrun-scratch"
#   - neither it nor any of its partitions backs the root filesystem or any
#     other mounted filesystem
# On success VMRUN_SCRATCH_DEV holds the resolved device (e.g. /dev/vda).

vmrun_guard_refuse() {
    echo "guard: REFUSING to run: $*" >&2
    echo "guard: run this only inside the VM: tests/vm/vmrun ..." >&2
    exit 99
}

vmrun_guard() {
    local dev name majmin m
    [ "${VMRUN_GUEST:-}" = 1 ] || vmrun_guard_refuse "VMRUN_GUEST is not 1 (not inside the vmrun guest)"
    [ -n "${VMRUN_SCRATCH:-}" ] || vmrun_guard_refuse "VMRUN_SCRATCH is not set"
    dev=$(readlink -f -- "$VMRUN_SCRATCH") || vmrun_guard_refuse "cannot resolve $VMRUN_SCRATCH"
    [ -b "$dev" ] || vmrun_guard_refuse "scratch disk $VMRUN_SCRATCH ($dev) is not a block device"
    name=${dev##*/}
    # The serial is set by vmrun's qemu command line; a host disk has another.
    [ "$(cat "/sys/class/block/$name/serial" 2>/dev/null)" = vmrun-scratch ] \
        || vmrun_guard_refuse "$dev does not carry the serial vmrun-scratch"
    # major:minor of the disk and of each of its partitions, compared with
    # field 3 of mountinfo (the device behind every mounted filesystem).
    for m in "/sys/class/block/$name" "/sys/class/block/$name"/"$name"*; do
        [ -r "$m/dev" ] || continue
        majmin=$(cat "$m/dev")
        if awk -v d="$majmin" '$3 == d { found = 1 } END { exit !found }' /proc/self/mountinfo; then
            vmrun_guard_refuse "$dev (${m##*/}, $majmin) backs a mounted filesystem"
        fi
    done
    [ "$(mountpoint -d / 2>/dev/null)" != "$(cat "/sys/class/block/$name/dev")" ] \
        || vmrun_guard_refuse "$dev is the root filesystem's device"
    VMRUN_SCRATCH_DEV=$dev
}

vmrun_guard
