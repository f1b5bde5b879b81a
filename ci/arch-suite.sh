#!/bin/bash
# The whole suite on another architecture of CIP devices (arm64, armhf):
# the Debian package cross-built for it (ci/build-deb.sh --arch) is installed
# with apt (ci/apt-install-in-image.sh) in the disposable target of that
# architecture (FR1_ARCH=ARCH ci/target-image.sh: the compliant profile,
# built and run under qemu-user), and the installed suite runs there in the
# namespace runner; the JUnit report and the evidence come back to the host.
#
#   ci/arch-suite.sh ARCH [--profile NAME] [--out DIR] [-- SUITE-ARGS...]
#   ci/arch-suite.sh ARCH --prepare
#
# Without --profile (compliant): every case but TC_CR1.11_3 must pass or be
# Not Applicable ("NA: " skip); a Met case that is skipped or fails fails
# this script. TC_CR1.11_3 (the remote ban) needs nftables, whose netlink
# family (NETLINK_NETFILTER) qemu-user does not emulate: `nft` fails with
# "Unable to initialize Netlink socket: Protocol not supported" for any
# program of another architecture. It runs on the booted arm64 image
# instead (FR1_ARCH=arm64 ci/qemu-image.sh), a real kernel under
# qemu-system.
# With --profile NAME: the cases that declare the profile as their negative
# control run (--exact) and each of them must fail, the negative control on
# that architecture. The host's release build says which cases those are
# (ci/target-image.sh profiles: target/release/cip-iec-fr1-tests
# --list-controls), so build it first (cargo build --release). Results in --out (default target/arch-suite/ARCH[-NAME]):
# junit.xml, evidence/, apt-install.log, list.txt. Prints the wall time.
#
# --prepare only builds (or finds cached) the package and the target:
# ci/test.sh starts that early, in the background.
#
# armhf takes trixie from its main archive alone (FR1_MIRROR overrides): the
# archive mirror CI uses has served bookworm-security's and trixie-updates'
# armhf indexes out of step with their Release files ("Mirror sync in
# progress?"), which stops apt; trixie main carries Rust for armhf (rustc
# 1.85 and rustc-web).
#
# Needs root, mmdebstrap, qemu-user-binfmt (ci/install-deps.sh --delivery).
# Suite: FR1_SUITE, default trixie here (armhf's Rust toolchain is trixie's).
# Cached: the package (ci/build-deb.sh) and the target rootfs
# (ci/target-image.sh, keyed by the architecture); the first arm64 or armhf
# rootfs takes about 10 min under emulation, a warm run only the suite.
set -euo pipefail
shopt -s inherit_errexit
export FR1_SUITE=${FR1_SUITE:-trixie}
if [ "${1:-}" = armhf ] && [ -z "${FR1_MIRROR:-}" ]; then
    export FR1_MIRROR="deb http://deb.debian.org/debian $FR1_SUITE main"
fi
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

usage() { sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$SELF"; }

arch=${1:-}
case $arch in
    arm64 | armhf) shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "the first argument must be arm64 or armhf, not '$arch'" 2 ;;
esac
profile='' out='' prepare=0
while [ $# -gt 0 ]; do
    case $1 in
        --prepare) prepare=1; shift ;;
        --profile) profile=${2:?--profile needs a name}; shift 2 ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --) shift; break ;;
        *) die "unknown argument '$1' (see --help)" 2 ;;
    esac
done
suite_args=("$@")
# A case's time limit (180 s by default) is there to stop a hung case; under
# qemu-user a case takes three to five times its native time, more while
# the machine is busy (TC_CR1.3_3 once took over 180 s beside other
# emulated runs), and a slow target must not fail.
EMULATED_TIME_LIMIT=900
# See above: not demonstrable under qemu-user (ci/delivery-test.sh runs it
# on the booted arm64 image).
QEMU_USER_CANNOT=TC_CR1.11_3
[ -n "$profile" ] || [ ${#suite_args[@]} -gt 0 ] || suite_args=(--skip "$QEMU_USER_CANNOT")
if [ -n "$profile" ]; then
    [ -f "fixtures/profiles/$profile/mutate.sh" ] || die "no profile '$profile' (fixtures/profiles/NAME/mutate.sh)" 2
    profiles=$(ci/target-image.sh profiles) || die "cannot tell which test cases must fail under '$profile'"
    mapfile -t expected < <(awk -F '\t' -v p="$profile" '$1 == p { gsub(",", "\n", $2); print $2 }' <<< "$profiles")
    [ -n "${expected[*]}" ] || die "no test case declares the profile '$profile' as its negative control" 2
    [ ${#suite_args[@]} -gt 0 ] || suite_args=("${expected[@]}" --exact)
fi
[ "$(id -u)" -eq 0 ] || die "must run as root"
command -v apt-ftparchive > /dev/null || die "apt-ftparchive is not installed (apt-get install apt-utils)"
out=${out:-$REPO/target/arch-suite/$arch${profile:+-$profile}}

t0=$EPOCHREALTIME
debs=$REPO/target/deb/$SUITE-$arch
ci/build-deb.sh --arch "$arch" --out "$debs" > /dev/null
FR1_ARCH=$arch ci/target-image.sh build > /dev/null
if [ "$prepare" -eq 1 ]; then
    log "$arch: package and target ready in $(elapsed "$t0") s"
    exit 0
fi

# The package only (not its -dbgsym).
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf --one-file-system -- "${out:?}"/*
apt_repo_for_image "$out" "$debs"/cip-iec-fr1-tests_*_"$arch".deb

t1=$EPOCHREALTIME
rc=0
FR1_ARCH=$arch ci/target-image.sh run --no-bin --out "$out" --setup ci/apt-install-in-image.sh \
    ${profile:+--profile "$profile"} -- --time-limit "$EMULATED_TIME_LIMIT" "${suite_args[@]}" || rc=$?
suite_s=$(elapsed "$t1")
rm -rf "${out:?}/apt" "$out/program-packages"
[ -s "$out/junit.xml" ] || die "$arch: no JUnit report came back from the image (runner exit $rc)"

# One line per test case: NAME<TAB>pass|fail|skip<TAB>message.
results=$(python3 - "$out/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).iter("testcase"):
    status, message = "pass", ""
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            status = "skip" if child.tag == "skipped" else "fail"
            message = (child.get("message") or "").replace("\t", " ").replace("\n", " ")
    print(f"{case.get('name')}\t{status}\t{message}")
EOF
)
count() { awk -F'\t' -v s="$1" '$2 == s' <<< "$results" | wc -l; }
summary="$(count pass) passed, $(count fail) failed, $(count skip) skipped"

if [ -z "$profile" ]; then
    # Skipped is only right for a case the requirement does not apply to.
    bad=$(awk -F'\t' '$2 == "fail" || ($2 == "skip" && $3 !~ /^NA: /)' <<< "$results")
    if [ -n "$bad" ] || [ "$rc" -ne 0 ]; then
        printf '%s\n' "$bad" >&2
        die "$arch: the compliant target does not pass every Met case ($summary; exit $rc); see $out"
    fi
    [ "$(wc -l <<< "$results")" -ge 34 ] || die "$arch: only $(wc -l <<< "$results") cases reported; see $out"
else
    for tc in "${expected[@]}"; do
        awk -F'\t' -v t="$tc" '$1 == t && $2 == "fail" { f = 1 } END { exit !f }' <<< "$results" ||
            die "$arch: profile $profile must make $tc fail, but it did not ($summary); see $out"
    done
    [ "$rc" -eq 101 ] || die "$arch: profile $profile: the suite exited $rc, not 101 (a case failed)"
fi
log "$arch${profile:+ profile $profile}: $summary${suite_args[*]:+ (${suite_args[*]})}; suite run ${suite_s} s, $(elapsed "$t0") s in all: $out/junit.xml"
