#!/usr/bin/env bash
# Benchmark: the full suite's wall time in the disposable image at one test
# thread and at the default, against the floor set by mandated waits.
# Measures only: nothing here asserts a time (timings on a shared machine
# are noisy, so the load average is printed with them).
#
# Mandated waits: the faillock unlock_time TC_CR1.11_2 must sit out (from
# the image's pam_faillock configuration). Certificate expiry adds none: the
# PKI cases issue their expired and not-yet-valid certificates with
# validity windows in the past or the future (harness/src/pki), so nothing
# waits for a certificate to expire. The floor is the sum of the mandated
# waits; the goals: the default run at most 75 s on a quiet machine, at
# most 1.5 times the longest mandated wait and half the 1-thread run.
#
# Both runs on one target of the main job (ci/targets.sh), default
# cip-trixie booted with systemd as the main job runs it; the 1-thread run
# is the serial anchor the parallel default is compared with.
#
#   ci/benchmark.sh [--target NAME]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. ci/targets.sh

usage() { echo "usage: $0 [--target NAME] (targets: $TARGETS)" >&2; exit 2; }
target=cip-trixie
while [ $# -gt 0 ]; do
    case $1 in
        --target) [ $# -ge 2 ] || usage; target=$2; shift 2 ;;
        *) usage ;;
    esac
done
select_target "$target" || usage

ci/install-deps.sh
cargo build --release --locked
ci/target-image.sh build > /dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# unlock_time as pam_faillock reads it for the auth stack TC_CR1.11_2 uses
# (sshd includes common-auth): an option on the pam_faillock line wins over
# /etc/security/faillock.conf, which wins over the module's default (600 s).
# "never" (an administrator unlocks) and no pam_faillock at all mean no wait.
# shellcheck disable=SC2016 # expanded in the image, not here
unlock=$(ci/target-image.sh exec -- sh -c '
    line=$(grep -h "^[^#]*pam_faillock\.so" /etc/pam.d/common-auth | head -n 1)
    if [ -z "$line" ]; then echo 0; exit; fi
    value=$(printf "%s\n" "$line" | sed -n "s/.*[[:space:]]unlock_time=\([0-9a-z]*\).*/\1/p")
    if [ -z "$value" ] && [ -r /etc/security/faillock.conf ]; then
        value=$(sed -n "s/^[[:space:]]*unlock_time[[:space:]]*=[[:space:]]*\([0-9a-z]*\).*/\1/p" \
            /etc/security/faillock.conf | tail -n 1)
    fi
    case ${value:-600} in
        never) echo 0 ;;
        *) echo "${value:-600}" ;;
    esac' 2>/dev/null | tail -n 1)
unlock=${unlock:-0}
floor=$unlock       # the sum of the mandated waits: unlock_time only
longest=$unlock

threads=$(target/release/cip-iec-fr1-tests --help |
    sed -n 's/.*--test-threads N.*(default \([0-9]*\)).*/\1/p')

wall_of() {
    # The suite prints "suite wall time: N s" as its last line (with a
    # carriage return where it wrote to the booted image's console).
    tr -d '\r' < "$1" | sed -n 's/^suite wall time: \([0-9.]*\) s$/\1/p' | tail -n 1
}
load() {
    cut -d' ' -f1-3 /proc/loadavg
}

echo "target: $target ($FR1_FLAVOR, $FR1_SUITE${TARGET_RUN[*]:+, booted with systemd})"
echo "==> full suite, 1 test thread (load before: $(load))"
ci/target-image.sh run "${TARGET_RUN[@]}" --out "$out/one" -- --test-threads 1 > "$out/one.log" 2>&1 || true
one=$(wall_of "$out/one.log")
echo "    load after: $(load)"
echo "==> full suite, default test threads (${threads:-?}; $(nproc) cores; load before: $(load))"
ci/target-image.sh run "${TARGET_RUN[@]}" --out "$out/default" > "$out/default.log" 2>&1 || true
default=$(wall_of "$out/default.log")
echo "    load after: $(load)"
printf '\n%-44s %8s\n' "run" "wall (s)"
printf '%-44s %8s\n' "1 thread" "${one:-?}"
printf '%-44s %8s\n' "default threads (${threads:-?})" "${default:-?}"
printf '%-44s %8s\n' "mandated wait: faillock unlock_time" "$unlock"
printf '%-44s %8s\n' "mandated wait: certificate expiry" "0"
printf '%-44s %8s\n' "floor: sum of mandated waits" "$floor"
if [ -n "${one:-}" ] && [ -n "${default:-}" ]; then
    awk -v o="$one" -v d="$default" -v l="$longest" 'BEGIN {
        r = d / o
        printf "\ndefault run:             %.1f s (goal <= 75 s: %s)\n", d, d <= 75 ? "met" : "missed"
        printf "default / 1 thread:      %.2f (goal <= 0.5: %s)\n", r, r <= 0.5 ? "met" : "missed"
        if (l > 0) {
            r = d / l
            printf "default / longest wait:  %.2f (goal <= 1.5: %s)\n", r, r <= 1.5 ? "met" : "missed"
        }
    }'
fi

# Where the default run's time went: the longest test cases (JUnit).
if [ -f "$out/default/junit.xml" ]; then
    echo
    echo "longest test cases in the default run (s):"
    grep -o '<testcase name="[^"]*"[^>]*time="[0-9.]*"' "$out/default/junit.xml" |
        sed 's/<testcase name="\([^"]*\)".*time="\([0-9.]*\)"/\2 \1/' |
        sort -rn | head -n 5 | awk '{ printf "  %-16s %7.1f\n", $2, $1 }'
fi
# The walk of the device for secrets at rest (made once, before the first
# test case): its file count and time, as the evidence gives them.
walk=$(cat "$out"/default/evidence/*.log 2>/dev/null | grep -m 1 -o 'NOTE walked / .*' || true)
if [ -n "$walk" ]; then
    echo
    echo "secrets walk: $(printf '%s\n' "$walk" | sed -n 's/.*): \([0-9]* regular files\).* in \([0-9.]* s\).*/\1 in \2/p')"
fi
grep -h 'test result:' "$out/one.log" "$out/default.log" || true
