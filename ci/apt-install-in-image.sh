#!/bin/sh
# Runs inside the disposable image as the --setup of
# `ci/target-image.sh run --no-bin` (ci/deb-in-image.sh drives it): installs
# the suite the way a user of a CIP image would, `apt install
# cip-iec-fr1-tests`, from the local repository in /fr1-out/apt, with no
# other source and no network. Every dependency must therefore already be in
# the image, as on a CIP security image; a Depends that is not fails the
# install. Then checks what the package installed.
#
# FR1_APT_REMOVE=PKG first purges PKG from the image (the negative control:
# the install must then fail). apt's output goes to /fr1-out/apt-install.log.
set -eu

repo=/fr1-out/apt
log=/fr1-out/apt-install.log
bin=/usr/bin/cip-iec-fr1-tests

fail() { echo "apt-install-in-image: $*" >&2; exit 1; }

[ ! -e "$bin" ] || fail "the image already contains $bin: this path must install it"
[ -f "$repo/Packages" ] || fail "no repository at $repo"

if [ -n "${FR1_APT_REMOVE:-}" ]; then
    echo "apt-install-in-image: removing $FR1_APT_REMOVE from the image first"
    dpkg --purge "$FR1_APT_REMOVE" > /dev/null
fi

# The local repository only (this is a throw-away overlay of the image).
rm -f /etc/apt/sources.list
rm -rf /etc/apt/sources.list.d
mkdir /etc/apt/sources.list.d
echo "deb [trusted=yes] file:$repo ./" > /etc/apt/sources.list.d/fr1-local.list

export DEBIAN_FRONTEND=noninteractive
status=0
{
    apt-get update -q -o APT::Update::Error-Mode=any &&
        apt-get install -y -q cip-iec-fr1-tests
} > "$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    cat "$log"
    fail "apt-get install cip-iec-fr1-tests failed (exit $status)"
fi
grep -E '^(Get:|Setting up) ' "$log"

# What the package put on the system.
[ -x "$bin" ] || fail "$bin missing after the install"
dpkg-query -W -f='${Status} ${Version}\n' cip-iec-fr1-tests | grep -q '^install ok installed ' ||
    fail "dpkg does not list cip-iec-fr1-tests as installed"
for f in /usr/share/man/man1/cip-iec-fr1-tests.1.gz /usr/share/doc/cip-iec-fr1-tests/copyright; do
    [ -f "$f" ] || fail "$f missing after the install"
done
"$bin" --list > /fr1-out/list.txt
grep -q '^TC_CR1\.1_1: test$' /fr1-out/list.txt || fail "--list does not list TC_CR1.1_1"

# ci/program-packages says which package ships each program the test cases
# run: check it against this system (merged /usr: dpkg may know the
# program by its /bin or /sbin name).
grep -v '^#' /fr1-out/program-packages | while IFS='	' read -r program package how; do
    [ -n "$program" ] || continue
    [ "$package" != - ] || continue # not packaged in Debian: optional
    if ! path=$(command -v "$program"); then
        [ "$how" != suggests ] || continue # evidence only, where the system has it
        fail "$program is not installed (package $package)"
    fi
    owner=$( (dpkg-query -S "$path" || dpkg-query -S "${path#/usr}") 2> /dev/null |
        grep -v '^diversion by' | head -n 1 | cut -d: -f1)
    [ "$owner" = "$package" ] ||
        fail "$program ($path) comes from '$owner', not '$package' as ci/program-packages says"
done
echo "apt-install-in-image: installed $(dpkg-query -W -f='${Package} ${Version}' cip-iec-fr1-tests)"
