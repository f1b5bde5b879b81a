#!/usr/bin/env bash
# The main job: build the suite, stand up a disposable target image and run
# the whole suite in it. Leaves junit.xml, evidence/ and the assessor's
# report (report.html, report.md) in the output folder (default
# ./fr1-results). Needs root.
#
#   ci/suite-in-image.sh [--target NAME] [--out DIR] [--profile NAME] [-- SUITE-ARGS...]
#
# Targets (see README, "The disposable target"):
#   cip-trixie       CIP's own security customisation on trixie, booted with
#                    systemd in systemd-nspawn (the default: CIP's default
#                    generation, as CIP ships it)
#   cip-bookworm     the same on bookworm (CIP's 2025 layer), booted; its
#                    remote ban fails, a real defect of that image
#   cip-bookworm-fixed  cip-bookworm with that defect fixed as a product
#                    maker would (fixtures/cip-fixes), booted
#   tidied-bookworm  the project's tidied compliant profile, in namespaces
#                    without an init system (the default with --profile: the
#                    broken profiles are written against it)
#   tidied-trixie    the tidied profile on trixie, booted
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=
args=()
profile=no
while [ $# -gt 0 ]; do
    case $1 in
        --target)
            [ $# -ge 2 ] || { echo "suite-in-image.sh: --target needs a name" >&2; exit 2; }
            target=$2
            shift 2
            ;;
        --profile)
            profile=yes
            args+=("$1")
            shift
            ;;
        --)
            args+=("$@")
            break
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done
if [ -z "$target" ]; then
    if [ "$profile" = yes ]; then target=tidied-bookworm; else target=cip-trixie; fi
fi
. ci/targets.sh
select_target "$target" || {
    echo "suite-in-image.sh: unknown target '$target' (${TARGETS// /, })" >&2
    exit 2
}
echo "suite-in-image.sh: target $target"

ci/install-deps.sh
cargo build --release --locked
# The assessor's reports next to the JUnit file; after the suite arguments
# (after `--`, added when the caller gave none).
reports=(--report /fr1-out/report.html --report /fr1-out/report.md)
if printf '%s\n' "${args[@]}" | grep -qx -- --; then
    args+=("${reports[@]}")
else
    args+=(-- "${reports[@]}")
fi
exec ci/target-image.sh run "${TARGET_RUN[@]}" "${args[@]}"
