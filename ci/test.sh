#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run calls this):
# lints, unit tests, the suite in disposable CIP-security-like images
# (foundation acceptance, interruption, the negative-control matrix), then
# the delivery checks of ci/delivery-test.sh (Debian package, apt install,
# Isar, LAVA, QEMU boot, other architectures). Needs root.
#
# The critical path is the acceptance tests, which mostly wait (PAM delays,
# lock and ban timers): they run two at a time (ci/acceptance.sh), and
# the delivery builds and checks (the Debian package, Isar's packages and
# image, the other architectures) run niced in the background meanwhile. Every step's wall time ends up in a table at
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

# Everything the delivery checks need and the checks themselves, in three
# chains that each start a check as soon as what it runs exists: the other
# architectures' packages and targets (cold, about 40 min of dpkg and rustc
# under qemu-user, mostly on one core) then the suite on them; the
# Debian package, Isar's packages, SRCREV check and image, then the checks
# in containers beside the Isar image booted in QEMU. Niced in the
# background from the start, they take the cycles the steps below leave
# idle (the acceptance tests mostly wait); three chains, so that what is
# left of them when the steps in front are done can use both cores.
step "in the background: the delivery builds and checks, the other architectures"
background "arm64: package, targets, the suite there" bash -c '
    set -euo pipefail
    ci/arch-suite.sh arm64 --prepare
    FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh --prepare
    ci/delivery-test.sh --on arm64'
background "armhf: package, target, the suite there" bash -c '
    set -euo pipefail
    ci/arch-suite.sh armhf --prepare
    ci/delivery-test.sh --on armhf'
background "delivery: builds, then the checks" bash -c '
    set -euo pipefail
    ci/delivery-test.sh --builds
    ci/delivery-test.sh --after-builds'

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

step "delivery and the other architectures (in the background since the start)"
await "delivery: builds, then the checks"
await "arm64: package, targets, the suite there"
await "armhf: package, target, the suite there"

timing_table "$FR1_TIMINGS" "$run_started"

# One closing line for the whole run: the last cargo binary to report is a
# doc-test target with nothing in it, which says "0 passed".
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nci/test.sh: %d passed, %d failed\n", p, f }' "$log"
