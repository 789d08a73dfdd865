#!/usr/bin/env bash
# Provision a Debian 12 host so that tests/vm/vmrun can boot a throw-away
# QEMU guest with a real kernel (device-mapper, configfs, LIO, open-iscsi).
#
# Idempotent and cheap on a provisioned machine: every stage checks first and
# only does work when something is missing.  Run as root.
#
# Layout (all under $VMRUN_CACHE, default $REPO/.cache/vm, git-ignored):
#   kernel-root/   dpkg -x of linux-image-6.1.0-NN-amd64 (never installed:
#                  installing it would drag in initramfs-tools and write /boot)
#   kernel-root-backports/  the same of bookworm-backports' kernel (6.12: NVMe in-band
#                  authentication); apt-backports/ its package lists
#   tools/         venv with cinder-rtstool and os-brick, used by the guest
#                  through the read-only 9p view of this machine's /
#
# Environment:
#   VMRUN_CACHE          cache directory (default: $REPO/.cache/vm)
#   VMRUN_TOOLS_PYTHON   interpreter for the tools venv (default: python3)
#   VMRUN_KERNEL_REFRESH=1  look for a newer linux-image-6.1.0-NN-amd64 even
#                        though a kernel is already cached
set -euo pipefail

start=$EPOCHREALTIME
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${VMRUN_CACHE:-$REPO/.cache/vm}
KROOT=$CACHE/kernel-root
TOOLS=$CACHE/tools
PY=${VMRUN_TOOLS_PYTHON:-python3}
done_steps=()

log() { printf 'setup-host: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, depmod)"
mkdir -p "$CACHE"

# --- 1. Debian packages -------------------------------------------------------
# lvm2/open-iscsi are used *inside* the guest, which runs this machine's / as
# its root filesystem; that is why they are installed on the host at all.
# They are never run against this host's disks.  busybox-static builds the
# initramfs, kmod resolves module dependencies for it; cpio/xz-utils are not
# used by vmrun (it writes the cpio and unpacks the XZ kernel in Python) but
# are kept for debugging the images by hand.
# A minimal root (debootstrap --variant=minbase, a container image) also lacks procps (pgrep, for
# iscsid) and thin-provisioning-tools (thin_check, which lvm2 only recommends; lvm_type = "thin").
# python3-rtslib-fb + targetcli-fb: Debian's LIO stack as a storage host has it, for the
# restore tests (its targetctl, its save file, its unit file). Installed, it makes this host's
# layout Debian-like, so volctl's default lio_save_file here is /etc/rtslib-fb-target/...
# nvme-cli: the NVMe/TCP initiator in the guest (nvme connect, ns-rescan); zstd unpacks the
# backports kernel, a zstd bzImage, for vmrun. lsscsi: os-brick's ISCSIConnector.extend_volume
# finds each path's H:C:T:L with it (test_day_two.py; os-brick's bindep names it).
APT_PKGS=(qemu-system-x86 busybox-static udev kmod cpio lvm2 open-iscsi nvme-cli zstd lsscsi
          xz-utils iproute2 util-linux coreutils procps thin-provisioning-tools mount
          python3-rtslib-fb targetcli-fb)
missing=()
for p in "${APT_PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d: open-iscsi's postinst would try to start iscsid on the
    # host (and python3-rtslib-fb's its LIO unit); the host must never act as
    # initiator or target, only the guest does.
    prc=/usr/sbin/policy-rc.d
    created_prc=0
    if [ ! -e $prc ]; then
        printf '#!/bin/sh\nexit 101\n' >$prc && chmod +x $prc && created_prc=1
    fi
    rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    if [ $created_prc = 1 ]; then rm -f $prc; fi
    [ $rc = 0 ] || die "apt-get install failed (rc $rc)"
    done_steps+=("apt:${#missing[@]} pkgs")
fi

# --- 2. Kernels (extracted, not installed) -----------------------------------
# `linux-image-amd64` is a metapackage; the real package name carries the
# ABI number (6.1.0-NN), which moves with Debian security updates.
# Two kernels: Debian 12's stock one (every guest), and bookworm-backports' (6.12), for the
# NVMe/TCP tests that need in-band authentication (CONFIG_NVME_TARGET_AUTH; 6.1 lacks it). The
# backports package list is fetched into the cache with apt options of its own: this host's
# apt sources are not changed.
have_kver() {  # prints the newest complete kernel in $1, if any
    local d best=""
    for d in "$1"/lib/modules/*/; do
        d=${d%/}; d=${d##*/}
        if [ ! -f "$1/boot/vmlinuz-$d" ] || [ ! -f "$1/lib/modules/$d/modules.dep" ]; then
            continue
        fi
        best=$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n1)
    done
    printf '%s' "$best"
}
want_pkg() {  # apt options...; nothing when the lists know no kernel (yet)
    { apt-cache "$@" depends linux-image-amd64 2>/dev/null || true; } \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
fetch_kernel() {  # root label apt-options...: the kernel of that apt view, unpacked into root; sets $kver_of
    local root=$1 label=$2; shift 2
    local cached pkg kver tmp
    cached=$(have_kver "$root")
    # A cached kernel is kept (fast, and runs stay comparable) until asked for a
    # refresh; apt-cache alone costs 0.5-6 s here.
    pkg=
    if [ -z "$cached" ] || [ "${VMRUN_KERNEL_REFRESH:-0}" = 1 ]; then
        pkg=$(want_pkg "$@")
    fi
    if [ -z "$pkg" ] && [ -z "$cached" ]; then
        log "apt lists ($label) know no linux-image-amd64; running apt-get update"
        apt-get "$@" update -qq
        pkg=$(want_pkg "$@")
        [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 ($label) names no kernel package"
    fi
    kver=${pkg#linux-image-}
    if [ -n "$pkg" ] && [ "$kver" != "$cached" ]; then
        log "fetching $pkg ($label)"
        tmp=$(mktemp -d)
        # Old ABI packages vanish from the mirror after a security update, so a
        # stale package list gives a 404: refresh once and retry.
        if ! (cd "$tmp" && apt-get "$@" download -qq "$pkg" >/dev/null 2>&1); then
            apt-get "$@" update -qq
            pkg=$(want_pkg "$@"); kver=${pkg#linux-image-}
            (cd "$tmp" && apt-get "$@" download -qq "$pkg") || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
        fi
        # Extract into a fresh dir and swap it in, so an interrupted run never
        # leaves a half-populated kernel root that looks complete; older kernels
        # are dropped (each is ~400 MB unpacked).
        rm -rf "$root.new"; mkdir -p "$root.new"
        dpkg -x "$tmp"/"$pkg"_*.deb "$root.new"
        rm -rf "$tmp"
        depmod -b "$root.new" "$kver"
        [ -f "$root.new/boot/vmlinuz-$kver" ] || die "$pkg has no /boot/vmlinuz-$kver"
        rm -rf "$root"; mv "$root.new" "$root"
        done_steps+=("kernel:$kver")
        cached=$kver
    fi
    [ -n "$cached" ] || die "no usable kernel in $root"
    kver_of=$cached
}
fetch_kernel "$KROOT" stock
cached=$kver_of
BPO=$CACHE/apt-backports
mkdir -p "$BPO/lists/partial" "$BPO/archives/partial"
echo "deb http://deb.debian.org/debian bookworm-backports main" >"$BPO/sources.list"
fetch_kernel "$CACHE/kernel-root-backports" backports \
    -o Dir::Etc::SourceList="$BPO/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$BPO/lists" -o Dir::Cache="$BPO"
bpo_kver=$kver_of

# --- 3. Tools venv (cinder-rtstool + os-brick) --------------------------------
# cinder is installed --no-deps: its full dependency tree is huge, and
# cinder-rtstool only imports eventlet, greenlet, oslo.i18n and rtslib-fb
# (which needs pyudev).  dnspython is not needed: cinder sets
# EVENTLET_NO_GREENDNS=yes before importing eventlet.
mapfile -t RTSTOOL_PINS < <(grep -v '^#' "$REPO/scripts/cinder-rtstool.txt")
OS_BRICK_PIN=os-brick==7.1.1
# os-brick is installed with its dependencies, but resolved against this
# frozen set so CI gets the same bytes as the machine it was measured on.
OS_BRICK_CONSTRAINTS='certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
debtcollector==3.1.0
dnspython==2.9.2
eventlet==0.41.3
fasteners==0.20
greenlet==3.5.6
idna==3.20
iso8601==2.1.0
msgpack==1.2.4
netaddr==1.3.0
os-brick==7.1.1
oslo.concurrency==7.6.1
oslo.config==10.7.0
oslo.context==6.5.0
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.privsep==3.12.0
oslo.serialization==5.11.0
oslo.service==4.8.0
oslo.utils==10.2.0
packaging==26.4
Paste==3.10.1
PasteDeploy==3.1.0
pbr==7.1.3
psutil==7.2.2
pycparser==3.12
pyparsing==3.3.3
python-dateutil==4.0.0
pyudev==0.24.5
PyYAML==6.0.4
repoze-lru==0.8
requests==2.34.2
rfc3986==2.0.0
Routes==2.5.1
six==1.17.0
stevedore==5.10.0
tenacity==9.2.1
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
WebOb==1.8.11
wrapt==2.5.2
yappi==1.7.6'
# The stamp records the pins the venv was built from; any change rebuilds it
# from scratch, and so does a venv whose interpreter has gone away.
stamp_want=$(printf '%s\n' "${RTSTOOL_PINS[*]}" "$OS_BRICK_PIN" "$OS_BRICK_CONSTRAINTS" | sha256sum | cut -c1-16)
stamp_have=$(cat "$TOOLS/.vmrun-stamp" 2>/dev/null || true)
if [ "$stamp_want" != "$stamp_have" ] || [ ! -x "$TOOLS/bin/cinder-rtstool" ] \
        || [ ! -x "$TOOLS/bin/python" ]; then
    log "building tools venv with $PY"
    rm -rf "$TOOLS"
    "$PY" -m venv "$TOOLS"
    plog=$CACHE/setup-tools.log
    cons=$(mktemp); printf '%s\n' "$OS_BRICK_CONSTRAINTS" >"$cons"
    {
        "$TOOLS/bin/pip" install --disable-pip-version-check --no-deps "${RTSTOOL_PINS[@]}" &&
        "$TOOLS/bin/pip" install --disable-pip-version-check -c "$cons" "$OS_BRICK_PIN"
    } >"$plog" 2>&1 || { rm -f "$cons"; cat "$plog" >&2; die "pip install failed (log: $plog)"; }
    rm -f "$cons"
    # Python in the TCG guest is ~7x slower; pre-compiling keeps the first
    # cinder-rtstool call from paying for byte-compiling the whole import tree
    # (and the guest's overlay would discard the .pyc files anyway).
    "$TOOLS/bin/python" -m compileall -q "$TOOLS/lib" >/dev/null 2>&1 || true
    [ -x "$TOOLS/bin/cinder-rtstool" ] || die "cinder-rtstool console script missing in $TOOLS/bin"
    PYTHONWARNINGS=ignore "$TOOLS/bin/python" -c "import cinder.cmd.rtstool, os_brick.initiator.connector" \
        || die "tools venv imports fail"
    echo "$stamp_want" >"$TOOLS/.vmrun-stamp"
    done_steps+=("tools venv")
fi

# --- 3b. Cinder itself, whole (its own venv) -----------------------------------
# Cinder 29 with every dependency, for the tests that run Cinder's own code beside volctl's: its
# NVMeOF target's formats for the same inputs, and its LVM driver adopting volctl's volumes. Only
# those tests use it. (The tools venv above has cinder without its dependencies: rtstool only.)
CINDER=$CACHE/cinder
CINDER_PIN=cinder==29.0.0
if [ "$CINDER_PIN" != "$(cat "$CINDER/.vmrun-stamp" 2>/dev/null || true)" ] || [ ! -x "$CINDER/bin/python" ]; then
    log "building the Cinder venv with $PY ($CINDER_PIN and its dependencies)"
    rm -rf "$CINDER"
    "$PY" -m venv "$CINDER"
    "$CINDER/bin/pip" install -q --disable-pip-version-check "$CINDER_PIN" >"$CACHE/setup-cinder.log" 2>&1 \
        || { cat "$CACHE/setup-cinder.log" >&2; die "pip install $CINDER_PIN failed"; }
    "$CINDER/bin/python" -m compileall -q "$CINDER/lib" >/dev/null 2>&1 || true
    PYTHONWARNINGS=ignore "$CINDER/bin/python" -c "from cinder import objects; objects.register_all(); import cinder.volume.targets.nvmeof, cinder.volume.drivers.lvm" \
        || die "the Cinder venv's imports fail"
    echo "$CINDER_PIN" >"$CINDER/.vmrun-stamp"
    done_steps+=("cinder venv")
fi

# --- 4. volctl as an operator installs it -------------------------------------
# The container tests in the guest run this copy, made by the README's operator command
# (scripts/install), not the checkout's editable .venv; rebuilt whenever volctl's source changes.
OPT=$CACHE/opt
src_hash=$(cd "$REPO" && find volctl pyproject.toml scripts/install scripts/cinder-rtstool.txt -type f ! -name '*.pyc' \
           -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ "$src_hash" != "$(cat "$OPT/.stamp" 2>/dev/null || true)" ] || [ ! -x "$OPT/bin/volctl" ]; then
    log "installing volctl into $OPT with scripts/install"
    rm -rf "$OPT"
    bash "$REPO/scripts/install" --no-apt --prefix "$OPT/volctl" --bindir "$OPT/bin"
    "$OPT/volctl/bin/python" -m compileall -q "$OPT/volctl/lib" >/dev/null 2>&1 || true
    echo "$src_hash" >"$OPT/.stamp"
    done_steps+=("operator install")
fi

if [ ${#done_steps[@]} -eq 0 ]; then summary="already provisioned"
else summary="did: $(IFS=,; echo "${done_steps[*]}")"; fi
printf 'setup-host: %s; kernels %s and %s (backports); tools venv %s; %.1f s\n' \
    "$summary" "$cached" "$bpo_kver" "$TOOLS" "$(awk "BEGIN{print $EPOCHREALTIME - $start}")"
