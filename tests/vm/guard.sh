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
    # Builtins only (read and -ef, not readlink/cat/awk): under TCG every
    # fork+exec costs 50-200 ms, and this runs before every destructive script.
    local dev='' name='' serial s m majmin _id _pid devno _root mnt _rest
    [ "${VMRUN_GUEST:-}" = 1 ] || vmrun_guard_refuse "VMRUN_GUEST is not 1 (not inside the vmrun guest)"
    [ -n "${VMRUN_SCRATCH:-}" ] || vmrun_guard_refuse "VMRUN_SCRATCH is not set"
    # Find the disk by the serial vmrun's qemu command line gives it (a host
    # disk has another), then require VMRUN_SCRATCH to be that very node
    # (-ef: same device and inode, following symlinks).
    for s in /sys/class/block/*/serial; do
        serial=
        read -r serial 2>/dev/null <"$s" || true
        if [ "$serial" = vmrun-scratch ]; then name=${s%/serial}; name=${name##*/}; break; fi
    done
    [ -n "$name" ] || vmrun_guard_refuse "no disk with the serial vmrun-scratch"
    dev=/dev/$name
    if ! [ -b "$dev" ] || ! [ "$VMRUN_SCRATCH" -ef "$dev" ]; then
        vmrun_guard_refuse "VMRUN_SCRATCH=$VMRUN_SCRATCH is not $dev, the vmrun-scratch disk"
    fi
    # major:minor of the disk and of each of its partitions, compared with
    # the device behind every mounted filesystem (mountinfo field 3).
    for m in "/sys/class/block/$name" "/sys/class/block/$name/$name"*; do
        [ -r "$m/dev" ] || continue
        read -r majmin <"$m/dev"
        while read -r _id _pid devno _root mnt _rest; do
            [ "$devno" = "$majmin" ] || continue
            [ "$mnt" != / ] || vmrun_guard_refuse "$dev is the root filesystem's device"
            vmrun_guard_refuse "$dev (${m##*/}, $majmin) backs the filesystem mounted on $mnt"
        done </proc/self/mountinfo
    done
    # shellcheck disable=SC2034  # for the sourcing script
    VMRUN_SCRATCH_DEV=$dev
}

vmrun_guard
