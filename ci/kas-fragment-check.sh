#!/bin/bash
# Check the kas fragment isar-recipe/kas/cip-iec-fr1-tests.yml the way the
# README tells a CIP user to use it: copied into kas/opt/ of an isar-cip-core
# checkout that has this repository cloned into it, appended to the security
# image's configuration. Real kas (from PyPI, in a cached virtualenv) sets up
# the build directory; isar-cip-core and Isar are stand-ins (no network:
# a config of the same shape and an init script that only makes the build
# directory). Checks: the layer is in bblayers.conf at a path that holds its
# layer.conf, and local.conf adds the package to the image's IMAGE_INSTALL.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

KAS_VERSION=5.5
VENV=${FR1_CACHE:-/var/cache/cip-iec-fr1-tests}/kas-$KAS_VERSION

if [ ! -x "$VENV/bin/kas" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "kas==$KAS_VERSION"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-kas.XXXXXX")
CLEANUP+=("$work")
top=$work/isar-cip-core
mkdir -p "$top/kas/opt" "$top/kas/board" "$top/conf"
cd "$top"
git init -q
cat > kas-cip.yml <<'EOF'
header:
  version: 14
distro: cip-core-bookworm
target: cip-core-image
build_system: isar
repos:
  cip-core:
    layers:
      .:
EOF
printf '%s\n' 'header:' '  version: 14' 'machine: qemu-amd64' > kas/board/qemu-amd64.yml
printf '%s\n' 'header:' '  version: 14' 'target: cip-core-image-security' > kas/opt/security.yml
printf '%s\n' 'header:' '  version: 14' 'distro: cip-core-bookworm' > kas/opt/bookworm.yml
echo 'BBFILE_COLLECTIONS += "cip-core"' > conf/layer.conf
# shellcheck disable=SC2016 # the script's own $1
printf '%s\n' 'mkdir -p "$1" && cd "$1"' > isar-init-build-env
git add -A
git -c user.name=fr1 -c user.email=fr1@invalid commit -q -m stand-in

# The user's steps (README, "In a CIP image (Isar)").
git clone -q "$REPO" cip-iec-fr1-tests
cp "$REPO/isar-recipe/kas/cip-iec-fr1-tests.yml" kas/opt/
"$VENV/bin/kas" shell \
    kas-cip.yml:kas/board/qemu-amd64.yml:kas/opt/bookworm.yml:kas/opt/security.yml:kas/opt/cip-iec-fr1-tests.yml \
    -c 'cat conf/bblayers.conf; echo ---; cat conf/local.conf' > "$work/out" 2> "$work/err" ||
    { cat "$work/err" >&2; die "kas could not set up the build"; }

# shellcheck disable=SC2016 # bitbake's ${TOPDIR}, literally
layer=$(sed -n 's|^ *${TOPDIR}/\(.*cip-iec-fr1-tests/isar-recipe\).*|\1|p' "$work/out")
[ -n "$layer" ] || { cat "$work/out" >&2; die "the layer is not in bblayers.conf"; }
[ -f "$top/build/$layer/conf/layer.conf" ] ||
    die "bblayers.conf names $layer, which has no conf/layer.conf"
grep -q '^IMAGE_INSTALL:append = " cip-iec-fr1-tests"$' "$work/out" ||
    die "local.conf does not add cip-iec-fr1-tests to the image's IMAGE_INSTALL"
echo "kas-fragment-check: kas $KAS_VERSION puts the layer in bblayers.conf and the package in IMAGE_INSTALL"
