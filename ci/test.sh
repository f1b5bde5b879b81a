#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run calls this):
# lints, unit tests, the suite in disposable CIP-security-like images
# (foundation acceptance, interruption, the negative-control matrix), then
# the delivery checks of ci/delivery-test.sh (Debian package, apt install,
# Isar, LAVA, QEMU boot, other architectures). Needs root.
#
# The critical path is the acceptance tests, which mostly wait (PAM delays,
# lock and ban timers): they run two at a time (ci/acceptance.sh), and
# the builds the delivery checks need (the Debian package, Isar's packages
# and image, the other architectures' packages and targets) run niced in
# the background meanwhile. Every step's wall time ends up in a table at
# the end (FR1_TIMINGS).
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

run_started=$EPOCHREALTIME
mkdir -p target
export FR1_TIMINGS=${FR1_TIMINGS:-$REPO/target/ci-timings.tsv}
: > "$FR1_TIMINGS"

# Test output is also kept to count the results at the end.
log=$(mktemp)
trap 'stop_background; rm -f "$log"; cleanup' EXIT

step "dependencies"
timed "dependencies" ci/install-deps.sh
timed "dependencies: delivery" ci/install-deps.sh --delivery
# What builds of inputs no longer used left, and sstate over its cap.
timed "cache: prune" ci/cache-prune.sh

# The other architectures' packages and targets: cold, about 40 min of dpkg
# and rustc under qemu-user, mostly on one core. Then the delivery builds:
# the Debian package, Isar's packages and SRCREV check, the Isar image.
# Niced in the background from the start, they take the cycles the steps
# below leave idle; warm, they find everything in the cache at once. The
# checks that run what they made come after the acceptance tests: the
# emulated ones (qemu-user, TCG) take a core each for minutes, which the
# timing-sensitive acceptance tests must not share.
step "in the background: the other architectures, the delivery builds"
# Three jobs, so that what is left of them when the steps in front are done
# can use both cores.
background "arm64: package, target, booted image" bash -c '
    set -euo pipefail
    ci/arch-suite.sh arm64 --prepare
    FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh --prepare'
background "armhf: package and target" ci/arch-suite.sh armhf --prepare
background "delivery builds" ci/delivery-test.sh --builds

lints() {
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    shellcheck ci/*.sh ci/lava/*.sh fixtures/compliant/*.sh fixtures/cip/*.sh fixtures/cip-fixes/*.sh \
        fixtures/profiles/*.sh fixtures/profiles/*/*.sh
}
unit_tests() { cargo test --workspace --locked 2>&1 | tee -a "$log"; }

step "format and lints"
timed "fmt, clippy, shellcheck" lints

step "build"
timed "release build" cargo build --release --locked

step "unit tests"
timed "unit tests" unit_tests

step "disposable images"
timed "image: tidied bookworm" ci/target-image.sh build
timed "image: tidied trixie" env FR1_SUITE=trixie ci/target-image.sh build
# CIP's own customisation, both generations (booted by cip_targets.rs).
timed "image: cip trixie" env FR1_FLAVOR=cip FR1_SUITE=trixie ci/target-image.sh build
timed "image: cip bookworm" env FR1_FLAVOR=cip FR1_SUITE=bookworm ci/target-image.sh build
# ... and that bookworm image with its remote-ban defects fixed.
timed "image: cip-fixed bookworm" env FR1_FLAVOR=cip-fixed FR1_SUITE=bookworm ci/target-image.sh build

step "acceptance: the suite in disposable images"
# Two tests at a time, and two broken images at a time in the matrix: the
# runs mostly wait. --show-output (in ci/acceptance.sh): the tests print
# what they measured (the interruption test's count of identical kills,
# both thread-parity wall times) also when they pass.
FR1_SUITE_BIN="$PWD/target/release/cip-iec-fr1-tests" FR1_MATRIX_JOBS=2 \
    timed "acceptance (all)" ci/acceptance.sh --jobs 2 --log "$log"

step "delivery"
await "arm64: package, target, booted image"
await "armhf: package and target"
await "delivery builds"
timed "delivery (after the builds)" ci/delivery-test.sh --after-builds

timing_table "$FR1_TIMINGS" "$run_started"

# One closing line for the whole run: the last cargo binary to report is a
# doc-test target with nothing in it, which says "0 passed".
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nci/test.sh: %d passed, %d failed\n", p, f }' "$log"
