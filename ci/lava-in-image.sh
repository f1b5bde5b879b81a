#!/bin/bash
# The LAVA test definition's run step (ci/lava/run-suite.sh) in the
# disposable image, with stand-ins for LAVA's lava-test-case and
# lava-test-reference that print the signals the real ones send. Checks that
# every selected test case and the overall result reach LAVA, that the
# JUnit report is kept in the log and the HTML report is written next to it.
#
#   ci/lava-in-image.sh [FILTER]      (default: TC_CR1.1_: TC_CR1.1_1 and TC_CR1.1_2)
set -euo pipefail
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

filter=${1:-TC_CR1.1_}
bin=target/release/cip-iec-fr1-tests
[ -x "$bin" ] || die "$bin missing (cargo build --release)"

work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-lava.XXXXXX")
CLEANUP+=("$work")
# In the image: lava-test-case/-reference as LAVA's test shell has them, but
# printing the signal line only (the real ones print the same to the console).
cat > "$work/setup.sh" <<'SETUP'
set -e
cat > /usr/local/bin/lava-test-case <<'FAKE'
#!/bin/sh
name=$1; shift
result=unknown
while [ $# -gt 0 ]; do
    case $1 in --result) result=$2; shift ;; esac
    shift
done
echo "<LAVA_SIGNAL_TESTCASE TEST_CASE_ID=$name RESULT=$result>"
FAKE
cp /usr/local/bin/lava-test-case /usr/local/bin/lava-test-reference
chmod 0755 /usr/local/bin/lava-test-case /usr/local/bin/lava-test-reference
SETUP

"$bin" --list "$filter" | sed -n 's/: test$//p' > "$work/expected"
[ -s "$work/expected" ] || die "no test case matches $filter"
rc=0
ci/target-image.sh exec --bin "$bin" --setup "$work/setup.sh" -- \
    env "FILTER=$filter" sh -s < ci/lava/run-suite.sh > "$work/console" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$work/console" >&2; die "the run step exited $rc (it must always exit 0)"; }

while read -r id; do
    grep -q "<LAVA_SIGNAL_TESTCASE TEST_CASE_ID=$id RESULT=pass>" "$work/console" ||
        { cat "$work/console" >&2; die "$id was not reported to LAVA as passed"; }
done < "$work/expected"
grep -q '<LAVA_SIGNAL_TESTCASE TEST_CASE_ID=cip-iec-fr1-tests RESULT=pass>' "$work/console" ||
    die "the overall result was not reported to LAVA"
grep -q -- '--- BEGIN cip-iec-fr1-tests junit.xml ---' "$work/console" ||
    die "the JUnit report is not in the log"
# run-suite.sh names the report only when the suite wrote it.
grep -q -- 'cip-iec-fr1-tests: assessor report /tmp/cip-iec-fr1-tests/report.html' "$work/console" ||
    { cat "$work/console" >&2; die "no report.html next to the JUnit report"; }
echo "lava-in-image: $(wc -l < "$work/expected") test case(s) and the overall result reported to LAVA; JUnit kept in the log, report.html next to it"
