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
#   ci/delivery-test.sh --after-builds  the rest, with what --builds made:
#                                       the checks in containers, and beside
#                                       them those under emulation (the Isar
#                                       image in QEMU, arm64, armhf)
#   ci/delivery-test.sh --on ARCH       only the checks of one other
#                                       architecture (arm64, armhf)
#
# ci/test.sh (.ci/run) runs --builds in the background while the acceptance
# tests run (they mostly wait), then --after-builds. Needs root and
# Debian's package archive.
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

builds=1 rest=1 on=''
case ${1:-} in
    '') ;;
    --builds) rest=0 ;;
    --after-builds) builds=0 ;;
    --on)
        builds=0
        on=${2:-}
        [[ $on =~ ^(arm64|armhf)$ ]] || die "--on needs arm64 or armhf, not '$on'" 2
        ;;
    # (--after-builds runs it in a session of its own)
    __under-emulation) builds=0 on=emulated ;;
    *) die "unknown argument '$1' (--builds, --after-builds or --on ARCH)" 2 ;;
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

# The checks that run what the builds made, in two halves that run at the
# same time: the suite in namespaces and booted containers (mostly waiting),
# and the suite under emulation (QEMU's TCG, qemu-user: one core each).

in_containers() {
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
}

# The CIP security image Isar built, under QEMU's TCG (one core).
isar_image_booted() {
    step "QEMU: the CIP security image built by Isar, booted, runs the suite"
    # In place of `FR1_FLAVOR=cip FR1_SUITE=trixie ci/qemu-image.sh` (the
    # project's own stand-in of that image, booted the same way; about 4 to
    # 5 min): an image built the way CIP builds it, in about the same time.
    timed "delivery: Isar image booted in QEMU, suite" ci/isar-build.sh --image --no-build
}

# The whole suite on another architecture under qemu-user: the package
# cross-built for it (ci/build-deb.sh --arch), installed with apt in the
# compliant trixie target of that architecture, run in the namespace
# runner. (This subsumes the earlier `ci/cross-build.sh` check: --list
# under qemu-user.)
on_arm64() {
    step "arm64: the whole suite (qemu-user), two negative controls, the booted image"
    timed "delivery: arm64 suite (qemu-user)" ci/arch-suite.sh arm64
    # Two negative-control profiles there, which must make their cases fail.
    timed "delivery: arm64 profile pam-permit" ci/arch-suite.sh arm64 --profile pam-permit
    timed "delivery: arm64 profile faillock-removed" ci/arch-suite.sh arm64 --profile faillock-removed
    # qemu-user cannot run nftables (no NETLINK_NETFILTER) nor boot systemd: the
    # remote ban, with fail2ban reading ssh.service's journal as CIP configures
    # it, runs on CIP's trixie image booted in qemu-system-aarch64 (TCG). One
    # case only: the whole suite there takes several times its native time
    # (FR1_ARCH=arm64 ... ci/qemu-image.sh without a filter runs it all).
    timed "delivery: arm64 booted, TC_CR1.11_3" env FR1_ARCH=arm64 FR1_FLAVOR=cip FR1_SUITE=trixie \
        ci/qemu-image.sh --out target/qemu-image-arm64 -- TC_CR1.11_3
}
on_armhf() {
    step "armhf: the whole suite (qemu-user)"
    # trixie from its main archive alone (ci/arch-suite.sh says why).
    timed "delivery: armhf suite (qemu-user)" ci/arch-suite.sh armhf
}

case $on in
    emulated) isar_image_booted; on_arm64; on_armhf; exit 0 ;;
    arm64) on_arm64; exit 0 ;;
    armhf) on_armhf; exit 0 ;;
esac
if [ "$builds" -eq 1 ]; then
    # Everything, one after the other (a run by hand).
    in_containers
    isar_image_booted
    on_arm64
    on_armhf
    exit 0
fi
# After the builds (ci/test.sh): the checks in containers (mostly waiting)
# beside those under emulation (TCG, qemu-user: one core each, one after
# the other), the latter in a session of its own (killed with everything
# it started if this script ends first), its output printed whole when it
# is done.
mkdir -p "$REPO/target/ci-logs"
emulated_log=$REPO/target/ci-logs/delivery-under-emulation.log
setsid "$SELF" __under-emulation > "$emulated_log" 2>&1 < /dev/null &
emulated=$!
trap 'kill -- -"$emulated" 2> /dev/null || true; cleanup' EXIT
in_containers
rc=0
wait "$emulated" || rc=$?
trap cleanup EXIT
step "delivery under emulation (ran beside the checks above)"
cat "$emulated_log"
[ "$rc" -eq 0 ] || die "the delivery checks under emulation failed (exit $rc)"
