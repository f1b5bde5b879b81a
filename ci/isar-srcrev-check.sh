#!/bin/bash
# The Isar recipe's SRCREV against a shared sstate cache: two commits must
# give two packages. Builds HEAD of this repository (commit A) and then a
# throw-away clone of it with one more commit (B, which only raises the
# version in debian/changelog), both with ci/isar-build.sh --build-only for
# trixie, against the same build directory and sstate. B's build must give
# B's package, not A's restored from sstate: the stale-sstate bug the recipe
# had (SRCREV entered the task hashes as its ${@...} expression, and the
# parse cache kept the commit of the last parse).
#
#   ci/isar-srcrev-check.sh [--again]
#
# Needs what ci/isar-build.sh needs (Isar already cached, or FR1_ISAR).
# A is normally in sstate already (the CI step before builds it); B is
# committed with A's dates and a fixed identity, so B has the same hash,
# and sstate has its package, on later runs of the same HEAD.
#
# The verdict depends on how the recipe, Isar and the packaging turn a
# commit into a package, not on the program's source: A's build (the step
# before) shows that the source builds, and B differs from A only in its
# version. So a pass is kept under $FR1_CACHE/isar-srcrev-passed/, keyed by
# the content of everything that decides it (isar-recipe/, debian/, the
# Isar build scripts, which pin Isar's commit); a later commit with the
# same key reuses it and says so, instead of one more package build (about
# 4 min of both cores). --again checks anew whatever the cache holds.
set -euo pipefail
shopt -s inherit_errexit

. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

PN=cip-iec-fr1-tests
PASSED_DIR=$CACHE_ROOT/isar-srcrev-passed

again=0
case ${1:-} in
    '') ;;
    --again) again=1 ;;
    *) die "unknown argument '$1' (--again)" 2 ;;
esac

# What decides the verdict, as content hashes of the work tree's files.
verdict_key() {
    (cd "$REPO" && git ls-files -z -- isar-recipe debian ci/isar-build.sh ci/isar-srcrev-check.sh \
        ci/gen-isar-crates.sh ci/lib.sh | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum | cut -d' ' -f1
}
key=$(verdict_key)
if [ "$again" -eq 0 ] && [ -f "$PASSED_DIR/$key" ]; then
    log "the recipe, packaging and Isar build scripts are those this check passed with ($(cat "$PASSED_DIR/$key")): passed, not built again (--again to build both commits anyway)"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-isar-srcrev.XXXXXX")
CLEANUP+=("$work")

git clone -q "$REPO" "$work/repo"
version_a=$(dpkg-parsechangelog -l "$work/repo/debian/changelog" -S Version)
version_b=$version_a+srcrevcheck
sed -i "1s/($version_a)/($version_b)/" "$work/repo/debian/changelog"
[ "$(dpkg-parsechangelog -l "$work/repo/debian/changelog" -S Version)" = "$version_b" ] ||
    die "could not raise the version in the clone's debian/changelog"
date_a=$(git -C "$work/repo" log -1 --format=%cI)
GIT_AUTHOR_DATE=$date_a GIT_COMMITTER_DATE=$date_a git -C "$work/repo" \
    -c user.name=isar-srcrev-check -c user.email=isar-srcrev-check@invalid \
    commit -q -a -m "isar-srcrev-check: version $version_b"

built_version() { # OUT-DIR -> the Version of the one trixie package there
    dpkg-deb -f "$1/trixie/${PN}_"*_amd64.deb Version
}

log "commit A ($version_a): $(git -C "$REPO" rev-parse HEAD)"
"$REPO/ci/isar-build.sh" --suite trixie --build-only --out "$work/a" ||
    die "the build of commit A failed"
[ "$(built_version "$work/a")" = "$version_a" ] || die "commit A gave version $(built_version "$work/a"), not $version_a"

log "commit B ($version_b): $(git -C "$work/repo" rev-parse HEAD)"
"$REPO/ci/isar-build.sh" --from "$work/repo" --suite trixie --build-only --out "$work/b" ||
    die "the build of commit B gave no package of version $version_b: bitbake kept commit A's package (stale sstate: is SRCREV's value in the recipe's task hashes?)"
[ "$(built_version "$work/b")" = "$version_b" ] || die "commit B gave version $(built_version "$work/b"), not $version_b"
cmp -s "$work/a/trixie/${PN}_${version_a}_amd64.deb" "$work/b/trixie/${PN}_${version_b}_amd64.deb" &&
    die "commits A and B gave the same .deb file"
log "two commits, two packages: A $version_a, B $version_b (same build directory and sstate)"
mkdir -p "$PASSED_DIR"
printf 'commit %s, %s\n' "$(git -C "$REPO" rev-parse --short HEAD)" "$(date -u +%Y-%m-%dT%H:%MZ)" > "$PASSED_DIR/$key"
