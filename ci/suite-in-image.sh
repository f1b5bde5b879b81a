#!/usr/bin/env bash
# The main job: build the suite, stand up the disposable CIP-security-like
# image and run the whole suite in it. Leaves junit.xml and evidence/ in the
# output folder (default ./fr1-results). Needs root.
#
#   ci/suite-in-image.sh [--out DIR] [--profile NAME] [-- SUITE-ARGS...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ci/install-deps.sh
cargo build --release --locked
exec ci/target-image.sh run "$@"
