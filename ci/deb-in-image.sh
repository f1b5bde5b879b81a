#!/bin/bash
# The Debian package, installed for real: `apt install cip-iec-fr1-tests` in
# the disposable CIP-security-like image (which does not contain the suite),
# from a local apt repository with no other source, then the installed
# /usr/bin/cip-iec-fr1-tests runs a subset of the suite there; its JUnit
# report and evidence come back to the host.
#
#   ci/deb-in-image.sh [--out DIR] [-- SUITE-ARGS...]   (default: TC_CR1.1_: TC_CR1.1_1 and TC_CR1.1_2)
#
# Also the negative control of the package's Depends: with one of them
# (openssl) purged from the image first, the same install must fail.
#
# Builds the package first (ci/build-deb.sh, cached). Results in --out
# (default target/deb-in-image): junit.xml, evidence/, list.txt (the installed
# suite's --list), apt-install.log. Needs root.
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

ARCH=$(dpkg --print-architecture)
# A Depends that nothing else in the image needs, so purging it leaves a
# consistent system and only our package misses it.
REMOVED_DEPENDENCY=openssl
EX_RUNNER=125 # ci/target-image.sh: image could not be prepared (--setup failed)

out=target/deb-in-image
if [ "${1:-}" = --out ]; then out=${2:?--out needs a value}; shift 2; fi
if [ "${1:-}" = -- ]; then shift; fi
suite_args=("$@")
[ ${#suite_args[@]} -gt 0 ] || suite_args=(TC_CR1.1_)

debs=target/deb/$SUITE-$ARCH
ci/build-deb.sh --out "$debs"

work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-deb-in-image.XXXXXX")
CLEANUP+=("$work")
# A flat repository: the package (not its -dbgsym) and its index.
make_repo() { # DIR
    apt_repo_for_image "$1" "$debs"/cip-iec-fr1-tests_*_"$ARCH".deb
}

# 1. The real install, then the installed suite.
mkdir -p "$out"
rm -rf --one-file-system -- "${out:?}"/*
make_repo "$out"
t0=$EPOCHREALTIME
rc=0
ci/target-image.sh run --no-bin --out "$out" --setup ci/apt-install-in-image.sh \
    -- "${suite_args[@]}" || rc=$?
[ "$rc" -eq 0 ] || die "the installed suite failed in the image (exit $rc); see $out"
[ -s "$out/junit.xml" ] || die "no JUnit report came back from the image"
grep -q '<testcase' "$out/junit.xml" || die "the JUnit report has no test case"
log "installed with apt and ran ${suite_args[*]} in $(elapsed "$t0") s: $out/junit.xml"

# 2. Negative control: a missing Depends must make the install fail.
make_repo "$work"
rc=0
FR1_APT_REMOVE=$REMOVED_DEPENDENCY ci/target-image.sh run --no-bin --out "$work" \
    --setup ci/apt-install-in-image.sh -- --list > "$work/console" 2>&1 || rc=$?
if [ "$rc" -ne "$EX_RUNNER" ] || ! grep -q "Depends: $REMOVED_DEPENDENCY" "$work/apt-install.log"; then
    cat "$work/console" >&2
    die "with $REMOVED_DEPENDENCY removed from the image the install did not fail on that Depends (exit $rc)"
fi
log "negative control: without $REMOVED_DEPENDENCY, apt refuses: $(grep -m1 "Depends: $REMOVED_DEPENDENCY" "$work/apt-install.log" | sed 's/^ *//')"
