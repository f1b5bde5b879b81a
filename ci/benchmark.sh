#!/usr/bin/env bash
# Benchmark: the full suite's wall time in the disposable image at one test
# thread and at the default, against the floor set by mandated waits (the
# faillock unlock_time a lockout test case must sit out). Measures only:
# nothing here asserts a time.
#
#   ci/benchmark.sh [--suite bookworm|trixie]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = "--suite" ]; then
    export FR1_SUITE=$2
fi

ci/install-deps.sh
cargo build --release --locked
ci/target-image.sh build > /dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The longest mandated wait the image imposes: its faillock unlock_time.
unlock=$(ci/target-image.sh exec -- sh -c \
    "sed -n 's/.*pam_faillock\.so.*unlock_time=\([0-9][0-9]*\).*/\1/p' /etc/pam.d/common-auth | head -n 1" \
    2>/dev/null | tail -n 1)
unlock=${unlock:-0}

wall_of() {
    # The suite prints "suite wall time: N s" as its last line.
    sed -n 's/^suite wall time: \([0-9.]*\) s$/\1/p' "$1" | tail -n 1
}

echo "==> full suite, 1 test thread"
ci/target-image.sh run --out "$out/one" -- --test-threads 1 > "$out/one.log" 2>&1 || true
one=$(wall_of "$out/one.log")
echo "==> full suite, default test threads ($(nproc) cores)"
ci/target-image.sh run --out "$out/default" > "$out/default.log" 2>&1 || true
default=$(wall_of "$out/default.log")

printf '\n%-34s %8s\n' "run" "wall (s)"
printf '%-34s %8s\n' "1 thread" "${one:-?}"
printf '%-34s %8s\n' "default threads" "${default:-?}"
printf '%-34s %8s\n' "floor: longest mandated wait" "$unlock"
if [ -n "${one:-}" ] && [ -n "${default:-}" ]; then
    awk -v o="$one" -v d="$default" -v u="$unlock" 'BEGIN {
        printf "default / 1 thread: %.2f (goal <= 0.5)\n", d / o
        if (u > 0) printf "default / longest wait: %.2f (goal <= 1.5)\n", d / u
    }'
fi
grep -h '^test result:' "$out/one.log" "$out/default.log" || true
