#!/usr/bin/env bash
# The one place the test suites install what they need. Each suite calls it for its group
# before it starts; a group whose tools are there installs nothing.
#
#   tests/deps.sh browser   Debian's chromium, Node.js and npm; playwright-core into web/test
#   tests/deps.sh service   systemd-analyze, to verify the unit file
#   tests/deps.sh players   ffmpeg and VLC (cvlc), the clients that read streams as a user's
#                           tools do
#   tests/deps.sh mqtt      Debian's mosquitto broker and its clients (mosquitto_sub/pub)
#   tests/deps.sh netns     iproute2's `ip`, which makes network namespaces for several hosts
#   tests/deps.sh python    a virtual environment under target/ with prometheus-client,
#                           jsonschema, PyYAML, OpenCV (opencv-python-headless), and what
#                           the Python client and its tests use (websockets, protobuf,
#                           pytest, Pillow, grpcio-tools) and schemathesis, which tests
#                           the OpenAPI document; prints its python's path
#   tests/deps.sh cross     Debian's ARM (armhf) C and C++ cross compilers, for `cargo check`
#                           of the C inside ring and the C++ inside OpenH264 for 32-bit
#                           Raspberry Pi OS
#   tests/deps.sh bench     Debian's libjpeg-turbo headers, for the encoder benchmark's
#                           baseline (benches/encoder/turbo.c)
#   tests/deps.sh ustreamer Debian's ustreamer, run beside camfleet in the VM by
#                           benches/ustreamer
#   tests/deps.sh vm        what the V4L2 test VM needs (qemu, busybox, kmod, cpio,
#                           v4l-utils, make and gcc for v4l2loopback, and udev, whose
#                           udevadm tests deploy/udev's rule)
#
# Debian packages: `apt-get update` runs once per boot, before the first install; a lock
# keeps suites that run at once from calling apt-get together. Python packages go into the
# virtual environment (stock Debian refuses pip installs into the system Python).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
log() { printf 'deps: %s\n' "$*" >&2; }

# The packages among "package:command" pairs whose command is missing.
missing() {
    local p
    for p in "$@"; do
        command -v "${p#*:}" >/dev/null 2>&1 || printf '%s\n' "${p%%:*}"
    done
}

# Installs the Debian packages of "package:command" pairs whose command is missing.
debian() {
    [ -z "$(missing "$@")" ] && return 0
    exec 9>/tmp/camfleet-apt.lock
    flock 9
    local need
    mapfile -t need < <(missing "$@")
    [ ${#need[@]} -eq 0 ] && return 0
    if [ ! -f /tmp/camfleet-apt-updated ]; then
        $SUDO apt-get update -qq >&2
        touch /tmp/camfleet-apt-updated
    fi
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}

case "${1:-}" in
browser)
    debian chromium:chromium nodejs:node npm:npm
    if [ ! -d "$repo/web/test/node_modules/playwright-core" ]; then
        log "installing playwright-core"
        (cd "$repo/web/test" && npm ci --no-audit --no-fund >&2)
    fi
    ;;
service)
    debian systemd:systemd-analyze
    ;;
players)
    debian ffmpeg:ffmpeg vlc-bin:cvlc vlc-plugin-base:cvlc
    ;;
bench)
    [ -f /usr/include/jpeglib.h ] || debian libjpeg62-turbo-dev:__no_such_command__
    ;;
ustreamer)
    debian ustreamer:ustreamer
    ;;
netns)
    debian iproute2:ip
    ;;
mqtt)
    debian mosquitto:mosquitto_passwd mosquitto-clients:mosquitto_sub
    ;;
python)
    venv="$repo/target/test-venv"
    # Tests that run at once all ask for it: one makes it, the others wait for it whole.
    mkdir -p "$repo/target"
    exec 8>"$repo/target/.test-venv.lock"
    flock 8
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" >&2 2>/dev/null || {
            debian python3-venv:__no_such_command__
            python3 -m venv "$venv" >&2
        }
    fi
    "$venv/bin/python" -c "import prometheus_client, cv2, jsonschema, yaml, websockets, google.protobuf, pytest, PIL, grpc_tools, schemathesis" 2>/dev/null ||
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            prometheus-client opencv-python-headless jsonschema pyyaml \
            websockets protobuf pytest pillow grpcio-tools schemathesis >&2
    printf '%s\n' "$venv/bin/python"
    ;;
cross)
    debian gcc-arm-linux-gnueabihf:arm-linux-gnueabihf-gcc g++-arm-linux-gnueabihf:arm-linux-gnueabihf-g++
    # The ARM C library's headers are only recommended by the compiler's package.
    [ -f /usr/arm-linux-gnueabihf/include/stdio.h ] ||
        debian libc6-dev-armhf-cross:__no_such_command__
    ;;
vm)
    debian qemu-system-x86:qemu-system-x86_64 busybox-static:busybox kmod:depmod cpio:cpio ffmpeg:ffprobe \
        v4l-utils:v4l2-ctl make:make gcc:gcc python3:python3 udev:udevadm
    [ -x /bin/busybox ] || debian busybox-static:__no_such_command__
    ;;
*)
    echo "usage: $0 browser|service|players|bench|ustreamer|mqtt|netns|python|cross|vm" >&2
    exit 2
    ;;
esac
