#!/bin/bash
# The Debian package for the other architectures of CIP devices, cross-built
# on this amd64 machine (ci/build-deb.sh --arch: Debian's cross toolchain
# crossbuild-essential-ARCH and the target's libstd-rust-dev, offline, lintian
# clean), then each cross-built program run with `--list` in a root
# filesystem of its architecture under qemu-user (binfmt_misc; the program
# and its libraries are the target's, only the CPU is emulated).
#
#   ci/cross-build.sh [ARCH...]          (default: arm64 armhf)
#
# The root filesystems are Debian's libc6 and libgcc-s1 of the architecture
# (mmdebstrap --variant=extract) plus the package's files; cached like the
# other images. Needs root.
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

RECIPE=2


ensure_rootfs() { # ARCH -> path
    local arch=$1 key dest tmp
    key=$(printf 'recipe %s\nsuite %s\narch %s\nmirror %s\n' "$RECIPE" "$SUITE" "$arch" "$MIRROR" |
        sha256sum | cut -d' ' -f1)
    dest=$CACHE_ROOT/cross-rootfs-$key
    if [ ! -d "$dest" ]; then
        tmp=$(mktemp -d "$CACHE_ROOT/.tmp-cross-rootfs.XXXXXX")
        log "extracting a $SUITE $arch root filesystem (libc6, libgcc-s1)"
        mmdebstrap --quiet --variant=extract --architectures="$arch" \
            --include=libc6,libgcc-s1 "$SUITE" "$tmp/root" ${MIRROR:+"$MIRROR"} >&2 || { rm -rf "$tmp"; die "mmdebstrap failed"; }
        # From trixie on, libc6 ships its loader under /usr/lib only and the
        # /lib alias comes from the merged-/usr setup that the extract
        # variant skips; programs ask for /lib/ld-linux-*.so.
        for dir in bin sbin lib; do
            [ -e "$tmp/root/$dir" ] || ln -s "usr/$dir" "$tmp/root/$dir"
        done
        mv -T "$tmp/root" "$dest"
        rm -rf "$tmp"
    fi
    printf '%s\n' "$dest"
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(arm64 armhf)
for arch in "${archs[@]}"; do
    t0=$EPOCHREALTIME
    out=$REPO/target/deb/$SUITE-$arch
    ci/build-deb.sh --arch "$arch" --out "$out"
    deb=$(ls "$out"/cip-iec-fr1-tests_*_"$arch".deb)
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || die "$deb is not an $arch package"

    cpu=$(qemu_cpu "$arch")
    ensure_binfmt "$arch"
    rootfs=$(ensure_rootfs "$arch")
    work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-cross.XXXXXX")
    mkdir "$work/upper" "$work/ovl" "$work/merged"
    dpkg-deb -x "$deb" "$work/upper"
    machine=$(readelf -h "$work/upper/usr/bin/cip-iec-fr1-tests" | sed -n 's/^ *Machine: *//p')
    rc=0
    # The package's files over the architecture's libraries; the program runs
    # as a process of that architecture: exec goes through binfmt_misc.
    # shellcheck disable=SC2016 # $1/$2 are the inner shell's
    unshare --mount --propagation private -- sh -c '
        mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/ovl" "$2/merged" &&
        chroot "$2/merged" /usr/bin/cip-iec-fr1-tests --list' sh "$rootfs" "$work" \
        > "$work/list" 2> "$work/err" || rc=$?
    if [ "$rc" -ne 0 ] || ! grep -q '^TC_CR1\.1_1: test$' "$work/list"; then
        cat "$work/err" "$work/list" >&2
        rm -rf "$work"
        die "the $arch program does not list the test cases under qemu-$cpu (exit $rc)"
    fi
    log "$arch: $(basename "$deb") ($machine) lists $(grep -c ': test$' "$work/list") test cases under qemu-$cpu binfmt in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
    rm -rf "$work"
done
