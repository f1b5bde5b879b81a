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
# waits; the goals compare the default run with the longest of them (at
# most 1.5 times) and with the 1-thread run (at most half).
#
# With --boot, a third run: the default threads in the image booted with
# systemd (ci/target-image.sh run --boot), as on a device.
#
#   ci/benchmark.sh [--suite bookworm|trixie] [--boot]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { echo "usage: $0 [--suite bookworm|trixie] [--boot]" >&2; exit 2; }
boot=0
while [ $# -gt 0 ]; do
    case $1 in
        --suite) [ $# -ge 2 ] || usage; export FR1_SUITE=$2; shift 2 ;;
        --boot) boot=1; shift ;;
        *) usage ;;
    esac
done

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

echo "==> full suite, 1 test thread (load before: $(load))"
ci/target-image.sh run --out "$out/one" -- --test-threads 1 > "$out/one.log" 2>&1 || true
one=$(wall_of "$out/one.log")
echo "    load after: $(load)"
echo "==> full suite, default test threads (${threads:-?}; $(nproc) cores; load before: $(load))"
ci/target-image.sh run --out "$out/default" > "$out/default.log" 2>&1 || true
default=$(wall_of "$out/default.log")
echo "    load after: $(load)"
booted=''
if [ "$boot" = 1 ]; then
    echo "==> full suite, default test threads, booted with systemd (load before: $(load))"
    ci/target-image.sh run --boot --out "$out/booted" > "$out/booted.log" 2>&1 || true
    booted=$(wall_of "$out/booted.log")
    echo "    load after: $(load)"
fi

printf '\n%-44s %8s\n' "run" "wall (s)"
printf '%-44s %8s\n' "1 thread" "${one:-?}"
printf '%-44s %8s\n' "default threads (${threads:-?})" "${default:-?}"
[ "$boot" = 0 ] || printf '%-44s %8s\n' "default threads, booted (systemd-nspawn)" "${booted:-?}"
printf '%-44s %8s\n' "mandated wait: faillock unlock_time" "$unlock"
printf '%-44s %8s\n' "mandated wait: certificate expiry" "0"
printf '%-44s %8s\n' "floor: sum of mandated waits" "$floor"
if [ -n "${one:-}" ] && [ -n "${default:-}" ]; then
    awk -v o="$one" -v d="$default" -v l="$longest" 'BEGIN {
        r = d / o
        printf "\ndefault / 1 thread:      %.2f (goal <= 0.5: %s)\n", r, r <= 0.5 ? "met" : "missed"
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
grep -h 'test result:' "$out/one.log" "$out/default.log" ${booted:+"$out/booted.log"} || true
