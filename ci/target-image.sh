#!/bin/bash
# Stand up a CIP-security-like target on a development or CI machine and run
# the FR-1 suite in it (see doc/targets.md).
#
#   build  bootstraps a Debian rootfs with the security image's packages and
#          applies the project's compliant profile (fixtures/compliant), once:
#          the result is cached, keyed by what went into it.
#   run    runs the suite in a throw-away overlay of that cache, inside fresh
#          mount/pid/net/uts/ipc namespaces, optionally with one negative-
#          control profile (fixtures/profiles/NAME) applied first; with
#          --boot, the overlay boots with systemd in systemd-nspawn instead
#          and a oneshot unit runs the suite, as on a device.
#
# Namespaces + chroot instead of bubblewrap: bwrap sets no_new_privs, which
# turns su/passwd into non-set-uid programs and breaks the PAM flows under test.
set -euo pipefail
# Much of the work runs inside $(...) (e.g. the build, which prints the path);
# without this, bash drops errexit there and a failed step would carry on.
shopt -s inherit_errexit

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

# Bump when the build steps below change in a way that changes the image
# (the key otherwise only covers the suite, packages and fixtures/compliant).
RECIPE_VERSION=2

# The target's architecture (FR1_ARCH, Debian's name): the build machine's
# own, or arm64/armhf, whose image is built and run under qemu-user
# (binfmt_misc); the suite then has to be a program of that architecture.
HOST_ARCH=$(dpkg --print-architecture)
ARCH=${FR1_ARCH:-$HOST_ARCH}

HOSTNAME_IN_IMAGE=fr1-target
SUITE_BIN_IN_IMAGE=/usr/bin/cip-iec-fr1-tests
DEFAULT_BIN=$REPO/target/release/cip-iec-fr1-tests

# Exit codes of the runner itself (the suite's own code is passed through).
EX_USAGE=2
EX_AFTER_HOOK=123   # suite passed, --after hook failed
EX_RUNNER=125       # image could not be built or prepared (profile, setup)
DIE_STATUS=$EX_RUNNER
LOG_TAG=fr1

usage() {
    cat <<EOF
Usage:
  $PROG build [--print-path] [--rebuild]
  $PROG run   [--boot [--boot-timeout SECONDS]] [--profile NAME] [--out DIR]
              [--bin PATH | --no-bin] [--setup FILE] [--after FILE]
              [--] [SUITE-ARGS...]
  $PROG exec  [--profile NAME] [--bin PATH] [--setup FILE] -- CMD [ARGS...]
  $PROG shell [--profile NAME] [--bin PATH] [--setup FILE]
  $PROG profiles
  $PROG clean [--all]
  $PROG --help

build      Bootstrap the target rootfs (mmdebstrap, minbase, root mode) with the
           CIP security image's packages and apply fixtures/compliant/apply.sh.
           Cached as \$FR1_CACHE/rootfs-<key>; key = sha256 over the recipe
           version, suite, architecture, mirror, package list and every file
           under fixtures/compliant. Prints the rootfs path on stdout. The
           .deb files that a broken profile installs
           (fixtures/profiles/NAME/packages: the image has no network when
           they are applied) are downloaded the first time the profile runs
           on that rootfs, resolved against it, into
           \$FR1_CACHE/debs-<key>/NAME-<hash of the list>/, outside the
           rootfs: a new or changed list never rebuilds an image.
           --print-path  print only the path (still builds when missing)
           --rebuild     build again even if the cached rootfs exists

run        Run the suite in a throw-away overlay of the cached rootfs (built
           first if needed), in new mount/pid/net/uts/ipc namespaces, after
           starting the enabled services whose work the suite observes, as
           at boot (rsyslogd, fail2ban):
             $SUITE_BIN_IN_IMAGE --junit /fr1-out/junit.xml \\
                 --evidence-dir /fr1-out/evidence SUITE-ARGS...
           --boot          boot the overlay with systemd (systemd-nspawn
                           --private-network --boot) instead: journald,
                           ssh.service, fail2ban and every other enabled
                           unit run as on the device; a oneshot unit after
                           multi-user.target runs --setup, the suite and
                           --after, then powers off; the output shows on
                           the console. --boot-timeout bounds the whole
                           boot (default 3600 s)
           --profile NAME  apply fixtures/profiles/NAME/mutate.sh first
                           (default: compliant = no mutation); the profile's
                           downloaded .deb files are next to it, in debs/
           --out DIR       host directory mounted at /fr1-out
                           (default: ./fr1-results; junit.xml and evidence/
                           from an earlier run there are removed)
           --bin PATH      suite binary to copy into the image
                           (default: <repo>/target/release/cip-iec-fr1-tests)
           --no-bin        copy no suite binary: --setup installs it (e.g. the
                           Debian package with apt, from a repository it
                           finds in /fr1-out, which is mounted before --setup)
           --setup FILE    run as 'sh FILE' in the image before the suite
           --after FILE    run as 'sh FILE' in the image after the suite; it
                           cannot mask a suite failure
           Exit code: the suite's; $EX_AFTER_HOOK if the suite passed but the
           --after hook failed; $EX_RUNNER if the image could not be prepared;
           $EX_USAGE on usage errors.

exec       Like run, but run CMD in the image instead of the suite
           (stdin is passed through; exit code is CMD's).
shell      Interactive root shell in such an image (for developers).
profiles   List the negative-control profiles and the test cases each one
           must make fail (NAME<TAB>TC,TC,...), as the test cases declare
           them: read from the host's release build,
           <repo>/target/release/cip-iec-fr1-tests --list-controls.
clean      Remove cached rootfs trees (and their .deb downloads) other than the
           current key's (for the current FR1_SUITE); --all removes every
           one. Not while a run is using them.

In the image: /usr/local/sbin/fr1-snapshot-state (ci/snapshot-state.sh) is
installed before --setup; FR1_PROFILE holds the profile name; FR1_* and
RUST_BACKTRACE/RUST_LOG/NO_COLOR are passed through, nothing else from the host
environment.

Environment:
  FR1_SUITE   Debian suite (default: bookworm; trixie also supported)
  FR1_FLAVOR  tidied (default: the project's compliant profile,
              fixtures/compliant), cip (CIP's own customisation as
              isar-cip-core writes it, fixtures/cip; boot it with run --boot)
              or cip-fixed (cip, then the fixes a product maker makes for
              CIP's defects, fixtures/cip-fixes)
  FR1_ARCH    the target's architecture: the build machine's (default), arm64
              or armhf (built and run under qemu-user, binfmt_misc with
              flags F and C; run needs --bin of that architecture or
              --no-bin; no --boot: systemd does not boot under qemu-user,
              ci/qemu-image.sh boots such an image in qemu-system)
  FR1_CACHE   cache directory (default: /var/cache/cip-iec-fr1-tests)
  FR1_MIRROR  Debian mirror URL for mmdebstrap (default: mmdebstrap's own)
  TMPDIR      where the per-run overlay directories are created (default /tmp)
EOF
}

usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit "$EX_USAGE"; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap --mode=root, namespaces, chroot)"
}

# --- image recipe ---------------------------------------------------------------

# The password-quality module of the security image for this suite; the
# compliant profile (passwdqc options) exists for passwdqc suites only.
quality_package() {
    case $SUITE in
        bookworm | trixie | forky | sid) echo libpam-passwdqc ;;
        *) return 1 ;;
    esac
}

# Which customisation the image gets (FR1_FLAVOR):
#   tidied  the project's compliant profile (fixtures/compliant): CIP's
#           settings in a textbook shape, plus rsyslog and netbase so that
#           fail2ban works in the namespace runner (the default, for now);
#   cip     CIP's own customisation as isar-cip-core writes it
#           (fixtures/cip), quirks and defects included, with CIP's package
#           set for the suite's generation; boots with systemd (run --boot).
#   cip-fixed  cip, then fixtures/cip-fixes: what a product maker adds to
#           CIP's image to fix its defects (packages and files), nothing else.
# FIXTURES are applied in order, each directory's apply.sh in the chroot.
FLAVOR=${FR1_FLAVOR:-tidied}
case $FLAVOR in
    tidied) FIXTURES=("$REPO/fixtures/compliant") ;;
    cip) FIXTURES=("$REPO/fixtures/cip") ;;
    cip-fixed) FIXTURES=("$REPO/fixtures/cip" "$REPO/fixtures/cip-fixes") ;;
    *) printf '%s: FR1_FLAVOR must be tidied, cip or cip-fixed, not %s\n' "$PROG" "$FLAVOR" >&2; exit "$EX_USAGE" ;;
esac

# The security image's package list (doc/targets.md).
#
# cip: CIP's list for the suite's generation (bookworm: syslog-ng with its
# journal module; trixie: libpam-systemd and fail2ban-config's
# python3-systemd), systemd as init, and what installing the suite's package
# with its Recommends adds (iproute2, adduser), plus procps for the state
# snapshot of the project's tests. No netbase, no rsyslog: CIP has neither.
#
# tidied: plus what fail2ban needs to work: a system logger (rsyslog: the
# sshd jail needs a log to read, see
# fixtures/compliant/rootfs/etc/fail2ban/jail.d/cip-security.local) and
# /etc/services (netbase: the ban action names the port "ssh", which nft
# cannot resolve without it, so no ban would ever be applied); plus what the
# suite itself drives on the target.
packages() {
    local quality
    quality=$(quality_package)
    {
        if [ "$FLAVOR" != tidied ]; then
            printf '%s\n' \
                openssl fail2ban openssh-server openssh-sftp-server openssh-client \
                nftables sudo passwd login util-linux acl uuid-runtime tpm2-tools \
                libpam-pkcs11 chrony aide aide-common auditd audispd-plugins \
                libpam-google-authenticator libpam-modules libpam-runtime "$quality" \
                systemd systemd-sysv iproute2 adduser procps
            # cip-fixed: what the fixes add to the image recipe.
            if [ "$FLAVOR" = cip-fixed ]; then
                grep -Ev '^[[:space:]]*(#|$)' "$REPO/fixtures/cip-fixes/packages"
            fi
            case $SUITE in
                bookworm) printf '%s\n' syslog-ng-core syslog-ng-mod-journal ;;
                *) printf '%s\n' libpam-systemd python3-systemd ;;
            esac
        else
            printf '%s\n' \
                openssl fail2ban openssh-server openssh-sftp-server openssh-client \
                nftables sudo passwd login util-linux acl uuid-runtime tpm2-tools \
                libpam-pkcs11 chrony aide auditd libpam-google-authenticator \
                libpam-modules libpam-runtime "$quality" \
                rsyslog netbase \
                procps iproute2 adduser bsdutils python3
        fi
    } | LC_ALL=C sort -u
}

cache_key() {
    local f d prefix
    {
        printf 'recipe %s\nsuite %s\narch %s\nmirror %s\n' \
            "$RECIPE_VERSION" "$SUITE" "$ARCH" "$MIRROR"
        # (tidied images keep the key they had before flavors existed)
        [ "$FLAVOR" = tidied ] || printf 'flavor %s\n' "$FLAVOR"
        packages | sed 's/^/package /'
        # Content and path of every fixture file; not the mode, which depends
        # on the checkout's umask and is normalised by apply.sh anyway.
        # (The first fixture's paths as they always were, "./NAME"; the
        # others' prefixed with their directory.)
        for d in "${FIXTURES[@]}"; do
            prefix=.
            [ "$d" = "${FIXTURES[0]}" ] || prefix=./$(basename "$d")
            (cd "$d" && find . -type f -print0 | LC_ALL=C sort -z |
                while IFS= read -r -d '' f; do
                    printf 'file %s %s\n' "$prefix/${f#./}" "$(sha256sum < "$f" | cut -d' ' -f1)"
                done)
        done
    } | sha256sum | cut -d' ' -f1
}

# Called by mmdebstrap as a customize hook (the chroot is fully installed and
# mmdebstrap has set up its mounts): make the image independent of the build
# host, then apply the compliant profile.
customize() {
    local root=$1
    printf '%s\n' "$HOSTNAME_IN_IMAGE" > "$root/etc/hostname"
    cat > "$root/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_IN_IMAGE
::1		localhost ip6-localhost ip6-loopback
EOF
    # resolv.conf is copied from the build host; the target has no network.
    rm -f "$root/etc/resolv.conf"
    for d in "${FIXTURES[@]}"; do
        cp -a "$d" "$root/tmp/fr1-fixture"
        chroot "$root" /bin/bash /tmp/fr1-fixture/apply.sh
        rm -rf "$root/tmp/fr1-fixture"
    done
}

# The directory of the .deb files broken profile NAME installs on ROOTFS
# (its packages list), downloading them the first time: resolved against
# that very rootfs (apt fetches only what the image lacks, in an overlay of
# it with the network), kept outside it, so the compliant image never
# contains them. Keyed by the rootfs and the list: a new profile's packages
# never make the images build again.
profile_debs() { # ROOTFS NAME
    local rootfs=$1 name=$2 list hash dir entry tmp t0=$EPOCHREALTIME
    local -a pkgs
    list=$(grep -Ev '^[[:space:]]*(#|$)' "$REPO/fixtures/profiles/$name/packages" |
        LC_ALL=C sort -u | paste -sd' ' -)
    [ -n "$list" ] || die "profile $name: its packages file names no package"
    hash=$(printf '%s\n' "$list" | sha256sum | cut -c1-16)
    dir=$CACHE_ROOT/debs-${rootfs##*/rootfs-}/$name-$hash
    if [ -d "$dir" ]; then
        printf '%s\n' "$dir"
        return
    fi
    entry=debs-$(basename "$rootfs" | cut -c8-23)-$name-$hash
    cache_lock "$entry"
    if [ ! -d "$dir" ]; then
        # We run in $(...): its own EXIT trap removes the temp dir, and only
        # that (the caller's entries are the caller's to remove).
        CLEANUP=()
        arm_cleanup
        [ "$ARCH" = "$HOST_ARCH" ] || ensure_binfmt "$ARCH"
        tmp=$(mktemp -d "$CACHE_ROOT/.tmp-$entry.XXXXXX")
        CLEANUP+=("$tmp")
        log "profile $name: downloading its packages for this image ($list)"
        read -r -a pkgs <<< "$list"
        unshare --mount --propagation private -- "$SELF" __download_debs "$rootfs" "$tmp" "${pkgs[@]}" ||
            die "profile $name: downloading its packages failed: $list"
        mkdir -p "$(dirname "$dir")"
        # rename(2): the directory appears complete or not at all.
        mv -T "$tmp/debs" "$dir"
        log "profile $name: packages downloaded in $(elapsed "$t0") s"
    fi
    cache_unlock
    printf '%s\n' "$dir"
}

# Inner half of profile_debs, in a private mount namespace: an overlay of
# ROOTFS (left as it is), apt's lists fetched, PACKAGEs downloaded (with
# whatever they need that the image lacks) into TMP/debs.
download_debs() { # ROOTFS TMP PACKAGE...
    local rootfs=$1 tmp=$2 m
    shift 2
    m=$tmp/merged
    mkdir "$tmp/upper" "$tmp/work" "$m" "$tmp/debs"
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$tmp/upper,workdir=$tmp/work" "$m"
    mount -t proc proc "$m/proc"
    mount --rbind /dev "$m/dev"
    rm -f "$m/etc/resolv.conf"
    cp -L /etc/resolv.conf "$m/etc/resolv.conf"
    mkdir -p "$m/tmp/fr1-debs/partial"
    chroot "$m" apt-get update --quiet=2 >&2
    chroot "$m" apt-get install --yes --quiet --no-install-recommends --download-only \
        -o Dir::Cache::Archives=/tmp/fr1-debs "$@" >&2
    mv "$m"/tmp/fr1-debs/*.deb "$tmp/debs/" ||
        die "apt downloaded no .deb files ($* already installed?)"
}

# Print the cached rootfs path, building it first when needed.
ensure_image() {
    local quiet=$1 rebuild=$2 key dest tmp t0 hook pkgs
    key=$(cache_key)
    dest=$CACHE_ROOT/rootfs-$key
    if [ "$rebuild" = 0 ] && [ -d "$dest" ]; then
        printf '%s\n' "$dest"
        return
    fi
    need_root
    arm_cleanup # we run in $(...): its own EXIT trap removes the temp build dir
    command -v mmdebstrap > /dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
    [ "$ARCH" = "$HOST_ARCH" ] || ensure_binfmt "$ARCH"
    # One build of this image at a time (others may run beside it); whoever
    # waited may find the image already there.
    cache_lock "rootfs-$key"
    if [ "$rebuild" = 0 ] && [ -d "$dest" ]; then
        cache_unlock
        printf '%s\n' "$dest"
        return
    fi
    tmp=$(mktemp -d "$CACHE_ROOT/.tmp-rootfs-$key.XXXXXX")
    chmod 0755 "$tmp" # apt downloads as _apt, which must reach the chroot
    CLEANUP+=("$tmp")
    t0=$EPOCHREALTIME
    if [ "$quiet" = 0 ]; then
        if [ "$ARCH" = "$HOST_ARCH" ]; then
            log "building $SUITE rootfs $key (mmdebstrap, about 30 s)"
        else
            log "building $SUITE $ARCH rootfs $key (mmdebstrap under qemu-user, about 10 min)"
        fi
    fi
    pkgs=$(packages | paste -sd, -)
    # mmdebstrap runs the hook with sh -c, the rootfs as $1 (literal here).
    # shellcheck disable=SC2016
    printf -v hook '%q __customize "$1"' "$SELF"
    local -a args=(--variant=minbase --mode=root --architectures="$ARCH" --include="$pkgs"
        --customize-hook="$hook")
    [ "$quiet" = 0 ] || args+=(--quiet)
    # A private mount namespace: whatever mmdebstrap mounts in the chroot
    # disappears with it even if it is killed, so the cleanup never has to
    # deal with a live /proc or /dev bind mount inside the temp dir.
    unshare --mount --propagation private -- \
        mmdebstrap "${args[@]}" "$SUITE" "$tmp/rootfs" ${MIRROR:+"$MIRROR"} >&2 ||
        die "mmdebstrap failed"
    # The overlay's root directory takes its mode from the lower layer.
    chmod 0755 "$tmp/rootfs"
    if [ -d "$dest" ]; then # --rebuild: swap the old one out first
        mv -T "$dest" "$tmp/old"
    fi
    # rename(2) within one filesystem: the cache entry appears complete or
    # not at all. -T so an existing directory is never entered.
    mv -T "$tmp/rootfs" "$dest"
    cache_unlock
    [ "$quiet" = 1 ] || log "built $dest in $(elapsed "$t0") s"
    printf '%s\n' "$dest"
}

cmd_build() {
    local quiet=0 rebuild=0 t0=$EPOCHREALTIME path
    while [ $# -gt 0 ]; do
        case $1 in
            --print-path) quiet=1 ;;
            --rebuild) rebuild=1 ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "build: unknown argument '$1'" ;;
        esac
        shift
    done
    path=$(ensure_image "$quiet" "$rebuild")
    [ "$quiet" = 1 ] || log "image ready in $(elapsed "$t0") s"
    printf '%s\n' "$path"
}

cmd_clean() {
    local all=0 keep lockfd
    case ${1:-} in
        '') ;;
        --all) all=1 ;;
        *) usage_error "clean: unknown argument '$1'" ;;
    esac
    need_root
    [ -d "$CACHE_ROOT" ] || return 0
    keep=$(cache_key)
    [ "$all" = 0 ] || keep=
    exec {lockfd}> "$CACHE_ROOT/.lock"
    flock "$lockfd"
    # Not under a running "run": an overlay whose lower layer disappears
    # misbehaves. Only the user knows, hence a manual command.
    find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 \( -name 'rootfs-*' -o -name 'debs-*' -o -name '.tmp-*' \) \
        ! -name "rootfs-${keep:-/}" ! -name "debs-${keep:-/}" -exec rm -rf --one-file-system -- {} +
    log "removed cached images under $CACHE_ROOT${keep:+ except rootfs-$keep and debs-$keep}"
}

# The profiles: the directories under fixtures/profiles with a mutate.sh.
profile_names() {
    local d
    for d in "$REPO"/fixtures/profiles/*/; do
        [ -f "$d/mutate.sh" ] && basename "$d"
    done
    return 0
}

# NAME<TAB>TC,TC,... for every profile. The test cases declare their
# negative controls themselves (Case::fails_under): the host's release
# build of the suite prints them (--list-controls), whatever FR1_ARCH is.
cmd_profiles() {
    local controls name
    [ -x "$DEFAULT_BIN" ] ||
        die "profiles: the test cases' negative controls come from the suite binary, and $DEFAULT_BIN is not built (cargo build --release)" "$EX_RUNNER"
    controls=$("$DEFAULT_BIN" --list-controls) ||
        die "profiles: $DEFAULT_BIN --list-controls failed (a build older than that option? cargo build --release)" "$EX_RUNNER"
    for name in $(profile_names); do
        printf '%s\t%s\n' "$name" "$(awk -F '\t' -v p="$name" '$2 == "profile" && $3 == p { print $1 }' <<< "$controls" | paste -sd, -)"
    done
}

# --- running in the image ---------------------------------------------------------

# Parse the options shared by run/exec/shell into R_* variables.
R_PROFILE=compliant R_OUT=./fr1-results R_BIN='' R_NO_BIN=0 R_SETUP='' R_AFTER='' R_ARGS=()
R_BOOT=0 R_BOOT_TIMEOUT=3600
parse_run_opts() {
    local mode=$1
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --profile | --out | --bin | --setup | --after)
                [ $# -ge 2 ] || usage_error "$1 needs a value"
                case $1 in
                    --profile) R_PROFILE=$2 ;;
                    --out) [ "$mode" = run ] || usage_error "--out is only for run"; R_OUT=$2 ;;
                    --bin) R_BIN=$2 ;;
                    --setup) R_SETUP=$2 ;;
                    --after) [ "$mode" = run ] || usage_error "--after is only for run"; R_AFTER=$2 ;;
                esac
                shift 2
                ;;
            --profile=* | --out=* | --bin=* | --setup=* | --after=*)
                local opt=${1%%=*}
                set -- "$opt" "${1#*=}" "${@:2}"
                ;;
            --no-bin) [ "$mode" = run ] || usage_error "--no-bin is only for run"; R_NO_BIN=1; shift ;;
            --boot) [ "$mode" = run ] || usage_error "--boot is only for run"; R_BOOT=1; shift ;;
            --boot-timeout)
                [ "$mode" = run ] || usage_error "--boot-timeout is only for run"
                [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage_error "--boot-timeout needs a number of seconds"
                R_BOOT_TIMEOUT=$2
                shift 2
                ;;
            -h | --help) usage; exit 0 ;;
            --) shift; R_ARGS=("$@"); break ;;
            -*)
                [ "$mode" = run ] || usage_error "$mode: unknown option '$1'"
                # run: anything else is for the suite (e.g. --list, --exact)
                R_ARGS=("$@"); break ;;
            *)
                [ "$mode" != shell ] || usage_error "shell takes no command"
                R_ARGS=("$@"); break ;;
        esac
    done
    [[ $R_PROFILE =~ ^[A-Za-z0-9._-]+$ ]] || usage_error "bad profile name '$R_PROFILE'"
    if [ "$R_PROFILE" != compliant ] && [ ! -f "$REPO/fixtures/profiles/$R_PROFILE/mutate.sh" ]; then
        usage_error "unknown profile '$R_PROFILE' (known: compliant $(profile_names | paste -sd' ' -))"
    fi
    local f
    for f in "$R_SETUP" "$R_AFTER"; do
        [ -z "$f" ] || [ -f "$f" ] || usage_error "no such file: $f"
    done
    if [ "$R_NO_BIN" = 1 ]; then
        [ -z "$R_BIN" ] || usage_error "--bin and --no-bin exclude each other"
        [ -n "$R_SETUP" ] || usage_error "--no-bin needs a --setup that installs the suite"
    elif [ "$mode" = run ] && [ "$ARCH" != "$HOST_ARCH" ] && [ -z "$R_BIN" ]; then
        # The default binary is this machine's build, not the target's.
        usage_error "FR1_ARCH=$ARCH: give the suite of that architecture (--bin PATH, or --no-bin with a --setup that installs the package, as ci/arch-suite.sh does)"
    elif [ "$mode" = run ]; then
        R_BIN=${R_BIN:-$DEFAULT_BIN}
        { [ -f "$R_BIN" ] && [ -x "$R_BIN" ]; } ||
            usage_error "suite binary '$R_BIN' not found (cargo build --release, or --bin PATH)"
    elif [ -n "$R_BIN" ]; then
        { [ -f "$R_BIN" ] && [ -x "$R_BIN" ]; } || usage_error "no such executable: $R_BIN"
    elif [ -x "$DEFAULT_BIN" ] && [ "$ARCH" = "$HOST_ARCH" ]; then
        R_BIN=$DEFAULT_BIN # exec/shell: bring the suite along when it is built
    fi
    if [ "$R_BOOT" = 1 ] && [ "$ARCH" != "$HOST_ARCH" ]; then
        usage_error "--boot with FR1_ARCH=$ARCH: systemd does not boot under qemu-user (FR1_ARCH=$ARCH ci/qemu-image.sh boots it in qemu-system)"
    fi
    if [ "$mode" = exec ] && [ ${#R_ARGS[@]} -eq 0 ]; then
        usage_error "exec needs a command"
    fi
}

# Outer half: resolve everything on the host, then re-enter this script as
# PID 1 of new namespaces (the "__inner" half) so every mount, process and
# network object disappears with them.
enter_image() {
    local mode=$1 rootfs work t0
    shift
    need_root
    parse_run_opts "$mode" "$@"
    # Registered here too: a cached image does not pass through the build.
    [ "$ARCH" = "$HOST_ARCH" ] || ensure_binfmt "$ARCH"
    rootfs=$(ensure_image 0 0)
    t0=$EPOCHREALTIME
    work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-run.XXXXXX")
    case $rootfs$work in *,* | *:*) die "paths with ',' or ':' cannot be overlay layers: $rootfs $work" ;; esac
    CLEANUP+=("$work")
    mkdir "$work/upper" "$work/work" "$work/merged" "$work/stage"
    # Stage the inputs in the work dir: the inner half copies them in.
    if [ "$R_PROFILE" != compliant ]; then
        cp -a "$REPO/fixtures/profiles/$R_PROFILE" "$work/stage/profile"
        # The profiles' shared helper, beside the profile as in the tree:
        # mutate.sh sources ../lib.sh.
        install -m 0644 "$REPO/fixtures/profiles/lib.sh" "$work/stage/lib.sh"
        if [ -f "$work/stage/profile/packages" ]; then
            local debs
            debs=$(profile_debs "$rootfs" "$R_PROFILE")
            mkdir "$work/stage/profile/debs"
            cp -a "$debs"/*.deb "$work/stage/profile/debs/"
        fi
    fi
    install -m 0755 "$REPO/ci/snapshot-state.sh" "$work/stage/fr1-snapshot-state"
    [ -z "$R_BIN" ] || install -m 0755 "$R_BIN" "$work/stage/suite"
    [ -z "$R_SETUP" ] || install -m 0644 "$R_SETUP" "$work/stage/setup.sh"
    [ -z "$R_AFTER" ] || install -m 0644 "$R_AFTER" "$work/stage/after.sh"
    local out=''
    if [ "$mode" = run ]; then
        mkdir -p "$R_OUT"
        out=$(cd "$R_OUT" && pwd)
        # Results of an earlier run must not be mistaken for this one's.
        rm -rf --one-file-system -- "$out/junit.xml" "$out/evidence"
    fi
    local rc=0
    if [ "$R_BOOT" = 1 ]; then
        command -v systemd-nspawn > /dev/null ||
            die "--boot needs systemd-nspawn (apt-get install systemd-container)"
        [ -x "$rootfs/usr/lib/systemd/systemd" ] || [ -x "$rootfs/lib/systemd/systemd" ] ||
            die "--boot: the image has no systemd to boot (FR1_SUITE=$SUITE)"
        # A private mount namespace only: nspawn makes the container's
        # own namespaces; the overlay mount disappears with this one.
        FR1_I_ROOTFS=$rootfs FR1_I_WORK=$work FR1_I_OUT=$out FR1_I_PROFILE=$R_PROFILE \
            FR1_I_T0=$t0 FR1_I_TIMEOUT=$R_BOOT_TIMEOUT \
            unshare --mount --propagation private -- "$SELF" __boot "${R_ARGS[@]}" || rc=$?
        return "$rc"
    fi
    FR1_I_MODE=$mode FR1_I_ROOTFS=$rootfs FR1_I_WORK=$work FR1_I_OUT=$out \
        FR1_I_PROFILE=$R_PROFILE FR1_I_T0=$t0 \
        unshare --mount --pid --net --uts --ipc --fork --kill-child --propagation private -- \
        "$SELF" __inner "${R_ARGS[@]}" || rc=$?
    return "$rc"
}

# The host environment the image gets, NAME=VALUE a line: the project's own
# knobs (FR1_*, but the runner's internal FR1_I_*) and Rust's diagnostics.
passed_env() {
    local v
    for v in $(compgen -e); do
        case $v in
            FR1_I_*) ;;
            FR1_* | RUST_BACKTRACE | RUST_LOG | NO_COLOR) printf '%s\n' "$v=${!v}" ;;
        esac
    done
}

# The script the booted image's oneshot unit runs (bash, in the image):
# --setup, the suite with SUITE-ARGS, --after, and the exit status for the
# host in /fr1-out/.exit-status.
boot_run_script() {
    local quoted=''
    [ $# -eq 0 ] || quoted=$(printf ' %q' "$@")
    cat <<EOF
#!/bin/bash
# Written by ci/target-image.sh --boot; runs once, after multi-user.target.
status=/fr1-out/.exit-status
# A device's tests start once its boot has settled: no unit still starting
# (this unit's own job aside; bounded, 60 s), so the state snapshot of
# --setup does not catch a daemon half-way through its start.
for _ in \$(seq 300); do
    [ -z "\$(systemctl list-jobs --no-legend 2> /dev/null | grep -v fr1-suite.service)" ] && break
    sleep 0.2
done
# fail2ban's server answers a moment after its unit is active.
if systemctl -q is-enabled fail2ban.service 2> /dev/null; then
    for _ in \$(seq 60); do
        fail2ban-client ping > /dev/null 2>&1 && break
        sleep 0.5
    done
fi
echo "fr1: booted; units that failed at boot: \$(systemctl --failed --plain --no-legend | awk '{print \$1}' | paste -sd' ' -)"
if [ -f /fr1-stage/setup.sh ] && ! sh /fr1-stage/setup.sh < /dev/null; then
    echo "fr1: --setup script failed" >&2
    echo $EX_RUNNER > "\$status"
    exit 0
fi
rc=0
$SUITE_BIN_IN_IMAGE --junit /fr1-out/junit.xml --evidence-dir /fr1-out/evidence$quoted < /dev/null || rc=\$?
if [ -f /fr1-stage/after.sh ]; then
    arc=0
    sh /fr1-stage/after.sh < /dev/null || arc=\$?
    if [ "\$arc" -ne 0 ] && [ "\$rc" -eq 0 ]; then
        echo "fr1: the suite passed but the --after hook failed (exit \$arc)" >&2
        rc=$EX_AFTER_HOOK
    fi
fi
echo "\$rc" > "\$status"
EOF
}

# The oneshot unit that runs boot_run_script's script after
# multi-user.target and powers the container off, with the environment the
# namespace runner gives the suite.
boot_unit() {
    local v
    printf '%s\n' '[Unit]' 'Description=FR-1 suite (ci/target-image.sh run --boot)' \
        'After=multi-user.target' 'SuccessAction=poweroff-force' 'FailureAction=poweroff-force' \
        '[Service]' 'Type=oneshot' 'TimeoutStartSec=infinity' \
        'StandardOutput=tty' 'StandardError=tty' 'TTYPath=/dev/console' \
        'WorkingDirectory=/' 'ExecStart=/bin/bash /fr1-stage/run.sh'
    for v in "$@" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; do
        printf 'Environment="%s"\n' "$v"
    done
    printf '%s\n' '[Install]' 'WantedBy=multi-user.target'
}

# Booted half, in a private mount namespace: the overlay, the profile
# applied in a container that is not booted (before any service starts, as
# in the namespace runner), the oneshot unit, then the boot.
boot_inner() {
    local m=$FR1_I_WORK/merged stage=$FR1_I_WORK/stage env=()
    mount -t overlay overlay \
        -o "lowerdir=$FR1_I_ROOTFS,upperdir=$FR1_I_WORK/upper,workdir=$FR1_I_WORK/work" "$m" ||
        die "cannot mount the overlay"
    mapfile -t env < <(passed_env)
    env+=("FR1_PROFILE=$FR1_I_PROFILE")
    # The stage lives in the throw-away upper layer: /run is a fresh tmpfs
    # in every container.
    mkdir -m 0700 "$m/fr1-stage"
    mkdir -p "$m/fr1-out"
    local nspawn=(systemd-nspawn --quiet --register=no --keep-unit --private-network
        "--hostname=$HOSTNAME_IN_IMAGE" -D "$m" "--bind=$FR1_I_OUT:/fr1-out")
    if [ -d "$stage/profile" ]; then
        cp -a "$stage/profile" "$stage/lib.sh" "$m/fr1-stage/"
        "${nspawn[@]}" --pipe /bin/bash /fr1-stage/profile/mutate.sh < /dev/null ||
            die "profile '$FR1_I_PROFILE': mutate.sh failed"
        rm -rf "$m/fr1-stage/profile" "$m/fr1-stage/lib.sh"
    fi
    [ ! -f "$stage/suite" ] || install -m 0755 "$stage/suite" "$m$SUITE_BIN_IN_IMAGE"
    install -D -m 0755 "$stage/fr1-snapshot-state" "$m/usr/local/sbin/fr1-snapshot-state"
    [ ! -f "$stage/setup.sh" ] || install -m 0644 "$stage/setup.sh" "$m/fr1-stage/setup.sh"
    [ ! -f "$stage/after.sh" ] || install -m 0644 "$stage/after.sh" "$m/fr1-stage/after.sh"
    boot_run_script "$@" > "$m/fr1-stage/run.sh"
    boot_unit "${env[@]}" > "$m/etc/systemd/system/fr1-suite.service"
    ln -sf /etc/systemd/system/fr1-suite.service \
        "$m/etc/systemd/system/multi-user.target.wants/fr1-suite.service"
    rm -f "$FR1_I_OUT/.exit-status"
    log "overlay ready in $(elapsed "$FR1_I_T0") s (suite $SUITE, profile $FR1_I_PROFILE); booting"
    local t1=$EPOCHREALTIME nrc=0
    # The console shows the suite's output: systemd's status lines are off,
    # and so is the container's console login prompt (console-getty, which
    # systemd starts only in containers), for this boot only.
    timeout -k 30 "$FR1_I_TIMEOUT" "${nspawn[@]}" --boot -- \
        systemd.show_status=0 systemd.mask=console-getty.service < /dev/null || nrc=$?
    log "booted run ended in $(elapsed "$t1") s"
    [ "$nrc" -ne 124 ] || die "the booted run did not power off within $FR1_I_TIMEOUT s"
    [ -f "$FR1_I_OUT/.exit-status" ] ||
        die "the booted run reported no exit status (systemd-nspawn exit $nrc)"
    local rc
    rc=$(cat "$FR1_I_OUT/.exit-status")
    rm -f "$FR1_I_OUT/.exit-status"
    return "$rc"
}

# What the image would have running after boot. The namespaces have no init
# system, so the runner starts the enabled services whose work the suite
# observes (the suite itself never starts or stops a system service): the
# system logger, which writes /var/log/auth.log, the device's sshd, whose
# failures it logs, and fail2ban, which reads them.
# A service that fails to start is reported and left stopped, as a failed
# unit would be at boot; the test cases then see it not running. Everything
# started here dies with the PID namespace.
# Uses inner()'s $m and in_image.
boot_services() {
    local wants=$m/etc/systemd/system/multi-user.target.wants started=()
    # Enabled = the unit's link in multi-user.target.wants (an absolute
    # link into the image, so tested with -L, not followed on the host).
    if [ -x "$m/usr/sbin/rsyslogd" ] && [ -L "$wants/rsyslog.service" ]; then
        # imklog would read the build host's kernel log (/proc/kmsg is not
        # namespaced): left out of the logger's configuration, nothing else.
        sed -E '/imklog/d' "$m/etc/rsyslog.conf" > "$m/run/fr1/rsyslog.conf"
        if in_image /usr/sbin/rsyslogd -f /run/fr1/rsyslog.conf -i /run/rsyslogd.pid; then
            started+=(rsyslogd)
        else
            log "WARNING: rsyslogd did not start"
        fi
    fi
    # The device's own sshd (ssh.service): test cases connect to it as a
    # remote client would; it logs through the system logger started above.
    # Like the unit (EnvironmentFile=-/etc/default/ssh, ExecStart=...
    # $SSHD_OPTS): the options Debian's /etc/default/ssh gives it.
    if [ -x "$m/usr/sbin/sshd" ] && [ -L "$wants/ssh.service" ]; then
        # shellcheck disable=SC2016 # expanded in the image's shell
        # (Unquoted: split into words as systemd splits it.)
        if in_image /bin/sh -c 'SSHD_OPTS=; [ ! -r /etc/default/ssh ] || . /etc/default/ssh
                                exec /usr/sbin/sshd $SSHD_OPTS'; then
            started+=(sshd)
        else
            log "WARNING: sshd did not start"
        fi
    fi
    if [ -x "$m/usr/bin/fail2ban-server" ] && [ -L "$wants/fail2ban.service" ]; then
        # As fail2ban.service: ExecStartPre mkdir /run/fail2ban, then the server.
        [ -d "$m/run/fail2ban" ] || mkdir -m 0755 "$m/run/fail2ban"
        if in_image /usr/bin/fail2ban-client -x start > /dev/null 2>&1; then
            started+=(fail2ban)
        else
            log "WARNING: fail2ban did not start (as fail2ban.service would fail at boot)"
        fi
    fi
    log "boot services started: ${started[*]:-none}"
}

# Inner half, PID 1 of the new namespaces.
inner() {
    set -o errtrace # the ERR trap below must also see failures inside functions
    local m=$FR1_I_WORK/merged stage=$FR1_I_WORK/stage mode=$FR1_I_MODE
    # The environment inside: a clean root login environment, plus the
    # project's own knobs. Nothing else leaks from the build host.
    local -a envv=(/usr/bin/env -i
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8
        "TERM=${TERM:-dumb}" "FR1_PROFILE=$FR1_I_PROFILE")
    mapfile -t -O "${#envv[@]}" envv < <(passed_env)
    in_image() { chroot "$m" "${envv[@]}" "$@"; }
    prep_fail() { printf '%s: %s\n' "$PROG" "$*" >&2; exit "$EX_RUNNER"; }
    # Any failure while preparing the image is the runner's, not the suite's.
    trap 'prep_fail "preparing the image failed (line $LINENO)"' ERR

    # Copy-on-write view of the cached rootfs: the cache is the read-only
    # lower layer, every write lands in this run's upper dir.
    mount -t overlay overlay \
        -o "lowerdir=$FR1_I_ROOTFS,upperdir=$FR1_I_WORK/upper,workdir=$FR1_I_WORK/work" "$m" ||
        prep_fail "cannot mount the overlay"
    # /proc of the new PID namespace: the suite sees only its own processes.
    mount -t proc -o nosuid,nodev,noexec proc "$m/proc"
    # Read-only sysfs of the new network namespace (ip, veth); the host's
    # kernel knobs stay out of reach.
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"
    # A private devpts instance so PTYs opened by the suite (login, su,
    # passwd, ssh on a PTY) are separate from the host's; /dev/ptmx must be
    # that instance's multiplexer, not the host's.
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
    mount --bind "$m/dev/pts/ptmx" "$m/dev/ptmx"
    mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/dev/shm"
    # Runtime state (faillock tallies, sshd privsep dir, netns) starts empty,
    # as after a boot.
    mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$m/run"
    mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$m/tmp"
    mkdir -m 0755 "$m/run/sshd" "$m/run/fr1"
    mkdir -m 1777 "$m/run/lock"
    printf '%s\n' "$HOSTNAME_IN_IMAGE" > /proc/sys/kernel/hostname
    in_image ip link set lo up || prep_fail "cannot bring lo up"

    if [ -d "$stage/profile" ]; then
        cp -a "$stage/profile" "$stage/lib.sh" "$m/run/fr1/"
        in_image /bin/bash /run/fr1/profile/mutate.sh < /dev/null ||
            prep_fail "profile '$FR1_I_PROFILE': mutate.sh failed"
        rm -rf "$m/run/fr1/profile" "$m/run/fr1/lib.sh"
    fi
    [ ! -f "$stage/suite" ] || install -m 0755 "$stage/suite" "$m$SUITE_BIN_IN_IMAGE"
    install -D -m 0755 "$stage/fr1-snapshot-state" "$m/usr/local/sbin/fr1-snapshot-state"
    local stdin=/dev/stdin
    [ "$mode" != run ] || stdin=/dev/null
    if [ "$mode" = run ]; then
        mkdir -p "$m/fr1-out"
        mount --bind "$FR1_I_OUT" "$m/fr1-out"
    fi
    log "overlay ready in $(elapsed "$FR1_I_T0") s (suite $SUITE, profile $FR1_I_PROFILE)"
    boot_services
    if [ -f "$stage/setup.sh" ]; then
        local t1=$EPOCHREALTIME
        install -m 0644 "$stage/setup.sh" "$m/run/fr1/setup.sh"
        in_image sh /run/fr1/setup.sh < /dev/null || prep_fail "--setup script failed"
        log "setup script done in $(elapsed "$t1") s"
    fi
    trap - ERR

    local rc=0
    case $mode in
        run)
            in_image "$SUITE_BIN_IN_IMAGE" --junit /fr1-out/junit.xml \
                --evidence-dir /fr1-out/evidence "$@" < "$stdin" || rc=$?
            if [ -f "$stage/after.sh" ]; then
                install -m 0644 "$stage/after.sh" "$m/run/fr1/after.sh"
                local arc=0
                in_image sh /run/fr1/after.sh < /dev/null || arc=$?
                if [ "$arc" -ne 0 ]; then
                    if [ "$rc" -eq 0 ]; then
                        printf '%s: the suite passed but the --after hook failed (exit %s)\n' \
                            "$PROG" "$arc" >&2
                        rc=$EX_AFTER_HOOK
                    else
                        printf '%s: the --after hook failed too (exit %s); keeping the suite exit code %s\n' \
                            "$PROG" "$arc" "$rc" >&2
                    fi
                fi
            fi
            ;;
        exec) in_image "$@" || rc=$? ;;
        shell) in_image /bin/bash --login || rc=$? ;;
    esac
    return "$rc"
}

main() {
    [ $# -gt 0 ] || { usage >&2; exit "$EX_USAGE"; }
    quality_package > /dev/null || usage_error "FR1_SUITE '$SUITE' is not supported (bookworm, trixie)"
    case $ARCH in
        "$HOST_ARCH" | arm64 | armhf) ;;
        *) usage_error "FR1_ARCH '$ARCH' is not supported ($HOST_ARCH, arm64, armhf)" ;;
    esac
    local cmd=$1
    shift
    case $cmd in
        build) cmd_build "$@" ;;
        run | exec | shell) enter_image "$cmd" "$@" ;;
        profiles) cmd_profiles ;;
        clean) cmd_clean "$@" ;;
        -h | --help | help) usage ;;
        __customize) customize "$@" ;;
        __download_debs) download_debs "$@" ;;
        __inner) inner "$@" ;;
        __boot) boot_inner "$@" ;;
        *) usage_error "unknown command '$cmd'" ;;
    esac
}

main "$@"
