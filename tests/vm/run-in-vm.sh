#!/usr/bin/env bash
# Runs PROGRAM [ARGS...] inside a qemu VM on Debian's kernel with the vivid and
# v4l2loopback drivers loaded, and exits with its exit code. Its output is printed after
# the VM powers off.
#
# The VM sees the host's root file system read-only (so host-built binaries run as they
# are, wherever the checkout is), a fresh tmpfs on /run with TMPDIR=/run/tmp, and the
# devices /dev/video0 and /dev/video1 (vivid webcams)
# and /dev/video10 (v4l2loopback, MJPEG once a writer sets its format). Environment
# variables named CAMFLEET_* and RUST_* are passed in; CAMFLEET_IN_VM=1 is set.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$("$HERE/prepare.sh")
KVER=$(cat "$CACHE/kernel/version")
MODROOT="$CACHE/kernel/root/lib/modules/$KVER"
TIMEOUT=${CAMFLEET_VM_TIMEOUT:-1800}

[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]" >&2; exit 2; }

# Modules in dependency order: virtio and 9p for the shared file systems, virtio_console
# for the output port, then the video stack and vivid.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
9pnet 9pnet_virtio netfs fscache 9p virtio_console
rc-core cec mc videodev videobuf2-common videobuf2-v4l2 videobuf2-memops videobuf2-vmalloc
videobuf2-dma-contig v4l2-dv-timings v4l2-tpg vivid"

initramfs="$CACHE/initramfs-$KVER-$(sha1sum "$0" | cut -c1-12).cpio.gz"
if [ ! -f "$initramfs" ]; then
    work=$(mktemp -d "$CACHE/initramfs.XXXXXX")
    mkdir -p "$work"/{bin,dev,proc,sys,newroot,lib/modules}
    cp /bin/busybox "$work/bin/busybox"
    for app in $(/bin/busybox --list); do
        [ "$app" = busybox ] || ln -s busybox "$work/bin/$app"
    done
    : > "$work/modules"
    for m in $MODULES; do
        f=$(find "$MODROOT" -name "$m.ko" -o -name "${m//-/_}.ko" | head -1)
        if [ -z "$f" ]; then
            echo "run-in-vm: module $m not found (built into the kernel?)" >&2
            continue
        fi
        cp "$f" "$work/lib/modules/"
        echo "$(basename "$f")" >> "$work/modules"
    done
    cp "$CACHE/v4l2loopback.ko" "$work/lib/modules/"
    cat > "$work/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do
    case $m in
        vivid.ko) insmod /lib/modules/$m n_devs=2 node_types=0x1,0x1 num_inputs=1,1 input_types=0,0 ;;
        *) insmod /lib/modules/$m ;;
    esac
done
insmod /lib/modules/v4l2loopback.ko devices=1 exclusive_caps=1 video_nr=10 card_label=mjpeg-loop
ip link set lo up
mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,ro hostroot /newroot
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs run /newroot/run
mkdir -p /newroot/run/tmp
run=$(cat /sys/firmware/qemu_fw_cfg/by_name/opt/camfleet/run/raw 2>/dev/null)
[ -n "$run" ] || run=$(sed -n 's/.*camfleet.run=\([^ ]*\).*/\1/p' /proc/cmdline)
mount -t 9p -o trans=virtio,version=9p2000.L run "/newroot$run"
port=
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = out ] && port=/dev/$(basename "$p")
done
chroot /newroot /bin/sh "$run/command" > "/newroot$port" 2>&1
echo $? > "/newroot$run/exit"
sync
poweroff -f
INIT
    chmod +x "$work/init"
    (cd "$work" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$initramfs.tmp"
    mv "$initramfs.tmp" "$initramfs"
    rm -rf "$work"
fi

mkdir -p "$CACHE/runs"
RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
{
    echo "export CAMFLEET_IN_VM=1 HOME=/run/tmp TMPDIR=/run/tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    env | grep -E '^(CAMFLEET|RUST)_' | grep -v '^CAMFLEET_IN_VM=' | sed "s/'/'\\\\''/g; s/=\\(.*\\)/='\\1'/; s/^/export /" || true
    printf 'cd %q\n' "$PWD"
    printf '%q ' "$@"; echo
} > "$RUN/command"
: > "$RUN/output"

started=$(date +%s.%N)
timeout "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg -cpu max -smp 2 -m 1024 \
    -display none -monitor none -no-reboot \
    -serial "file:$RUN/console.log" \
    -kernel "$CACHE/kernel/vmlinux" -initrd "$initramfs" \
    -append "console=ttyS0 quiet panic=-1 camfleet.run=$RUN" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$RUN,mount_tag=run,security_model=none,multidevs=remap" \
    -device virtio-serial-pci \
    -chardev "file,id=out,path=$RUN/output" \
    -device virtserialport,chardev=out,name=out || true
ended=$(date +%s.%N)

cat "$RUN/output"
if [ ! -f "$RUN/exit" ]; then
    echo "run-in-vm: the VM stopped before the command finished; its console:" >&2
    tail -40 "$RUN/console.log" >&2
    exit 1
fi
python3 -c "import sys; print('run-in-vm: VM ran %.1f s' % (float(sys.argv[2]) - float(sys.argv[1])), file=sys.stderr)" "$started" "$ended"
exit "$(cat "$RUN/exit")"
