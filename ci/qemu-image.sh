#!/bin/bash
# QEMU image validation: the disposable target rootfs (FR1_FLAVOR, FR1_SUITE
# and FR1_ARCH as for ci/target-image.sh; CI uses CIP's trixie image) made
# bootable (Debian's kernel of the architecture, systemd), the Debian
# package of that architecture installed in it with apt (offline, from a
# local repository), written to an ext4 disk image and booted with
# qemu-system-x86_64, or for FR1_ARCH=arm64 qemu-system-aarch64 (-M virt,
# always TCG; the image's own install steps run under qemu-user here). A
# systemd unit runs the suite on the booted system and powers it off; the
# JUnit report, the evidence and the exit status come back to the host over
# a 9p share, the serial console is logged.
#
#   ci/qemu-image.sh [--out DIR] [--timeout SECONDS] [-- SUITE-ARGS...]
#   FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh -- TC_CR1.11_3
#   ci/qemu-image.sh --disk-image EXT4 --kernel FILE --initrd FILE
#                    [--out DIR] [--timeout SECONDS] [-- SUITE-ARGS...]
#   ci/qemu-image.sh --prepare
#
# --prepare: only build (or find cached) the package, the rootfs and the
# boot layer; ci/test.sh starts that early, in the background.
# --disk-image: boot a root file system image made elsewhere (the Isar-built
# CIP security image of ci/isar-build.sh --image, which has the package
# already) instead: a copy of it, grown by 512 MiB, gets the run unit and is
# booted with the given kernel and initrd; nothing else is built.
#
# Exit status: the suite's (0 only if every selected test case passed), 1 if
# the image could not be built or booted or no result came back, 124 on
# timeout (default 1200 s: the whole suite takes about 330 s under TCG, three
# times its native time, most of it the lockout cases' waits). TCG by default; KVM only when a short probe boot under KVM works.
# Results in --out (default target/qemu-image): junit.xml, report.html (the
# assessor's report), evidence/, console.log, exit-code, apt-install.log.
# Needs root.
#
# Cached: the boot layer (kernel, systemd) on top of the cached rootfs, keyed
# like it, under $FR1_CACHE/qemu-base-<key>; the package goes in per run.
set -euo pipefail
shopt -s inherit_errexit

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Bump when the boot layer recipe changes.
QEMU_RECIPE=1
HOST_ARCH=$(dpkg --print-architecture)
ARCH=${FR1_ARCH:-$HOST_ARCH}
BOOT_PACKAGES=("linux-image-$ARCH" systemd systemd-sysv udev)
GUEST_MEMORY=2048
# A case's time limit in the guest: under TCG a case takes several times its
# native time (the default 180 s is for a hung case, and a slow target must
# not fail).
TCG_TIME_LIMIT=900
KVM_PROBE_SECONDS=15


# Mounts for a chroot at $1 (inside a private mount namespace).
chroot_mounts() {
    mount -t proc proc "$1/proc"
    mount -t sysfs -o ro sysfs "$1/sys"
    mount --rbind /dev "$1/dev"
    mount -t tmpfs tmpfs "$1/run"
    mount -t tmpfs tmpfs "$1/tmp"
}

# --- the boot layer, cached -----------------------------------------------------

# Inner half (private mount namespace): install the boot packages in an
# overlay; its upper dir is the layer. Network: the Debian archive.
inner_base() {
    local rootfs=$1 layer=$2 work=$3 m=$3/merged
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$layer,workdir=$work/ovl" "$m"
    chroot_mounts "$m"
    cp /etc/resolv.conf "$m/etc/resolv.conf"
    chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@" &&
               apt-get clean && rm -rf /var/lib/apt/lists/*' sh "${BOOT_PACKAGES[@]}"
    rm -f "$m/etc/resolv.conf"
    # The boot only: a root file system entry, no network to wait for.
    printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' > "$m/etc/fstab"
    chroot "$m" systemctl mask systemd-networkd-wait-online.service apt-daily.timer \
        apt-daily-upgrade.timer > /dev/null 2>&1 || true
}

ensure_base() { # ROOTFS -> layer path
    local rootfs=$1 key dest tmp
    key=$(printf 'recipe %s\nrootfs %s\npackages %s\n' "$QEMU_RECIPE" "$(basename "$rootfs")" \
        "${BOOT_PACKAGES[*]}" | sha256sum | cut -d' ' -f1)
    dest=$CACHE_ROOT/qemu-base-$key
    if [ -d "$dest" ]; then printf '%s\n' "$dest"; return; fi
    trap cleanup EXIT
    cache_lock "qemu-base-$key"
    if [ -d "$dest" ]; then cache_unlock; printf '%s\n' "$dest"; return; fi
    tmp=$(mktemp -d "$CACHE_ROOT/.tmp-qemu-base-$key.XXXXXX")
    CLEANUP+=("$tmp")
    mkdir "$tmp/layer" "$tmp/ovl" "$tmp/merged"
    log "building the boot layer (${BOOT_PACKAGES[*]}) once, about 1 min"
    unshare --mount --propagation private -- "$SELF" __base "$rootfs" "$tmp/layer" "$tmp" >&2 ||
        die "building the boot layer failed"
    mv -T "$tmp/layer" "$dest"
    cache_unlock
    printf '%s\n' "$dest"
}

# --- the disk image, per run ------------------------------------------------------

# The unit that runs the suite on the booted system (the root file system
# at $1, its chroot mounts in place), results to the host's 9p share.
install_run_unit() { # ROOT [SUITE-ARGS...]
    local m=$1 suite_args=''
    shift
    [ $# -eq 0 ] || suite_args=$(printf ' %q' "$@")
    install -m 0755 /dev/stdin "$m/usr/local/sbin/fr1-qemu-run" <<EOF
#!/bin/sh
# Runs the suite on the booted image (fr1-suite.service), puts the results on
# the host's 9p share and powers off: ci/qemu-image.sh.
mkdir -p /fr1-out
# The share's virtio channel exists once 9pnet_virtio has probed the device,
# which module autoloading can finish after this unit starts ("9pnet_virtio:
# no channels available for device fr1out", seen once): wait for it, bounded.
modprobe 9pnet_virtio 2> /dev/null || true
tries=0
until mount -t 9p -o trans=virtio,version=9p2000.L fr1out /fr1-out 2> /dev/null; do
    tries=\$((tries + 1))
    if [ "\$tries" -ge 60 ]; then
        echo "fr1-qemu-run: cannot mount the results share (60 s)" > /dev/console
        systemctl poweroff --no-block
        exit 1
    fi
    sleep 1
done
cut -d' ' -f1 /proc/uptime > /fr1-out/suite-start-uptime
status=0
/usr/bin/cip-iec-fr1-tests --junit /fr1-out/junit.xml --evidence-dir /fr1-out/evidence --report /fr1-out/report.html --time-limit $TCG_TIME_LIMIT$suite_args || status=\$?
echo "\$status" > /fr1-out/exit-code
sync
umount /fr1-out
systemctl poweroff --no-block
EOF
    cat > "$m/etc/systemd/system/fr1-suite.service" <<'EOF'
[Unit]
Description=cip-iec-fr1-tests on the booted image (ci/qemu-image.sh)
After=ssh.service systemd-user-sessions.service

[Service]
Type=oneshot
TimeoutStartSec=infinity
Environment=HOME=/root LANG=C.UTF-8
ExecStart=/usr/local/sbin/fr1-qemu-run
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
    chroot "$m" systemctl enable fr1-suite.service > /dev/null 2>&1
}

# Inner half for --disk-image (private mount namespace): the run unit into
# the copy of a root file system image made elsewhere (Isar).
inner_image() {
    local disk=$1 work=$2 m=$2/merged
    shift 2
    mount -o loop "$disk" "$m"
    chroot_mounts "$m"
    install_run_unit "$m" "$@"
    umount -R "$m/proc" "$m/sys" "$m/dev" "$m/run" "$m/tmp"
    umount "$m"
}

# Inner half (private mount namespace, no network): install the package with
# apt from the local repository, add the suite unit, write the disk image.
inner_disk() {
    local rootfs=$1 base=$2 work=$3 out=$4 m=$3/merged
    shift 4
    mount -t overlay overlay -o "lowerdir=$base:$rootfs,upperdir=$work/upper,workdir=$work/ovl" "$m"
    chroot_mounts "$m"
    mkdir -p "$m/fr1-out"
    mount --bind "$out" "$m/fr1-out"
    chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        sh /fr1-out/apt-install-in-image.sh > "$work/apt-install.console" 2>&1 || {
        cat "$work/apt-install.console" >&2
        die "apt install of the package in the image failed"
    }
    umount "$m/fr1-out"
    rm -f "$m/etc/apt/sources.list.d/fr1-local.list"

    install_run_unit "$m" "$@"
    cp -L "$m/vmlinuz" "$work/vmlinuz"
    cp -L "$m/initrd.img" "$work/initrd.img"
    local size_mb
    size_mb=$(du -sxm "$m" | cut -f1)
    # Unmount everything below the root first: mkfs -d copies the tree as seen.
    umount -R "$m/proc" "$m/sys" "$m/dev" "$m/run" "$m/tmp"
    mkfs.ext4 -q -F -L fr1-root -d "$m" "$work/disk.img" "$((size_mb + 512))M"
}

# --- booting ------------------------------------------------------------------------

# Does KVM boot a kernel here? A kernel without root file system panics at
# once (and with -no-reboot, QEMU exits); a KVM that hangs shows nothing.
kvm_works() {
    local kernel=$1 probe
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
    probe=$(timeout "$KVM_PROBE_SECONDS" qemu-system-x86_64 -accel kvm -m 256 -nographic \
        -no-reboot -kernel "$kernel" -append "console=ttyS0 panic=-1" < /dev/null 2>&1 || true)
    grep -q 'Kernel panic' <<< "$probe"
}

main() {
    local out=$REPO/target/qemu-image timeout_s=1200 disk_image='' kernel='' initrd='' prepare=0
    while [ $# -gt 0 ]; do
        case $1 in
            --out) out=${2:?--out needs a value}; shift ;;
            --timeout) timeout_s=${2:?--timeout needs a value}; shift ;;
            --disk-image) disk_image=$(readlink -f "${2:?--disk-image needs a file}"); shift ;;
            --kernel) kernel=$(readlink -f "${2:?--kernel needs a file}"); shift ;;
            --initrd) initrd=$(readlink -f "${2:?--initrd needs a file}"); shift ;;
            --prepare) prepare=1 ;;
            --) shift; break ;;
            -h | --help) sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$SELF"; exit 0 ;;
            __base) shift; inner_base "$@"; exit ;;
            __disk) shift; inner_disk "$@"; exit ;;
            __image) shift; inner_image "$@"; exit ;;
            *) break ;;
        esac
        shift
    done
    [ "$(id -u)" -eq 0 ] || die "must run as root"
    [ "$HOST_ARCH" = amd64 ] || die "only amd64 hosts boot these images"
    # qemu_arch: the emulator and machine, for boot() too.
    case $ARCH in
        amd64) qemu_arch=(qemu-system-x86_64) ;;
        # cortex-a57 rather than max: max adds pointer authentication,
        # which TCG emulates at a high cost in every function's prologue.
        arm64) qemu_arch=(qemu-system-aarch64 -M virt -cpu cortex-a57) ;;
        *) die "FR1_ARCH=$ARCH: no QEMU machine known (amd64, arm64)" ;;
    esac
    for tool in "${qemu_arch[0]}" mkfs.ext4 apt-ftparchive; do
        command -v "$tool" > /dev/null || die "$tool is not installed (ci/install-deps.sh)"
    done
    local t0=$EPOCHREALTIME work
    if [ -n "$disk_image" ]; then
        local f
        for f in "$disk_image" "$kernel" "$initrd"; do
            [ -f "$f" ] || die "--disk-image needs the image, --kernel and --initrd, all existing files ('$f' is not)"
        done
        mkdir -p "$out"
        out=$(cd "$out" && pwd)
        rm -rf --one-file-system -- "${out:?}"/*
        work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-qemu.XXXXXX")
        CLEANUP+=("$work")
        mkdir "$work/merged"
        cp "$disk_image" "$work/disk.img"
        # Room for what the suite writes (accounts, keys, logs): the image
        # is made about as large as its content.
        truncate -s +512M "$work/disk.img"
        e2fsck -p -f "$work/disk.img" > /dev/null || [ $? -le 1 ] || die "e2fsck of the copy of $disk_image failed"
        resize2fs -p "$work/disk.img" > /dev/null 2>&1 || die "resize2fs of the copy of $disk_image failed"
        cp "$kernel" "$work/vmlinuz"
        cp "$initrd" "$work/initrd.img"
        unshare --mount --net --propagation private -- "$SELF" __image "$work/disk.img" "$work" "$@" ||
            die "adding the suite's run unit to the copy of $disk_image failed"
        log "disk image ready in $(elapsed "$t0") s (copy of $disk_image, run unit added)"
        boot "$work" "$out" "$timeout_s" "$t0"
        return
    fi
    local debs=$REPO/target/deb/$SUITE-$ARCH
    "$REPO/ci/build-deb.sh" --arch "$ARCH" --out "$debs" > /dev/null
    # The boot layer and the disk image are made by the image's own apt
    # and shell: under qemu-user for another architecture.
    [ "$ARCH" = "$HOST_ARCH" ] || ensure_binfmt "$ARCH"
    local rootfs base
    rootfs=$("$REPO/ci/target-image.sh" build --print-path)
    base=$(ensure_base "$rootfs")
    if [ "$prepare" -eq 1 ]; then
        log "package, rootfs and boot layer ready in $(elapsed "$t0") s"
        return 0
    fi

    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    rm -rf --one-file-system -- "${out:?}"/*
    apt_repo_for_image "$out" "$debs"/cip-iec-fr1-tests_*_"$ARCH".deb
    cp "$REPO/ci/apt-install-in-image.sh" "$out/"

    work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-qemu.XXXXXX")
    CLEANUP+=("$work")
    mkdir "$work/upper" "$work/ovl" "$work/merged"
    unshare --mount --net --propagation private -- "$SELF" __disk "$rootfs" "$base" "$work" "$out" "$@" ||
        die "making the disk image failed"
    rm -rf "${out:?}/apt" "$out/apt-install-in-image.sh" "$out/program-packages"
    log "disk image ready in $(elapsed "$t0") s ($(du -h --apparent-size "$work/disk.img" | cut -f1), package installed with apt)"
    boot "$work" "$out" "$timeout_s" "$t0"
}

# Boots WORK/disk.img with WORK/vmlinuz and WORK/initrd.img, results in OUT;
# returns the suite's exit status.
boot() { # WORK OUT TIMEOUT START
    local work=$1 out=$2 timeout_s=$3 t0=$4
    local accel=tcg t2=$EPOCHREALTIME console=ttyS0
    [ "$ARCH" = amd64 ] || console=ttyAMA0
    if [ "$ARCH" = "$HOST_ARCH" ]; then
        if kvm_works "$work/vmlinuz"; then accel=kvm; fi
        log "KVM probe: $([ "$accel" = kvm ] && echo works || echo 'no (TCG)') ($(elapsed "$t2") s)"
    fi
    log "booting with $accel (timeout ${timeout_s} s)"
    local t1=$EPOCHREALTIME rc=0
    local -a qemu=("${qemu_arch[@]}" -m "$GUEST_MEMORY" -smp 2 -nographic -no-reboot
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img"
        -append "root=/dev/vda rw console=$console panic=-1"
        -drive "file=$work/disk.img,if=virtio,format=raw"
        -virtfs "local,path=$out,mount_tag=fr1out,security_model=none,id=fr1out"
        -nic none)
    if [ "$accel" = kvm ]; then
        qemu+=(-accel kvm -cpu host)
    else
        qemu+=(-accel "tcg,thread=multi")
        [ "$ARCH" != amd64 ] || qemu+=(-cpu max)
    fi
    timeout --kill-after=10 "$timeout_s" "${qemu[@]}" < /dev/null > "$out/console.log" 2>&1 || rc=$?
    local boot_s
    boot_s=$(elapsed "$t1")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        tail -n 40 "$out/console.log" >&2
        log "timed out after ${timeout_s} s"
        exit 124
    fi
    # The suite's own console lines (journal+console prefixes them).
    tr -d '\r' < "$out/console.log" | sed -n 's/^.*fr1-qemu-run\[[0-9]*\]: //p' |
        grep -E '^(test |running |suite wall|JUnit|report)' >&2 || true
    [ -f "$out/exit-code" ] || { tail -n 60 "$out/console.log" >&2; die "no result came back from the guest (qemu exit $rc)"; }
    local status
    status=$(cat "$out/exit-code")
    log "guest: suite started $(cat "$out/suite-start-uptime" 2> /dev/null || echo '?') s after boot, exit status $status"
    log "wall time: $(elapsed "$t0") s in all, $boot_s s from boot to power-off ($accel; goal under TCG: < 300 s)"
    [ -s "$out/junit.xml" ] || die "no JUnit report came back from the guest"
    [ -s "$out/report.html" ] || die "no HTML report came back from the guest"
    return "$status"
}

main "$@"
