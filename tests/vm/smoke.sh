#!/usr/bin/env bash
# End-to-end smoke test of the storage chain volctl drives, run INSIDE the
# vmrun guest:   tests/vm/vmrun bash tests/vm/smoke.sh
#
#   LVM on the scratch disk -> LIO iSCSI target via cinder-rtstool (CHAP ACL)
#   -> open-iscsi login over 127.0.0.1:3260 -> write/read 1 MiB -> teardown
#
# It proves the harness (kernel modules, configfs, udev, tools venv) rather
# than volctl itself.  Every step is timed; exit 0 only if all steps pass.
# After a failure the remaining steps are skipped and a best-effort teardown
# runs, so a command chained after this one in the same boot starts clean.
# shellcheck disable=SC2317  # the step functions are only called via step()
set -uo pipefail
t_all=$EPOCHREALTIME
# shellcheck source=tests/vm/guard.sh
. "$(dirname "${BASH_SOURCE[0]}")/guard.sh"   # exits 99 outside the guest

VG=volctl-smoke
LV=lv1
IQN=iqn.2010-10.org.openstack:smoke
CHAP_USER=user20charsxxxxxxxxxx
CHAP_PASS=pass16charsxxxxx
INITIATOR=iqn.2024-01.test.volctl:initiator1
PORTAL=127.0.0.1:3260
LUN_LINK=/dev/disk/by-path/ip-$PORTAL-iscsi-$IQN-lun-0
WORK=$(mktemp -d)
# Each cinder-rtstool call prints an EventletDeprecationWarning; noise only.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}

declare -a NAMES=() TIMES=()
failed=0

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# step NAME CMD...: run, time and record; the command's output is printed
# indented below the result line (captured, so it cannot interleave).
step() {
    local name=$1 t0 rc; shift
    [ $failed = 0 ] || return 1
    t0=$EPOCHREALTIME
    "$@" >"$WORK/step.log" 2>&1
    rc=$?
    NAMES+=("$name"); TIMES+=("$(elapsed "$t0" "$EPOCHREALTIME")")
    if [ $rc = 0 ]; then
        printf '[ ok ] %6ss  %s\n' "${TIMES[-1]}" "$name"
    else
        printf '[FAIL] %6ss  %s (rc %s)\n' "${TIMES[-1]}" "$name" "$rc"
        failed=1
    fi
    sed 's/^/        /' "$WORK/step.log"
    return $rc
}

# Best-effort teardown, silent: after a failure some of it has nothing to do.
cleanup() {
    iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout >/dev/null 2>&1
    iscsiadm -m node -T "$IQN" -p "$PORTAL" -o delete >/dev/null 2>&1
    cinder-rtstool delete "$IQN" >/dev/null 2>&1
    vgremove -f "$VG" >/dev/null 2>&1
    pvremove -f "$VMRUN_SCRATCH_DEV" >/dev/null 2>&1
    rm -rf "$WORK"
}

check_tools() {
    local t
    for t in pvcreate iscsiadm iscsid cinder-rtstool; do
        command -v "$t" >/dev/null || { echo "missing: $t"; return 1; }
    done
}

get_targets_lists_iqn() {
    local out
    out=$(cinder-rtstool get-targets) || return 1
    echo "$out"
    grep -qxF "$IQN" <<<"$out"
}

# iscsid reads the initiator name once at start-up; if it changes later every
# login fails with "authorization failure" because the ACL names another IQN.
start_iscsid() {
    mkdir -p /etc/iscsi /run/lock/iscsi
    echo "InitiatorName=$INITIATOR" >/etc/iscsi/initiatorname.iscsi
    iscsid
}

discover() {
    local out
    out=$(iscsiadm -m discovery -t sendtargets -p "$PORTAL") || return 1
    echo "$out"
    grep -q " $IQN\$" <<<"$out"
}

set_chap() {  # set_chap PASSWORD
    local kv k v
    for kv in node.session.auth.authmethod=CHAP \
              node.session.auth.username="$CHAP_USER" \
              node.session.auth.password="$1"; do
        k=${kv%%=*}; v=${kv#*=}
        iscsiadm -m node -T "$IQN" -p "$PORTAL" -o update -n "$k" -v "$v" || return 1
    done
}

# A wrong password must be refused (iscsiadm rc 24 = authorization failure):
# it proves CHAP is enforced, not just configured.
login_wrong_chap_refused() {
    set_chap wrongpassword123 || return 1
    iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
    local rc=$?
    echo "iscsiadm rc $rc"
    set_chap "$CHAP_PASS" || return 1
    [ "$rc" = 24 ]
}

wait_for_lun() {
    local _
    for _ in $(seq 1 100); do
        if [ -b "$LUN_LINK" ]; then readlink -f "$LUN_LINK"; return 0; fi
        udevadm settle --timeout=5 2>/dev/null; sleep 0.1
    done
    echo "no $LUN_LINK after login"; ls -l /dev/disk/by-path/ 2>&1
    return 1
}

write_read_pattern() {
    head -c 1M /dev/urandom >"$WORK/pattern"
    dd if="$WORK/pattern" of="$LUN_LINK" bs=1M count=1 oflag=direct conv=fsync status=none || return 1
    dd if="$LUN_LINK" of="$WORK/back" bs=1M count=1 iflag=direct status=none || return 1
    cmp "$WORK/pattern" "$WORK/back" || return 1
    # Same bytes straight from the LV: the LUN really is the exported LV.
    dd if="/dev/$VG/$LV" of="$WORK/lv" bs=1M count=1 iflag=direct status=none || return 1
    cmp "$WORK/pattern" "$WORK/lv"
}

logout_and_forget() {
    iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout || return 1
    iscsiadm -m node -T "$IQN" -p "$PORTAL" -o delete
}

remove_vg_pv() {
    vgremove -q "$VG" && pvremove -q "$VMRUN_SCRATCH_DEV"
}

no_target_left() {
    local t
    cinder-rtstool delete "$IQN" || return 1
    for t in /sys/kernel/config/target/iscsi/iqn.*; do
        [ -e "$t" ] || continue
        echo "target left behind: ${t##*/}"; return 1
    done
}

echo "smoke: scratch disk $VMRUN_SCRATCH -> $VMRUN_SCRATCH_DEV; guest uptime $(cut -d' ' -f1 /proc/uptime)s"
step "tools present"                  check_tools
step "pvcreate $VMRUN_SCRATCH_DEV"    pvcreate -q "$VMRUN_SCRATCH_DEV"
step "vgcreate $VG"                   vgcreate -q "$VG" "$VMRUN_SCRATCH_DEV"
step "lvcreate -L 64M $VG/$LV"        lvcreate -q -y -L 64M -n "$LV" "$VG"
step "cinder-rtstool create"          cinder-rtstool create "/dev/$VG/$LV" "$IQN" \
                                          "$CHAP_USER" "$CHAP_PASS" False -p3260 -a127.0.0.1
step "cinder-rtstool get-targets"     get_targets_lists_iqn
step "cinder-rtstool add-initiator"   cinder-rtstool add-initiator "$IQN" "$CHAP_USER" \
                                          "$CHAP_PASS" "$INITIATOR"
step "initiatorname + start iscsid"   start_iscsid
step "iscsiadm discovery"             discover
step "set CHAP on node record"        set_chap "$CHAP_PASS"
step "login with wrong CHAP refused"  login_wrong_chap_refused
step "iscsiadm login (CHAP)"          iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
step "LUN 0 appears (by-path)"        wait_for_lun
step "write+read back 1 MiB"          write_read_pattern
step "logout + delete node record"    logout_and_forget
step "cinder-rtstool delete"          no_target_left
step "lvremove"                       lvremove -q -y "$VG/$LV"
step "vgremove + pvremove"            remove_vg_pv

[ $failed = 0 ] || cleanup
rm -rf "$WORK"
total=$(elapsed "$t_all" "$EPOCHREALTIME")
if [ $failed = 0 ]; then
    echo "smoke: PASSED ${#NAMES[@]} steps in ${total}s"
else
    echo "smoke: FAILED at step ${#NAMES[@]} ('${NAMES[-1]}') after ${total}s"
fi
exit $failed
