#!/usr/bin/env bash
# Rehearse the Pi install on an emulated arm64 Debian, without a Pi.
#
# 64-bit Raspberry Pi OS is Debian for arm64 plus the Raspberry Pi archive
# (kernel, firmware, libcamera, picamera2). For each release (default: bookworm
# and trixie) this builds a Debian arm64 root with debootstrap, runs it under
# qemu-user-static, and in it, as root on a Pi would:
#   1. deploy/install.sh --no-camera, from a copy of this checkout
#   2. edgemood classify on two shipped photos (the astronaut must be happy)
#   3. edgemood doctor on a replay config (must pass), and on the installed config
#   4. edgemood run on a short replay (a smile, nobody, Grace Hopper) until it ends
#
# picamera2 is not rehearsed: it comes from the Raspberry Pi archive
# (archive.raspberrypi.com), which a plain Debian root does not have; the
# camera path is for a real Pi. Everything else is the Pi's own code path:
# the distro's Python and apt numpy, the release's constraints file, aarch64
# wheels from PyPI.
#
# The root sees a Raspberry Pi 4's processor: qemu emulates a Cortex-A72
# (ARMv8.0, as in a Pi 3 and 4; $EDGEMOOD_REHEARSE_CPU changes it), and
# /proc/cpuinfo and the CPU list under /sys describe four of them. Left to
# itself qemu-user shows the x86 host's /proc/cpuinfo and /sys, which the
# TFLite runtime's CPU detection cannot read (ai-edge-litert 2.3 crashes).
#
#   sudo deploy/rehearse-arm64.sh [--keep] [RELEASE...]
#
# Needs root, the Debian packages debootstrap, qemu-user-static and
# binfmt-support, and access to deb.debian.org and pypi.org. It is slow
# (emulated arm64): each release's base root is built once and cached in
# $EDGEMOOD_REHEARSE_DIR (default /var/cache/edgemood-rehearse); each run
# starts from a fresh copy of it. Logs and a summary stay there too.
set -euo pipefail
umask 022

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
    echo "rehearse-arm64.sh: $*" >&2
    exit 1
}

KEEP=0
RELEASES=()
while (($#)); do
    case "$1" in
    --keep) KEEP=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "rehearse-arm64.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) RELEASES+=("$1") ;;
    esac
    shift
done
((${#RELEASES[@]})) || RELEASES=(bookworm trixie)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(dirname "$HERE")
STATE=${EDGEMOOD_REHEARSE_DIR:-/var/cache/edgemood-rehearse}
MIRROR=${EDGEMOOD_REHEARSE_MIRROR:-http://deb.debian.org/debian}
# What Raspberry Pi OS Lite starts from; install.sh adds python3-venv,
# python3-numpy and python3-systemd itself.
BASE_PACKAGES=systemd,python3,ca-certificates
CPU=${EDGEMOOD_REHEARSE_CPU:-cortex-a72}
# The replay: 24 frames, one every 0.5 s, so the emulated daemon keeps up.
INTERVAL_S=0.5
RUN_LIMIT_S=300

# ------------------------------------------------------------------ checks
((EUID == 0)) || die "run it as root (sudo $0): debootstrap and chroot need it"
for tool in debootstrap qemu-aarch64-static update-binfmts chroot; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install debootstrap qemu-user-static binfmt-support)"
done
if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
update-binfmts --display qemu-aarch64 | grep -q '(enabled)' || update-binfmts --enable qemu-aarch64 ||
    die "cannot enable qemu-aarch64 in binfmt_misc (update-binfmts --enable qemu-aarch64)"
for release in "${RELEASES[@]}"; do
    [[ -f "$HERE/constraints-$release.txt" ]] || die "no deploy/constraints-$release.txt: which Raspberry Pi OS release is '$release'?"
done
mkdir -p "$STATE"

step() { printf '\n==> [%s] %s\n' "$release" "$*"; }

# The checkout as git sees it, uncommitted changes included, without ignored files.
copy_checkout() {
    local target=$1
    mkdir -p "$target"
    if git -C "$SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$SOURCE_DIR" ls-files -z --cached --others --exclude-standard |
            (cd "$SOURCE_DIR" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
            tar -C "$SOURCE_DIR" --null -T - -cf - | tar -C "$target" -xf -
    else
        tar -C "$SOURCE_DIR" --exclude=.venv --exclude=__pycache__ -cf - . | tar -C "$target" -xf -
    fi
}

# Sets ARCHIVE: the release's base root as a tar file, built on first use.
base_root() {
    local build started=$SECONDS
    ARCHIVE="$STATE/$release-arm64.tar"
    [[ -f "$ARCHIVE" ]] && return 0
    step "building the $release arm64 base root with debootstrap (once; cached as $ARCHIVE)"
    build=$(mktemp -d "$STATE/build-$release.XXXXXX")
    debootstrap --arch=arm64 --variant=minbase --include="$BASE_PACKAGES" "$release" "$build" "$MIRROR" \
        >"$STATE/$release-debootstrap.log" 2>&1 ||
        { tail -20 "$STATE/$release-debootstrap.log"; die "debootstrap $release failed (log: $STATE/$release-debootstrap.log)"; }
    tar -C "$build" -cf "$ARCHIVE.part" . && mv "$ARCHIVE.part" "$ARCHIVE"
    rm -rf "$build"
    echo "base root built in $((SECONDS - started)) s" >"$STATE/$release-debootstrap.time"
}

# Run a shell command inside the root, with a clean environment, on the emulated CPU.
inside() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 QEMU_CPU="$CPU" bash -c "$1"
}

# What a Raspberry Pi 4's kernel says about its four Cortex-A72 cores.
pi_cpuinfo() {
    local core
    for core in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$core"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done
}

release_mounts() {
    local mount_point
    for mount_point in "$ROOT/proc/cpuinfo" "$ROOT/dev" "$ROOT/proc"; do
        if mountpoint -q "$mount_point"; then umount -l "$mount_point"; fi
    done
}

cleanup() {
    [[ -n "${ROOT:-}" ]] || return 0
    release_mounts
    ((KEEP)) || rm -rf "$ROOT"
}
trap cleanup EXIT

rehearse() {
    local started stage log="$STATE/$release.log" summary="$STATE/$release-summary.txt" code
    base_root
    started=$SECONDS stage=$SECONDS
    ROOT=$(mktemp -d "$STATE/root-$release.XXXXXX")
    tar -C "$ROOT" -xf "$ARCHIVE"
    mount -t proc proc "$ROOT/proc"
    pi_cpuinfo >"$ROOT/root/cpuinfo"
    mount --bind "$ROOT/root/cpuinfo" "$ROOT/proc/cpuinfo"
    mkdir -p "$ROOT/sys/devices/system/cpu"
    echo 0-3 | tee "$ROOT/sys/devices/system/cpu/possible" >"$ROOT/sys/devices/system/cpu/present"
    mount --bind /dev "$ROOT/dev"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # debootstrap leaves /etc/hosts out; every installed system has localhost in it.
    [[ -e "$ROOT/etc/hosts" ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
    # Behind a TLS-inspecting proxy pip needs the CA certificates the host added.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
        inside 'update-ca-certificates' >/dev/null 2>&1
    fi
    # As in any container: packages must not try to start services in here.
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
    copy_checkout "$ROOT/root/edgemood"
    : >"$log"
    {
        echo "release: $release (Debian arm64 under qemu-user-static as a $CPU; $(cat "$STATE/$release-debootstrap.time" 2>/dev/null || echo 'base root cached'))"
        echo "checkout: $(git -C "$SOURCE_DIR" describe --always --dirty 2>/dev/null || echo 'not a git checkout')"
    } >"$summary"

    step "deploy/install.sh --no-camera"
    inside 'cd /root/edgemood && bash deploy/install.sh --no-camera' >>"$log" 2>&1 ||
        { tail -30 "$log"; die "$release: install.sh failed (log: $log)"; }
    echo "install.sh --no-camera: ok in $((SECONDS - stage)) s" | tee -a "$summary"
    inside '/opt/edgemood/venv/bin/python -I - <<EOF
import importlib.metadata as m, platform, numpy
print("python", platform.python_version(), platform.machine())
print("numpy", numpy.__version__, "from", numpy.__file__.split("/numpy/")[0])
for name in ("ai-edge-litert", "opencv-python-headless", "paho-mqtt", "python-mpd2", "edgemood"):
    print(name, m.version(name))
EOF' | tee -a "$summary"

    step "edgemood classify"
    stage=$SECONDS
    inside '/opt/edgemood/venv/bin/edgemood classify /root/edgemood/edgemood/demo/photos/astronaut.jpg /root/edgemood/edgemood/demo/photos/hopper.jpg' |
        tee -a "$summary"
    inside '/opt/edgemood/venv/bin/edgemood classify --json /root/edgemood/edgemood/demo/photos/astronaut.jpg' |
        grep -q '"mood": "happy"' || die "$release: the astronaut is not classified happy"
    echo "classify: the astronaut is happy ($((SECONDS - stage)) s for both runs)" | tee -a "$summary"

    step "a replay and its config"
    inside '/opt/edgemood/venv/bin/python -I -c "from pathlib import Path
from edgemood.demo_frames import Scene, write_replay
write_replay(Path(\"/root/replay\"), (Scene(\"astronaut\", 8), Scene(\"nobody\", 8), Scene(\"hopper\", 8)))"'
    # dwell and absence in frames, with half a frame of slack (as the demo does)
    cat >"$ROOT/root/rehearse.toml" <<EOF
[camera]
source = "dir:/root/replay"
interval_s = $INTERVAL_S
loop = false
[model]
personal = false
[mood]
min_dwell_s = $(awk "BEGIN { print 3.5 * $INTERVAL_S }")
absent_after_s = $(awk "BEGIN { print 5.5 * $INTERVAL_S }")
[mpd]
enabled = false
[mqtt]
enabled = false
EOF

    step "edgemood doctor"
    inside '/opt/edgemood/venv/bin/edgemood doctor -c /root/rehearse.toml' | tee -a "$summary" ||
        die "$release: doctor failed on the replay config"
    echo "doctor -c /etc/edgemood/edgemood.toml (the installed defaults; no camera, MPD or broker in this root):" | tee -a "$summary"
    code=0
    inside '/opt/edgemood/venv/bin/edgemood doctor -c /etc/edgemood/edgemood.toml' | tee -a "$summary" || code=$?
    echo "(exit $code)" | tee -a "$summary"

    step "edgemood run on the replay"
    stage=$SECONDS
    code=0
    inside "/opt/edgemood/venv/bin/edgemood --log-level info run -c /root/rehearse.toml >/root/run.log 2>&1 & pid=\$!
for _ in \$(seq $RUN_LIMIT_S); do
    grep -q 'finished' /root/run.log && break
    kill -0 \$pid 2>/dev/null || break
    sleep 1
done
kill -TERM \$pid 2>/dev/null
wait \$pid" || code=$?
    cat "$ROOT/root/run.log" >>"$log"
    grep -E 'mood .* -> |finished|stopped' "$ROOT/root/run.log" | sed -E 's/^[0-9-]+ [0-9:,]+ //' | tee -a "$summary"
    ((code == 0)) || { tail -20 "$ROOT/root/run.log"; die "$release: edgemood run exited with $code"; }
    grep -q 'mood uncertain -> happy' "$ROOT/root/run.log" || die "$release: the run never saw the smile"
    grep -q -- '-> absent' "$ROOT/root/run.log" || die "$release: the run never noticed that nobody was there"
    echo "run: exit 0 after $((SECONDS - stage)) s" | tee -a "$summary"

    echo "PASS $release in $((SECONDS - started)) s from the base root" | tee -a "$summary"
    release_mounts
    ((KEEP)) && echo "kept the root: $ROOT" || rm -rf "$ROOT"
    ROOT=""
}

for release in "${RELEASES[@]}"; do
    rehearse
done
echo
for release in "${RELEASES[@]}"; do
    tail -1 "$STATE/$release-summary.txt"
done
echo "summaries and logs: $STATE"
