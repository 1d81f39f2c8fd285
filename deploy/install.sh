#!/usr/bin/env bash
# Install edgemood as a systemd service on Raspberry Pi OS (Bookworm or Trixie,
# 64-bit) or Debian: apt packages, a dedicated user, a venv that sees apt's
# numpy and picamera2, the config (kept across upgrades) and the unit.
#
#   sudo deploy/install.sh              install, or upgrade after a `git pull`
#   sudo deploy/install.sh --uninstall  remove; config and state are kept
#
# Running it again is always safe: it converges to the same state and never
# touches an existing /etc/edgemood/edgemood.toml.
set -euo pipefail
# The service user reads the venv and the example config: a strict root umask
# (077) must not leave them unreadable.
umask 022

usage() {
    cat <<'EOF'
Usage: sudo deploy/install.sh [--with-mpd] [--no-camera] [--prefix DIR] [--dry-run] [--uninstall]

Installs (or upgrades, when run again) the edgemood service.

  --with-mpd    also install the mpd package
  --no-camera   skip python3-picamera2 (the default when this is not a
                Raspberry Pi; use a "v4l2:" or "file:" camera source then)
  --prefix DIR  install below DIR instead of /, and change nothing outside it:
                the apt, user and systemctl steps are printed, not run
  --dry-run     print every step, run none
  --uninstall   stop and remove the service and its venv; keep the config
                (/etc/edgemood), the state (/var/lib/edgemood) and the user
  -h, --help    this text
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

usage_error() {
    echo "install.sh: $*" >&2
    exit 2
}

# ------------------------------------------------------------------ options
PREFIX=""
DRY_RUN=0
CAMERA=auto
WITH_MPD=0
UNINSTALL=0
while (($#)); do
    case "$1" in
    --with-mpd) WITH_MPD=1 ;;
    --no-camera) CAMERA=no ;;
    --prefix)
        if (($# < 2)) || [[ -z "$2" ]]; then usage_error "--prefix needs a directory"; fi
        PREFIX=$(realpath -m -- "$2")
        shift
        ;;
    --dry-run) DRY_RUN=1 ;;
    --uninstall) UNINSTALL=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[[ "$PREFIX" == "/" ]] && PREFIX=""
# The unit's paths are rewritten with sed s|...|...|.
[[ "$PREFIX" != *"|"* ]] || usage_error "--prefix must not contain '|'"

# ------------------------------------------------------------------ layout
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(dirname "$HERE")
# The distro's interpreter: apt's numpy and picamera2 are built for it, not
# for a pyenv or /usr/local Python that may come first on PATH.
PYTHON=/usr/bin/python3
SERVICE_USER=edgemood
APP_DIR="$PREFIX/opt/edgemood"
VENV="$APP_DIR/venv"
CONF_DIR="$PREFIX/etc/edgemood"
CONFIG="$CONF_DIR/edgemood.toml"
CRED_DIR="$CONF_DIR/credentials"
UNIT="$PREFIX/etc/systemd/system/edgemood.service"

# ------------------------------------------------------------------ helpers
step() { printf '==> %s\n' "$*"; }

# Run a command that writes below the prefix (or anywhere, without one).
run() {
    if ((DRY_RUN)); then
        printf 'would run:'; printf ' %q' "$@"; printf '\n'
        return 0
    fi
    printf '+'; printf ' %q' "$@"; printf '\n'
    "$@"
}

# Run a command that changes the system outside any prefix: apt, users, systemd.
system() {
    if [[ -n "$PREFIX" ]]; then
        printf 'skipped (--prefix):'; printf ' %q' "$@"; printf '\n'
        return 0
    fi
    run "$@"
}

# Group ownership for the config the service reads: the user step creates the
# group; below a prefix it is used only if it exists already.
group_option() {
    if [[ -z "$PREFIX" ]] || { ((EUID == 0)) && getent group "$SERVICE_USER" >/dev/null; }; then
        printf -- '--group=%s' "$SERVICE_USER"
    fi
}

# systemd's own test (sd_booted): is it the init system of this machine?
systemd_running() {
    [[ -d /run/systemd/system ]]
}

on_raspberry_pi() {
    grep -qs "Raspberry Pi" /proc/device-tree/model
}

os_codename() {
    # shellcheck disable=SC1091
    (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}") || echo unknown
}

# -I: the checkout in the working directory must not shadow what is installed.
python_says() {
    "$1" -I -c "$2" 2>/dev/null
}

# A venv is reused only if it runs, matches the distro's Python (a release
# upgrade replaces it) and sees the system site-packages.
venv_usable() {
    [[ -x "$VENV/bin/python" ]] &&
        grep -qs '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" &&
        [[ "$(python_says "$VENV/bin/python" 'import sys; print(sys.version_info[:2])')" == \
            "$(python_says "$PYTHON" 'import sys; print(sys.version_info[:2])')" ]]
}

# A copy of the checkout without build leftovers: a stale build/ would ship
# deleted modules, and a root-owned one would break the owner's own builds.
staged_source() {
    local stage
    stage=$(mktemp -d)
    tar -C "$SOURCE_DIR" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
        --exclude=.venv --exclude=venv --exclude=__pycache__ --exclude=runs --exclude=.cache \
        --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$stage" -xf -
    echo "$stage"
}

# ------------------------------------------------------------------ checks
if ((EUID != 0)) && [[ -z "$PREFIX" ]] && ((!DRY_RUN)); then
    die "run it as root (sudo $0), or with --prefix DIR / --dry-run"
fi

uninstall() {
    step "Stopping and removing the service"
    if [[ -e "$UNIT" ]]; then
        system systemctl disable --now edgemood.service
        run rm -f "$UNIT"
        system systemctl daemon-reload
    fi
    step "Removing the venv"
    run rm -rf "$APP_DIR"
    echo "Kept: $CONF_DIR (config, credentials), /var/lib/edgemood (state), user $SERVICE_USER."
    echo "To remove those too: sudo rm -rf $CONF_DIR /var/lib/edgemood && sudo userdel $SERVICE_USER"
}

if ((UNINSTALL)); then
    uninstall
    exit 0
fi

[[ -f "$SOURCE_DIR/pyproject.toml" ]] || die "$SOURCE_DIR is not an edgemood checkout (no pyproject.toml)"
[[ -x "$PYTHON" ]] || die "$PYTHON is missing (sudo apt-get install python3)"
python_says "$PYTHON" 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is Python $(python_says "$PYTHON" 'import platform; print(platform.python_version())'); edgemood needs 3.11 or newer (Raspberry Pi OS Bookworm or later)"
case "$(uname -m)" in
aarch64 | x86_64) ;;
*) die "$(uname -m) is not supported: the TFLite runtime has wheels for 64-bit systems only; install the 64-bit Raspberry Pi OS" ;;
esac
if [[ "$CAMERA" == auto ]]; then
    if on_raspberry_pi; then CAMERA=yes; else CAMERA=no; fi
fi
CODENAME=$(os_codename)
CONSTRAINTS="$HERE/constraints-$CODENAME.txt"

# ------------------------------------------------------------------ apt
step "Installing apt packages"
# python3-systemd: journald fields and sd_notify without compiling systemd-python.
packages=(python3-venv python3-numpy python3-systemd)
[[ "$CAMERA" == yes ]] && packages+=(python3-picamera2)
((WITH_MPD)) && packages+=(mpd)
system apt-get update
system apt-get install -y --no-install-recommends "${packages[@]}"

# ------------------------------------------------------------------ user
step "Creating the service user"
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    system useradd --system --user-group --home-dir /var/lib/edgemood --no-create-home \
        --shell /usr/sbin/nologin --comment "edgemood daemon" "$SERVICE_USER"
fi
# video opens the camera nodes, also for `sudo -u edgemood edgemood doctor`.
system usermod --append --groups video "$SERVICE_USER"

# ------------------------------------------------------------------ venv
step "Installing edgemood into $VENV"
apt_numpy=$(python_says "$PYTHON" 'import numpy; print(numpy.__version__)') || apt_numpy=""
if [[ -z "$apt_numpy" ]]; then
    ((DRY_RUN)) || die "apt's numpy is not importable by $PYTHON (sudo apt-get install python3-numpy)"
    apt_numpy="<apt's version>"
fi
if venv_usable; then
    echo "reusing $VENV"
else
    run "$PYTHON" -m venv --clear --system-site-packages "$VENV"
fi
pins="$VENV/apt-pins.txt"
# pip must never install a numpy of its own over apt's: picamera2's simplejpeg
# and python3-libcamera are built against apt's, and pip resolves the OpenCV
# and TFLite runtime versions that accept it.
if ((DRY_RUN)); then
    echo "would write $pins: numpy==$apt_numpy"
else
    echo "numpy==$apt_numpy" >"$pins"
fi
constraint_args=(--constraint "$pins")
if [[ -f "$CONSTRAINTS" ]]; then
    constraint_args+=(--constraint "$CONSTRAINTS")
else
    echo "note: no tested pins for '$CODENAME' ($CONSTRAINTS); pip chooses versions that fit numpy $apt_numpy"
fi
if ((DRY_RUN)); then
    source_spec="<a clean copy of $SOURCE_DIR>"
else
    source_spec=$(staged_source)
    trap 'rm -rf "$source_spec"' EXIT
fi
run "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade --upgrade-strategy only-if-needed \
    "${constraint_args[@]}" "$source_spec"

if ((!DRY_RUN)); then
    step "Checking the installed daemon"
    venv_numpy=$(python_says "$VENV/bin/python" 'import numpy; print(numpy.__version__)') || venv_numpy="none"
    [[ "$venv_numpy" == "$apt_numpy" ]] || die "the venv sees numpy $venv_numpy instead of apt's $apt_numpy"
    "$VENV/bin/python" -I -c 'from edgemood.inference.model import MoodModel; MoodModel()' ||
        die "the installed edgemood cannot load its model (see the error above)"
    if [[ "$CAMERA" == yes ]]; then
        "$VENV/bin/python" -I -c 'import picamera2' || die "apt's picamera2 is not importable from the venv"
    fi
    "$VENV/bin/edgemood" --version
fi

# ------------------------------------------------------------------ config
step "Installing the config in $CONF_DIR"
group=$(group_option)
run install -d -m 0750 ${group:+"$group"} "$CONF_DIR"
# Secret files for LoadCredential=: read by systemd as root, never by the service directly.
run install -d -m 0700 "$CRED_DIR"
# The example always follows the installed version; the live config never does.
run install -m 0644 "$HERE/edgemood.example.toml" "$CONF_DIR/edgemood.example.toml"
if [[ -e "$CONFIG" ]]; then
    echo "keeping $CONFIG"
else
    run install -m 0640 ${group:+"$group"} "$HERE/edgemood.example.toml" "$CONFIG"
fi

# ------------------------------------------------------------------ unit
step "Installing and starting the service"
unit_text=$(sed -e "s|/opt/edgemood/|$PREFIX/opt/edgemood/|g" -e "s|/etc/edgemood/|$PREFIX/etc/edgemood/|g" \
    "$HERE/edgemood.service")
run install -d -m 0755 "$(dirname "$UNIT")"
if ((DRY_RUN)); then
    echo "would write $UNIT"
else
    printf '%s\n' "$unit_text" >"$UNIT"
    chmod 0644 "$UNIT"
fi
if [[ -n "$PREFIX" ]] || systemd_running; then
    system systemctl daemon-reload
    system systemctl enable edgemood.service
    # Type=notify: this returns once the daemon has opened its model and camera.
    system systemctl restart edgemood.service ||
        die "edgemood is installed but did not start: see journalctl -u edgemood -n 50, fix $CONFIG, then: sudo systemctl restart edgemood"
else
    # A container or a chroot: the unit can be enabled for the next boot, not started.
    run systemctl enable edgemood.service
    echo "note: systemd is not running here (a container or chroot?): edgemood.service is enabled, not started"
fi

cat <<EOF

Done. Edit $CONFIG, then:
  sudo systemctl restart edgemood     apply the config
  systemctl status edgemood           is it running? (the status line shows mood and fps)
  journalctl -u edgemood -f           its log
  sudo -u $SERVICE_USER $VENV/bin/edgemood doctor -c $CONFIG
EOF
