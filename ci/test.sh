#!/usr/bin/env bash
# The project's tests, as CI runs them (.ci/run calls this):
# lints, unit tests, then the suite in disposable CIP-security-like images
# (foundation acceptance and the negative-control matrix), then delivery: the
# Debian package (built offline, lintian-clean) installed with apt in the
# image, the Isar recipe's source preparation, the LAVA definitions, the
# image booted in QEMU with the package, and the package cross-built for
# arm64. Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
ci/install-deps.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
shellcheck ci/*.sh fixtures/compliant/*.sh fixtures/profiles/*/*.sh

step "build"
cargo build --release --locked

# Test output is also kept to count the results at the end.
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "unit tests"
cargo test --workspace --locked 2>&1 | tee -a "$log"

step "disposable image"
time ci/target-image.sh build
time FR1_SUITE=trixie ci/target-image.sh build

step "acceptance: the suite in disposable images"
# One image at a time: each run already uses both cores.
FR1_SUITE_BIN="$PWD/target/release/cip-iec-fr1-tests" \
    cargo test -p fr1-acceptance --locked -- --ignored --test-threads 1 2>&1 | tee -a "$log"

step "Debian package: offline build in a clean chroot, lintian"
time ci/build-deb.sh

step "Debian package: apt install in the image, the installed suite"
time ci/deb-in-image.sh

step "Isar recipe: the crates as bitbake fetches them, source preparation"
ci/gen-isar-crates.sh --check
time ci/isar-prepare-check.sh
time ci/kas-fragment-check.sh

step "LAVA: definitions, the run step in the image"
shellcheck ci/lava/*.sh
python3 ci/lava/check-definitions.py
time ci/lava-in-image.sh

step "QEMU: the image with the package, booted, runs the suite"
time ci/qemu-image.sh

step "Other architectures: arm64 cross-built, --list under qemu-user"
# armhf goes the same way (ci/cross-build.sh armhf) but is left out here
# until it has run green once: when it was added, the archive served an
# inconsistent bookworm-security armhf index ("Mirror sync in progress?"),
# so its build chroot could not be made.
time ci/cross-build.sh arm64

# One closing line for the whole run: the last cargo binary to report is a
# doc-test target with nothing in it, which says "0 passed".
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nci/test.sh: %d passed, %d failed\n", p, f }' "$log"
