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
# START, and CLEANUP: directories removed on any exit.

SELF=$(readlink -f "${BASH_SOURCE[1]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
PROG=ci/$(basename "$SELF")

SUITE=${FR1_SUITE:-bookworm}
CACHE_ROOT=${FR1_CACHE:-/var/cache/cip-iec-fr1-tests}
MIRROR=${FR1_MIRROR:-}

log() { printf '%s: %s\n' "${LOG_TAG:-$(basename "$PROG" .sh)}" "$*" >&2; }
die() { printf '%s: %s\n' "$PROG" "$1" >&2; exit "${2:-${DIE_STATUS:-1}}"; }

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
