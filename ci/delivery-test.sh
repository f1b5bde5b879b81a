#!/usr/bin/env bash
# Delivery checks: the Debian package (built offline in a clean chroot,
# lintian-clean) installed with apt in the disposable image, the Isar
# recipe's source preparation and kas fragment, the package built by real
# Isar and installed in the booted CIP image, the LAVA definitions, the
# CIP security image built by Isar and booted in QEMU with the package, and
# the package cross-built for arm64 and armhf.
#
#   ci/delivery-test.sh                 everything, in order
#   ci/delivery-test.sh --builds        the builds only: the Debian package,
#                                       Isar's packages (trixie, bookworm),
#                                       the SRCREV check, the Isar image
#   ci/delivery-test.sh --after-builds  the rest, with what --builds made
#
# ci/test.sh (.ci/run) runs --builds in the background while the acceptance
# tests run (they mostly wait), then --after-builds. Needs root and Debian's
# package archive.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

builds=1 rest=1
case ${1:-} in
    '') ;;
    --builds) rest=0 ;;
    --after-builds) builds=0 ;;
    *) die "unknown argument '$1' (--builds or --after-builds)" 2 ;;
esac

ci/install-deps.sh --delivery

if [ "$builds" -eq 1 ]; then
    step "Debian package: offline build in a clean chroot, lintian"
    timed "delivery: Debian package build" ci/build-deb.sh

    step "Isar: bitbake builds the package (trixie, bookworm)"
    # Isar itself comes from the cache, or is cloned at its pinned commit
    # (ci/isar-build.sh says how to give it on a machine that cannot).
    timed "delivery: Isar package build" ci/isar-build.sh --build-only
    # Commit A is the build above, restored from sstate; B is built.
    timed "delivery: Isar SRCREV check" ci/isar-srcrev-check.sh

    step "Isar: the CIP security image (isar-cip-core's recipes, the package)"
    timed "delivery: Isar image build" ci/isar-build.sh --image --build-only
fi
[ "$rest" -eq 1 ] || exit 0

step "Debian package: apt install in the image, the installed suite"
# Found in the package cache when --builds made it.
timed "delivery: Debian package build (cached)" ci/build-deb.sh
timed "delivery: apt install in the image, suite" ci/deb-in-image.sh

step "Isar recipe: the crates as bitbake fetches them, source preparation"
ci/gen-isar-crates.sh --check
timed "delivery: Isar source preparation" ci/isar-prepare-check.sh
timed "delivery: kas fragment" ci/kas-fragment-check.sh

step "Isar: the trixie package installed in the booted CIP trixie target"
timed "delivery: Isar package in the booted CIP trixie target" ci/isar-build.sh --no-build

step "LAVA: definitions, the run step in the image"
shellcheck ci/lava/*.sh
python3 ci/lava/check-definitions.py
timed "delivery: LAVA run step in the image" ci/lava-in-image.sh

step "QEMU: the CIP security image built by Isar, booted, runs the suite"
# In place of `FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh` (the
# project's own stand-in of that image, booted the same way; about 4 to
# 5 min): an image built the way CIP builds it, in about the same time.
timed "delivery: Isar image booted in QEMU, suite" ci/isar-build.sh --image --no-build

step "Other architectures: the whole suite on arm64 and armhf (qemu-user)"
# The package cross-built for each (ci/build-deb.sh --arch), installed with
# apt in the compliant trixie target of that architecture, the whole suite
# in the namespace runner under qemu-user; then two negative-control
# profiles there, which must make their cases fail. (This subsumes the
# earlier `ci/cross-build.sh` check: --list under qemu-user.)
timed "delivery: arm64 suite (qemu-user)" ci/arch-suite.sh arm64
timed "delivery: arm64 profile pam-permit" ci/arch-suite.sh arm64 --profile pam-permit
timed "delivery: arm64 profile faillock-removed" ci/arch-suite.sh arm64 --profile faillock-removed
# armhf: trixie from its main archive alone (ci/arch-suite.sh says why).
timed "delivery: armhf suite (qemu-user)" ci/arch-suite.sh armhf

step "arm64 booted: CIP's trixie image in qemu-system-aarch64, the journal-backed remote ban"
# qemu-user cannot run nftables (no NETLINK_NETFILTER) nor boot systemd: the
# remote ban, with fail2ban reading ssh.service's journal as CIP configures
# it, runs on the booted arm64 image (TCG). One case only: the whole suite
# there takes several times its native time (FR1_ARCH=arm64 ... ci/qemu-image.sh
# without a filter runs it all).
timed "delivery: arm64 booted, TC_CR1.11_3" env FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie \
    ci/qemu-image.sh --out target/qemu-image-arm64 -- TC_CR1.11_3
