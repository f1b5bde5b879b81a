#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run calls this):
# lints, unit tests, the suite in disposable CIP-security-like images
# (foundation acceptance, interruption, the negative-control matrix), then
# the delivery checks of ci/delivery-test.sh (Debian package, apt install,
# Isar, LAVA, QEMU boot, cross builds). Needs root.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

step "dependencies"
ci/install-deps.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
shellcheck ci/*.sh fixtures/compliant/*.sh fixtures/cip/*.sh fixtures/cip-fixes/*.sh fixtures/profiles/*.sh fixtures/profiles/*/*.sh

step "build"
cargo build --release --locked

# Test output is also kept to count the results at the end.
log=$(mktemp)
CLEANUP+=("$log")

step "unit tests"
cargo test --workspace --locked 2>&1 | tee -a "$log"

step "disposable image"
time ci/target-image.sh build
time FR1_SUITE=trixie ci/target-image.sh build
# CIP's own customisation, both generations (booted by cip_targets.rs).
time FR1_FLAVOR=cip FR1_SUITE=trixie ci/target-image.sh build
time FR1_FLAVOR=cip FR1_SUITE=bookworm ci/target-image.sh build
# ... and that bookworm image with its remote-ban defects fixed.
time FR1_FLAVOR=cip-fixed FR1_SUITE=bookworm ci/target-image.sh build

# The other architectures' packages and targets, which ci/delivery-test.sh
# uses: cold, about 40 min of dpkg and rustc under qemu-user, mostly on one
# core. Niced in the background, they take the cycles the acceptance tests
# leave idle (those mostly wait on PAM delays and lockout timers) and are
# there by the delivery step; warm, they are found in the cache at once.
step "other architectures' packages and targets, in the background"
ci/install-deps.sh --delivery
prepare_log=$(mktemp)
# Its own session, so that a failed run stops it with everything it started.
setsid nice -n 19 bash -c '
    set -euo pipefail
    ci/arch-suite.sh arm64 --prepare
    ci/arch-suite.sh armhf --prepare
    FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh --prepare
' > "$prepare_log" 2>&1 &
prepare_pid=$!
trap 'kill -- -"$prepare_pid" 2> /dev/null || true; rm -f "$log" "$prepare_log"' EXIT

step "acceptance: the suite in disposable images"
# One image at a time: each run already uses both cores. --show-output:
# the tests print what they measured (the interruption test's count of
# identical kills, both thread-parity wall times) also when they pass.
FR1_SUITE_BIN="$PWD/target/release/cip-iec-fr1-tests" \
    cargo test -p fr1-acceptance --locked -- --ignored --test-threads 1 --show-output 2>&1 |
    tee -a "$log"

step "delivery"
t0=$SECONDS
prepare_rc=0
wait "$prepare_pid" || prepare_rc=$?
cat "$prepare_log"
echo "(waited $((SECONDS - t0)) s for the other architectures' targets)"
[ "$prepare_rc" -eq 0 ] || { echo "ci/test.sh: preparing the other architectures' targets failed" >&2; exit 1; }
time ci/delivery-test.sh

# One closing line for the whole run: the last cargo binary to report is a
# doc-test target with nothing in it, which says "0 passed".
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nci/test.sh: %d passed, %d failed\n", p, f }' "$log"
