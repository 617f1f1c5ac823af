#!/usr/bin/env bash
# Prepares everything the V4L2 test VM needs and caches it; prints the cache directory.
#
# - Debian packages: qemu-system-x86, busybox-static, kmod, cpio, v4l-utils, python3 (and,
#   for building v4l2loopback, make and gcc), installed by tests/deps.sh on first use.
# - The kernel that Debian's linux-image-amd64 depends on, unpacked, with its vmlinux cut out
#   of vmlinuz (booting the uncompressed ELF saves seconds per boot).
# - v4l2loopback built for that exact kernel, so an MJPEG device exists in the VM too.
#
# Cache: $CAMFLEET_VM_CACHE, or ~/.cache/camfleet-vm. Delete it to start afresh.
set -euo pipefail

CACHE=${CAMFLEET_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/camfleet-vm}
mkdir -p "$CACHE"
log() { printf 'vm-prepare: %s\n' "$*" >&2; }

"$(dirname "$0")/../deps.sh" vm

# The kernel: the image linux-image-amd64 depends on right now.
if [ ! -f "$CACHE/kernel.ready" ]; then
    image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$image" ] || { apt-get update -qq >&2; image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
    kver=${image#linux-image-}
    log "fetching $image"
    rm -rf "$CACHE/kernel" && mkdir -p "$CACHE/kernel"
    (cd "$CACHE/kernel" && apt-get -o APT::Sandbox::User=root download "$image" >&2)
    dpkg -x "$CACHE"/kernel/*.deb "$CACHE/kernel/root"
    depmod -b "$CACHE/kernel/root" "$kver"
    python3 - "$CACHE/kernel/root/boot/vmlinuz-$kver" "$CACHE/kernel/vmlinux" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
start = data.find(b"\xfd7zXZ\x00")
if start < 0:
    sys.exit("no xz stream in " + sys.argv[1])
d = lzma.LZMADecompressor()
open(sys.argv[2], "wb").write(d.decompress(data[start:]))
PY
    echo "$kver" > "$CACHE/kernel/version"
    touch "$CACHE/kernel.ready"
fi
kver=$(cat "$CACHE/kernel/version")

# v4l2loopback for that kernel: its headers, the kbuild tools of the same version, the
# module's source, then a build with the host's gcc.
if [ ! -f "$CACHE/loopback.ready" ]; then
    log "building v4l2loopback for $kver"
    kpkgver=$(dpkg-deb -f "$CACHE"/kernel/*.deb Version)
    base=${kver%-amd64}
    rm -rf "$CACHE/loopback" && mkdir -p "$CACHE/loopback" && cd "$CACHE/loopback"
    apt-get -o APT::Sandbox::User=root download "linux-headers-$kver=$kpkgver" "linux-headers-$base-common=$kpkgver" >&2
    kbuild=$(apt-cache depends "linux-headers-$kver=$kpkgver" | awk '/Depends: linux-kbuild/ {print $2; exit}')
    apt-get -o APT::Sandbox::User=root download "$kbuild=$kpkgver" >&2 || apt-get -o APT::Sandbox::User=root download "$kbuild" >&2
    apt-get -o APT::Sandbox::User=root download v4l2loopback-dkms >&2
    for deb in *.deb; do dpkg -x "$deb" root; done
    hdr="$CACHE/loopback/root/usr/src/linux-headers-$kver"
    # The -amd64 headers include the -common ones by absolute path; their links to the
    # kbuild tools are relative and resolve inside the unpacked tree as they are.
    grep -rl "/usr/src/linux-headers-$base-common" "$hdr" --include=Makefile | while read -r f; do
        sed -i "s#/usr/src/linux-headers-$base-common#$CACHE/loopback/root/usr/src/linux-headers-$base-common#g" "$f"
    done
    src=$(ls -d "$CACHE"/loopback/root/usr/src/v4l2loopback-*)
    make -s -C "$hdr" M="$src" modules CC=gcc >&2
    cp "$src/v4l2loopback.ko" "$CACHE/v4l2loopback.ko"
    want=$(modinfo -F vermagic "$(find "$CACHE/kernel/root/lib/modules/$kver" -name 'videodev.ko*' | head -1)")
    have=$(modinfo -F vermagic "$CACHE/v4l2loopback.ko")
    [ "$want" = "$have" ] || { log "vermagic mismatch: kernel '$want', module '$have'"; exit 1; }
    touch "$CACHE/loopback.ready"
fi

echo "$CACHE"
