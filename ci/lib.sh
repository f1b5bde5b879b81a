# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this
# The preamble the image and package scripts of ci/ share; sourced right
# after `set -euo pipefail` and `shopt -s inherit_errexit`:
#
#   . "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
#
# Gives SELF (the script), REPO, PROG (ci/NAME.sh), the FR1_* environment
# (SUITE, CACHE_ROOT, MIRROR), log (to stderr, tagged NAME; LOG_TAG
# overrides), die MESSAGE [STATUS] (DIE_STATUS or 1 by default), elapsed
# START, step TITLE (a heading in a long run's output), and CLEANUP:
# directories (or files) removed on any exit.

SELF=$(readlink -f "${BASH_SOURCE[1]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
PROG=ci/$(basename "$SELF")

SUITE=${FR1_SUITE:-bookworm}
CACHE_ROOT=${FR1_CACHE:-/var/cache/cip-iec-fr1-tests}
MIRROR=${FR1_MIRROR:-}

log() { printf '%s: %s\n' "${LOG_TAG:-$(basename "$PROG" .sh)}" "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$1" >&2; exit "${2:-${DIE_STATUS:-1}}"; }
step() { printf '\n==> %s\n' "$*"; }

# START ($EPOCHREALTIME) -> seconds since, with millisecond precision.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# --one-file-system: never follow a mount that may still be inside (the
# scripts mount only in private mount namespaces; this is a second net).
CLEANUP=()
cleanup() {
    local d
    for d in "${CLEANUP[@]}"; do
        [ -n "$d" ] && [ -e "$d" ] && rm -rf --one-file-system -- "$d"
    done
    return 0
}
# Command substitutions do not inherit traps: code that registers
# directories inside one arms them again.
arm_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
arm_cleanup

# ARCH (Debian's name) -> qemu-user's CPU name.
qemu_cpu() {
    case $1 in
        arm64) echo aarch64 ;;
        armhf) echo arm ;;
        *) die "no qemu-user CPU known for $1" ;;
    esac
}

# binfmt_misc handler for ARCH's programs (qemu-user), registered with the
# flags F and C. C (credentials from the program, not the interpreter) is
# what makes a set-uid su or passwd run as root under emulation: without it
# they keep the caller's rights and every su/passwd flow of the suite fails
# with "Authentication failure". Debian's /usr/lib/binfmt.d/qemu-*.conf
# (qemu-user-binfmt) carries F (and P, O) but not C, so its line is
# registered with C added; a handler already registered without C (by
# systemd-binfmt at boot) is replaced. binfmt_misc is the kernel's, shared
# by the whole machine: C changes nothing for programs that are not set-uid.
ensure_binfmt() {
    local arch=$1 cpu conf line flags dir=/proc/sys/fs/binfmt_misc
    cpu=$(qemu_cpu "$arch")
    [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" ||
        die "cannot mount binfmt_misc on $dir (modprobe binfmt_misc)"
    if [ -e "$dir/qemu-$cpu" ]; then
        flags=$(sed -n 's/^flags: //p' "$dir/qemu-$cpu")
        if [[ $flags == *F* && $flags == *C* ]]; then return 0; fi
        log "the qemu-$cpu binfmt handler is registered with flags '$flags', without F and C: replacing it (set-uid programs need C)"
        echo -1 > "$dir/qemu-$cpu"
    fi
    conf=/usr/lib/binfmt.d/qemu-$cpu.conf
    [ -f "$conf" ] || die "$conf missing (apt-get install qemu-user-binfmt)"
    line=$(grep -v '^#' "$conf" | head -n 1)
    # :name:type:offset:magic:mask:interpreter:flags -- the flags last.
    flags=${line##*:}
    [[ $flags == *F* ]] || flags+=F
    [[ $flags == *C* ]] || flags+=C
    printf '%s:%s\n' "${line%:*}" "$flags" > "$dir/register" ||
        die "cannot register the qemu-$cpu binfmt handler from $conf"
    log "registered the qemu-$cpu binfmt handler with flags $flags ($conf had '${line##*:}')"
}

# A flat apt repository for a target: DIR/apt with the given packages and
# their index, and ci/program-packages beside it, as
# ci/apt-install-in-image.sh finds them in the results directory it is given.
apt_repo_for_image() { # DIR DEB...
    local dir=$1
    shift
    mkdir -p "$dir/apt"
    cp -- "$@" "$dir/apt/"
    (cd "$dir/apt" && apt-ftparchive -q packages . > Packages && apt-ftparchive -q release . > Release)
    cp "$REPO/ci/program-packages" "$dir/"
}

# --- timings ------------------------------------------------------------------
# With FR1_TIMINGS naming a file, `timed LABEL CMD...` runs CMD and adds a
# row "SECONDS<TAB>LABEL" to it (also when CMD fails: its status is kept);
# ci/test.sh prints the rows as a table at its end. The acceptance tests
# add their own rows there (fr1_acceptance::record_timing).
timed() { # LABEL CMD...
    local label=$1 t0=$EPOCHREALTIME rc=0
    shift
    "$@" || rc=$?
    if [ -n "${FR1_TIMINGS:-}" ]; then
        printf '%s\t%s%s\n' "$(elapsed "$t0")" "$label" "$([ "$rc" -eq 0 ] || echo " (exit $rc)")" >> "$FR1_TIMINGS"
    fi
    return "$rc"
}

# The rows of FILE, longest first, and the run's wall time from START.
timing_table() { # FILE START
    printf '\nTimings (wall seconds; rows run partly at the same time, so they add up to more than the run):\n'
    sort -t "$(printf '\t')" -k1,1 -g -r "$1" | awk -F '\t' '{ printf "%8.1f  %s\n", $1, $2 }'
    printf '%8.1f  the whole run\n' "$(elapsed "$2")"
}

# --- jobs in the background ---------------------------------------------------
# `background NAME CMD...` starts CMD in a session of its own, niced (CPU
# and I/O), its output in $JOB_LOGS (job_log NAME); `await NAME` waits for it,
# prints its output and fails as it failed. A run that ends early kills every
# job it started (stop_background, in the EXIT trap of the caller).
declare -A JOB_PIDS=()
JOB_LOGS=${JOB_LOGS:-$REPO/target/ci-logs}
job_log() { printf '%s/%s.log' "$JOB_LOGS" "$(printf '%s' "$1" | tr -cs 'A-Za-z0-9' '-')"; }
background() { # NAME CMD...
    local name=$1
    shift
    mkdir -p "$JOB_LOGS"
    # The job's own timing row, from its own start to its own end.
    # shellcheck disable=SC2016 # $0, $@ and the variables are the inner shell's
    setsid nice -n 19 ionice -c 2 -n 7 bash -c '
        t0=$EPOCHREALTIME rc=0
        "$@" || rc=$?
        if [ -n "${FR1_TIMINGS:-}" ]; then
            printf "%s\t%s%s\n" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" "BEGIN { printf \"%.3f\", b - a }")" \
                "$0 (background)" "$([ "$rc" -eq 0 ] || echo " (exit $rc)")" >> "$FR1_TIMINGS"
        fi
        exit "$rc"' "$name" "$@" > "$(job_log "$name")" 2>&1 < /dev/null &
    JOB_PIDS[$name]=$!
    log "started in the background: $name (its output: $(job_log "$name"))"
}
await() { # NAME
    local name=$1 t0=$EPOCHREALTIME rc=0
    wait "${JOB_PIDS[$name]}" || rc=$?
    unset "JOB_PIDS[$name]"
    step "$name (ran in the background; waited $(elapsed "$t0") s for it)"
    cat "$(job_log "$name")"
    [ "$rc" -eq 0 ] || die "$name failed (exit $rc)"
}
stop_background() {
    local pid
    for pid in "${JOB_PIDS[@]}"; do
        kill -- -"$pid" 2> /dev/null || true
    done
}

# --- the cache's locks ---------------------------------------------------------
# A build of one cache entry holds the cache shared ($CACHE_ROOT/.lock) and
# that entry exclusively ($CACHE_ROOT/.lock-ENTRY): builds of different
# entries (an arm64 target in the background, an amd64 one in front) run at
# the same time, two builds of one entry never do, and whatever removes
# entries (ci/cache-prune.sh, ci/target-image.sh clean) takes the cache
# exclusively. Holding an entry's lock, its temporary directories
# ($CACHE_ROOT/.tmp-ENTRY.*) are leftovers of an interrupted build (even
# kill -9) and are removed. cache_unlock releases both.
CACHE_LOCK_FDS=()
cache_lock() { # ENTRY
    local fd tmp
    mkdir -p "$CACHE_ROOT"
    exec {fd}> "$CACHE_ROOT/.lock"
    flock -s "$fd"
    CACHE_LOCK_FDS+=("$fd")
    exec {fd}> "$CACHE_ROOT/.lock-$1"
    flock "$fd"
    CACHE_LOCK_FDS+=("$fd")
    for tmp in "$CACHE_ROOT/.tmp-$1".*; do
        if [ -e "$tmp" ]; then rm -rf --one-file-system -- "$tmp"; fi
    done
}
cache_unlock() {
    local fd
    for fd in "${CACHE_LOCK_FDS[@]}"; do exec {fd}>&-; done
    CACHE_LOCK_FDS=()
}
