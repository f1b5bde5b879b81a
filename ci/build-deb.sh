#!/bin/bash
# Build the Debian package cip-iec-fr1-tests the way a Debian build daemon
# (or Isar's sbuild) would: source package first, then the binary package in
# a clean chroot that has only the Build-Depends, with no network.
#
#   ci/build-deb.sh [--out DIR] [--arch ARCH] [--rebuild]
#
#  1. Source package: the git-tracked files of this tree (as they are in the
#     work tree) plus `cargo vendor --locked --versioned-dirs vendor` make the
#     orig tarball; debian/ makes the Debian tarball; dpkg-source -b the .dsc.
#     The vendored crates' debian/copyright stanzas are checked against the
#     vendored Cargo.toml files (ci/gen-copyright.py). This is the only step
#     that uses the network (crates.io, through cargo's own cache).
#  2. Build chroot: mmdebstrap --variant=buildd of FR1_SUITE plus the
#     Build-Depends of debian/control (apt-get satisfy) and lintian, cached
#     under $FR1_CACHE/buildroot-<key>.
#  3. Build: in a throw-away overlay of that chroot, inside new mount, pid and
#     network namespaces (unshare --net: only a down loopback, so any attempt
#     to fetch fails the build), as an unprivileged user:
#     dpkg-source -x, dpkg-buildpackage -us -uc -b [-a ARCH].
#  4. lintian on the .changes (binary packages) and the .dsc (source
#     package, vendored crates included): no error and no warning allowed.
#  5. Prints the installed size and the stripped binary size.
#
# The .deb, .changes, .buildinfo, the source package and lintian.txt land in
# --out (default target/deb/<suite>-<arch>). A build whose inputs (tracked
# files, chroot, arch) were built before is taken from $FR1_CACHE/debs/.
#
# Environment: FR1_SUITE (bookworm, trixie), FR1_CACHE, FR1_MIRROR as for
# ci/target-image.sh. Needs root (mmdebstrap, namespaces, chroot).
set -euo pipefail
shopt -s inherit_errexit

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Bump when the chroot recipe below changes.
BUILDROOT_RECIPE=2
# Bump when the build steps change in a way the inputs do not show.
BUILD_RECIPE=3
BINARY_GOAL_BYTES=$((4 * 1024 * 1024))

NATIVE_ARCH=$(dpkg --print-architecture)
PACKAGE=cip-iec-fr1-tests


usage() {
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$SELF"
}

# Build-Depends of debian/control as one line (comments dropped).
build_depends() {
    awk '/^Build-Depends:/ { f = 1; sub(/^Build-Depends:/, ""); print; next }
         f && /^#/ { next }
         f && /^[ \t]/ { print; next }
         f { exit }' "$REPO/debian/control" |
        tr '\n' ' ' | sed 's/[[:space:]]\{1,\}/ /g; s/^ //; s/,[[:space:]]*$//'
}

# --- 1. source package -------------------------------------------------------

# The files that make the source: git-tracked, with work-tree content (so an
# uncommitted change is built too), minus what was deleted from the work tree.
tracked_files() { # -> NUL-separated paths
    git -C "$REPO" ls-files -z --cached | while IFS= read -r -d '' f; do
        if [ -f "$REPO/$f" ] || [ -L "$REPO/$f" ]; then printf '%s\0' "$f"; fi
    done
}

# Key of a build: the content of every file that can change the binary
# package, the chroot and the target arch. Left out: the project's own test
# and delivery tooling (ci/, fixtures/, acceptance tests, the Isar layer),
# which is in the source package but not built into the binary one; a cached
# build may therefore carry an older copy of those in its source package.
build_key() {
    local buildroot_key=$1 arch=$2
    {
        printf 'build %s\nbuildroot %s\narch %s\n' "$BUILD_RECIPE" "$buildroot_key" "$arch"
        tracked_files | grep -zv -e '^ci/' -e '^\.ci/' -e '^fixtures/' -e '^isar-recipe/' \
            -e '^acceptance/tests/' | (cd "$REPO" && xargs -0 sha256sum --)
    } | sha256sum | cut -d' ' -f1
}

# cargo refuses a crate whose rust-version is newer than rustc: the
# Build-Depends must ask for at least the highest one among the crates.
check_toolchain_floor() {
    local vendor=$1 need crate have
    read -r need crate < <(python3 - "$vendor" <<'EOF'
import pathlib, sys, tomllib
best = ((0,), "-")
for toml in pathlib.Path(sys.argv[1]).glob("*/Cargo.toml"):
    rv = tomllib.loads(toml.read_text(encoding="utf-8")).get("package", {}).get("rust-version")
    if isinstance(rv, str):
        best = max(best, (tuple(int(x) for x in rv.split(".")), toml.parent.name))
print(".".join(map(str, best[0])), best[1])
EOF
    )
    # 1.89.0 and 1.89 are the same Rust, not for dpkg's version order.
    while [[ $need == *.*.0 ]]; do need=${need%.0}; done
    for dep in cargo rustc; do
        have=$(build_depends | sed -n "s/.*$dep:native (>= \([0-9.]*\)).*/\1/p")
        [ -n "$have" ] || die "debian/control: no versioned Build-Depends on $dep:native"
        dpkg --compare-versions "$have" ge "$need" ||
            die "debian/control asks for $dep >= $have, but $crate needs Rust $need: raise it"
    done
}

make_source_package() {
    local dir=$1 version upstream srcdir epoch
    version=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
    upstream=${version%-*}
    # Reproducible tarballs: every timestamp is the changelog's.
    epoch=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Timestamp)
    srcdir=$dir/$PACKAGE-$upstream
    mkdir -p "$srcdir"
    tracked_files | (cd "$REPO" && tar --null -T - -cf -) | tar -C "$srcdir" -xf -
    rm -rf "$srcdir/debian"
    log "vendoring the crates of Cargo.lock"
    (cd "$srcdir" && cargo vendor --quiet --locked --versioned-dirs vendor > /dev/null)
    python3 "$REPO/ci/gen-copyright.py" --check "$srcdir/vendor" ||
        die "debian/copyright does not match the vendored crates (see above)"
    check_toolchain_floor "$srcdir/vendor"
    tar -C "$dir" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
        --mode='u+rwX,go+rX,go-w' -cf - "$PACKAGE-$upstream" |
        gzip -n -6 > "$dir/${PACKAGE}_$upstream.orig.tar.gz"
    cp -a "$REPO/debian" "$srcdir/debian"
    (cd "$dir" && SOURCE_DATE_EPOCH=$epoch dpkg-source -q -b "$PACKAGE-$upstream" > /dev/null)
    rm -rf "$srcdir"
    ls "$dir/${PACKAGE}_$version.dsc" > /dev/null
}

# --- 2. build chroot ---------------------------------------------------------

buildroot_key() {
    local arch=$1
    printf 'recipe %s\nsuite %s\nbuild %s\nhost %s\nmirror %s\ndeps %s\n' \
        "$BUILDROOT_RECIPE" "$SUITE" "$NATIVE_ARCH" "$arch" "$MIRROR" "$(build_depends)" |
        sha256sum | cut -d' ' -f1
}

# mmdebstrap customize hook (run by mmdebstrap with the chroot as $1 and its
# network still up): the Build-Depends, lintian and the build user.
customize_buildroot() {
    local root=$1 arch=$2
    local -a satisfy=(apt-get satisfy -y -q --no-install-recommends) extra=()
    local rustc_version std_version web
    if [ "$arch" != "$NATIVE_ARCH" ]; then
        satisfy+=(--host-architecture "$arch")
        chroot "$root" apt-get install -y -q --no-install-recommends "crossbuild-essential-$arch"
        # A cross build needs the native rustc of exactly the version of the
        # target's libstd. Left to itself, apt pairs trixie's rustc-web 1.96
        # (through its Provides: rustc) with the target's own
        # libstd-rust-dev 1.85, which rustc then rejects crate by crate: name
        # the pair of one family, and keep the other libstd out (both in
        # one sysroot are two candidates for every std crate).
        web=$(chroot "$root" apt-cache show --no-all-versions "libstd-rust-web-dev:$arch" 2> /dev/null |
            sed -n 's/^Version: //p')
        if [ -n "$web" ]; then
            extra+=("rustc-web:native (= $web), cargo-web:native, libstd-rust-web-dev (= $web)"
                "Conflicts: libstd-rust-dev (<< $web)")
        else
            extra+=("Conflicts: rustc-web")
        fi
    fi
    chroot "$root" "${satisfy[@]}" "$(build_depends)" "${extra[@]}"
    if [ "$arch" != "$NATIVE_ARCH" ]; then
        rustc_version=$(chroot "$root" rustc --version | cut -d' ' -f2)
        # shellcheck disable=SC2016 # dpkg-query's format, literally
        std_version=$(chroot "$root" dpkg-query -W -f '${Version}' \
            "libstd-rust-dev:$arch" "libstd-rust-web-dev:$arch" 2> /dev/null || true)
        [[ $std_version == "$rustc_version"* ]] ||
            die "build chroot: rustc $rustc_version cannot build with the $arch libstd $std_version"
    fi
    chroot "$root" apt-get install -y -q --no-install-recommends lintian
    chroot "$root" useradd --create-home --shell /bin/sh builder
    rm -f "$root/etc/resolv.conf"
}

ensure_buildroot() { # ARCH -> path
    local arch=$1 key dest tmp hook
    key=$(buildroot_key "$arch")
    dest=$CACHE_ROOT/buildroot-$key
    if [ -d "$dest" ]; then printf '%s\n' "$dest"; return; fi
    trap cleanup EXIT # in $(...): arm the cleanup of this subshell too
    cache_lock "buildroot-$key"
    if [ -d "$dest" ]; then cache_unlock; printf '%s\n' "$dest"; return; fi
    tmp=$(mktemp -d "$CACHE_ROOT/.tmp-buildroot-$key.XXXXXX")
    chmod 0755 "$tmp"
    CLEANUP+=("$tmp")
    log "building the $SUITE build chroot for $arch (mmdebstrap, once; about 2 min)"
    # shellcheck disable=SC2016 # $1 is mmdebstrap's, literally
    printf -v hook '%q __customize "$1" %q' "$SELF" "$arch"
    local -a args=(--variant=buildd --mode=root --quiet --customize-hook="$hook")
    [ "$arch" = "$NATIVE_ARCH" ] || args+=(--architectures="$NATIVE_ARCH,$arch")
    unshare --mount --propagation private -- \
        mmdebstrap "${args[@]}" "$SUITE" "$tmp/root" ${MIRROR:+"$MIRROR"} >&2 ||
        die "mmdebstrap failed"
    chmod 0755 "$tmp/root"
    mv -T "$tmp/root" "$dest"
    cache_unlock
    printf '%s\n' "$dest"
}

# --- 3./4. build and lintian, offline -----------------------------------------

# PID 1 of new mount/pid/net namespaces: overlay the chroot, build, lintian.
inner_build() {
    local root=$1 work=$2 arch=$3 jobs=$4
    local m=$work/merged
    mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/ovl" "$m"
    mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
    mount --rbind /dev "$m/dev"
    mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/tmp"
    mkdir -p "$m/build"
    mount --bind "$work/build" "$m/build"
    # The proof of "no network": the namespace has a loopback device only
    # (down), so no fetch can succeed during the build.
    local ifaces
    ifaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev | paste -sd' ' -)
    [ "$ifaces" = lo ] || die "the build namespace has network devices: $ifaces"
    log "network devices in the build namespace: $ifaces (down)"
    local -a env=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/builder
        LANG=C.UTF-8)
    local -a build_env=("${env[@]}" "DEB_BUILD_OPTIONS=parallel=$jobs") cross=()
    if [ "$arch" != "$NATIVE_ARCH" ]; then
        # As sbuild cross-builds: the cross profile, no tests (the program
        # cannot run here; ci/cross-build.sh runs it under qemu-user), the
        # cross compiler as CC.
        local gnu_type
        gnu_type=$(chroot "$m" dpkg-architecture -a "$arch" -qDEB_HOST_GNU_TYPE 2> /dev/null)
        build_env=("${env[@]}" "DEB_BUILD_OPTIONS=parallel=$jobs nocheck"
            "DEB_BUILD_PROFILES=cross nocheck" "CC=$gnu_type-gcc")
        cross=(-a "$arch")
    fi
    chroot "$m" "${build_env[@]}" setpriv --reuid=builder --regid=builder --init-groups -- \
        sh -c 'set -e; cd /build; dpkg-source -q -x ./*.dsc src > /dev/null
               cd src; dpkg-buildpackage -us -uc -b "$@"' sh "${cross[@]}"
    log "lintian (no error or warning allowed)"
    local rc=0
    chroot "$m" "${env[@]}" setpriv --reuid=builder --regid=builder --init-groups -- \
        sh -c 'cd /build && lintian --fail-on error,warning --display-info ./*.changes ./*.dsc' \
        > "$work/build/lintian.txt" 2>&1 || rc=$?
    cat "$work/build/lintian.txt" >&2
    [ "$rc" -eq 0 ] || die "lintian reported errors or warnings (exit $rc)"
}

report_sizes() {
    local out=$1 deb tmp size
    deb=$(find "$out" -maxdepth 1 -name "${PACKAGE}_*.deb" | head -n1)
    [ -n "$deb" ] || die "no $PACKAGE .deb in $out"
    tmp=$(mktemp -d)
    CLEANUP+=("$tmp")
    dpkg-deb -x "$deb" "$tmp"
    size=$(stat -c %s "$tmp/usr/bin/$PACKAGE")
    printf 'package: %s\n' "$(basename "$deb")"
    printf 'installed size: %s KiB (Installed-Size)\n' "$(dpkg-deb -f "$deb" Installed-Size)"
    printf 'stripped binary: %s bytes (%s MiB; goal < 4 MiB: %s)\n' "$size" \
        "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')" \
        "$([ "$size" -lt "$BINARY_GOAL_BYTES" ] && echo met || echo NOT MET)"
    if readelf -S "$tmp/usr/bin/$PACKAGE" | grep -q '[.]symtab'; then
        die "the packaged binary is not stripped"
    fi
}

main() {
    local out='' arch=$NATIVE_ARCH rebuild=0
    while [ $# -gt 0 ]; do
        case $1 in
            --out) out=${2:?--out needs a value}; shift ;;
            --arch) arch=${2:?--arch needs a value}; shift ;;
            --rebuild) rebuild=1 ;;
            -h | --help) usage; exit 0 ;;
            __customize) shift; customize_buildroot "$@"; exit ;;
            __inner) shift; inner_build "$@"; exit ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    [ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap, namespaces, chroot)"
    for tool in mmdebstrap dpkg-source dpkg-parsechangelog cargo python3 readelf; do
        command -v "$tool" > /dev/null || die "$tool is not installed (ci/install-deps.sh)"
    done
    out=${out:-$REPO/target/deb/$SUITE-$arch}
    local t0=$EPOCHREALTIME root rkey key cached
    root=$(ensure_buildroot "$arch")
    rkey=$(basename "$root")
    key=$(build_key "$rkey" "$arch")
    cached=$CACHE_ROOT/debs/$SUITE-$arch-$key
    mkdir -p "$out"
    find "$out" -maxdepth 1 -type f -delete
    if [ "$rebuild" = 0 ] && [ -f "$cached/lintian.txt" ]; then
        log "inputs unchanged since an earlier build: taking it from $cached"
        cp -a "$cached"/. "$out"/
        report_sizes "$out"
        return
    fi

    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-deb.XXXXXX")
    CLEANUP+=("$work")
    chmod 0755 "$work"
    mkdir "$work/upper" "$work/ovl" "$work/merged" "$work/build"
    make_source_package "$work/build"
    chown -R --reference="$root/home/builder" "$work/build"
    log "source package ready ($(elapsed "$t0") s); building $arch offline in the $SUITE chroot"
    local t1=$EPOCHREALTIME
    unshare --mount --pid --net --fork --kill-child --propagation private -- \
        "$SELF" __inner "$root" "$work" "$arch" "$(nproc)"
    log "built in $(elapsed "$t1") s"
    find "$work/build" -maxdepth 1 -type f -exec cp -t "$out" {} +
    chown -R --reference="$REPO" "$out"
    mkdir -p "$CACHE_ROOT/debs"
    rm -rf "$cached.tmp" "$cached"
    cp -a "$out" "$cached.tmp"
    mv -T "$cached.tmp" "$cached"
    # Keep the last few builds per suite and arch.
    find "$CACHE_ROOT/debs" -mindepth 1 -maxdepth 1 -name "$SUITE-$arch-*" -printf '%T@ %p\n' |
        sort -rn | tail -n +5 | cut -d' ' -f2- | xargs -r rm -rf --
    report_sizes "$out"
    log "done in $(elapsed "$t0") s: $out"
}

main "$@"
