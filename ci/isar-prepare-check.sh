#!/bin/bash
# Check the Isar recipe's source preparation without Isar: do what bitbake's
# crate:// fetcher does with the entries of cip-iec-fr1-tests-crates.inc
# (take each NAME-VERSION.crate, check its sha256 against the recipe,
# unpack it into cargo_home/bitbake/ with a .cargo-checksum.json), run the
# recipe's own do_prepare_build:append on that, then check that
#   - cargo resolves the whole workspace offline from the resulting vendor/,
#     with the same source replacement debian/rules writes (cargo checks
#     every crate against the Cargo.lock checksum), and
#   - dpkg-source -b makes the source package, as Isar's dpkg class does.
#
# The .crate files come from cargo's download cache (cargo fetch fills it
# when one is missing: the crates.io registry, through cargo itself).
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

RECIPE_DIR=isar-recipe/recipes-security/cip-iec-fr1-tests
INC=$RECIPE_DIR/cip-iec-fr1-tests-crates.inc
PN=cip-iec-fr1-tests
recipe=$(ls "$RECIPE_DIR/${PN}"_*.bb)
PV=$(basename "$recipe" .bb)
PV=${PV#"${PN}_"}
P=$PN-$PV

# The crate:// entries and their checksums, as bitbake reads them.
crates=$(sed -n 's/^SRC_URI\[\(.*\)\.sha256sum\] = "\([0-9a-f]\{64\}\)"$/\1 \2/p' "$INC")
[ -n "$crates" ] || die "no crate checksums in $INC"
# Each entry is crate://crates.io/NAME/VERSION;name=NAME-VERSION.
entries=$(sed -n 's|^ *crate://crates.io/\([^/ ]*\)/\([^/; ]*\);name=\1-\2 .*|\1-\2|p' "$INC" | sort)
[ "$entries" = "$(cut -d' ' -f1 <<< "$crates" | sort)" ] ||
    die "the crate:// entries and the checksums of $INC name different crates"
cache=${CARGO_HOME:-$HOME/.cargo}/registry/cache
find_crate() { find "$cache" -maxdepth 2 -name "$1.crate" -print -quit 2> /dev/null; }
while read -r crate _; do
    if [ -z "$(find_crate "$crate")" ]; then
        cargo fetch --locked --quiet
        break
    fi
done <<< "$crates"

TOP=$(mktemp -d "${TMPDIR:-/tmp}/fr1-isar.XXXXXX")
CLEANUP+=("$TOP")

# One recipe build's source preparation. UNPACK: where bitbake unpacks,
# relative to WORKDIR ("." before bitbake had UNPACKDIR, "sources" after).
prepare() {
    local unpack=$1 WORKDIR FR1_UNPACK_DIR S bitbake_dir count=0 crate sum file body
    WORKDIR=$TOP/$unpack-layout
    FR1_UNPACK_DIR=$WORKDIR/$unpack
    S=$FR1_UNPACK_DIR/$P

    # The recipe's source (git fetcher, destsuffix=${P}): the tracked files,
    # as they are in the work tree so that an uncommitted change counts too.
    mkdir -p "$S"
    git ls-files -z --cached | while IFS= read -r -d '' f; do
        if [ -e "$f" ]; then printf '%s\0' "$f"; fi
    done | tar --null -T - -cf - | tar -C "$S" -xf -

    bitbake_dir=$FR1_UNPACK_DIR/cargo_home/bitbake
    mkdir -p "$bitbake_dir"
    while read -r crate sum; do
        file=$(find_crate "$crate")
        [ -n "$file" ] || die "$crate.crate not found in $cache"
        [ "$(sha256sum < "$file" | cut -d' ' -f1)" = "$sum" ] ||
            die "$crate.crate does not have the recipe's sha256 $sum"
        tar -xz --no-same-owner -f "$file" -C "$bitbake_dir"
        printf '{"files": {}, "package": "%s"}' "$sum" > "$bitbake_dir/$crate/.cargo-checksum.json"
        count=$((count + 1))
    done <<< "$crates"

    # The recipe's do_prepare_build:append, run as bitbake would (its ${VAR}
    # references are the shell variables set here).
    body=$(sed -n '/^do_prepare_build:append() {$/,/^}$/p' "$recipe" | sed '1d;$d')
    [ -n "$body" ] || die "no do_prepare_build:append in $recipe"
    (cd "$WORKDIR" && eval "$body")
    [ -d "$S/vendor" ] || die "the recipe did not make vendor/"

    # cargo, offline, with debian/rules' source replacement.
    mkdir -p "$WORKDIR/cargo-home"
    printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
        '[source.vendored-sources]' "directory = \"$S/vendor\"" > "$WORKDIR/cargo-home/config.toml"
    (cd "$S" && CARGO_HOME=$WORKDIR/cargo-home cargo metadata --offline --locked \
        --format-version 1 > /dev/null) ||
        die "cargo cannot resolve the workspace offline from the recipe's vendor/"

    # Isar's dpkg class: dpkg-source -b ${PPS} in WORKDIR (PPS: S relative
    # to WORKDIR).
    (cd "$WORKDIR" && dpkg-source -q -b "${S#"$WORKDIR"/}" > /dev/null)
    ls "$WORKDIR/${PN}_$PV"-*.dsc > /dev/null
    echo "isar-prepare-check: unpack dir WORKDIR/$unpack: $count crates fetched as the recipe says, vendored, resolved offline; source package made"
}
bbfatal() { die "recipe: $*"; }

prepare .
prepare sources
