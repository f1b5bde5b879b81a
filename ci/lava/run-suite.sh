#!/bin/sh
# Run step of the LAVA test definition ci/lava/cip-iec-fr1-tests.yaml, run by
# the LAVA test shell on the device, as root, from the root of this
# repository's checkout. Its parameters arrive as environment variables.
#
# The suite reports every test case with lava-test-case itself (--lava);
# this adds the overall result and keeps the JUnit report, the evidence and
# the assessor's HTML report (report.html, next to junit.xml).
# Always exits 0: the results are what LAVA records, a failing step would
# only hide them.
set -u

FILTER=${FILTER:-}
SUITE_ARGS=${SUITE_ARGS:-}
INSTALL=${INSTALL:-false}
OUTPUT_DIR=${OUTPUT_DIR:-/tmp/cip-iec-fr1-tests}
ARTIFACTORIAL_URL=${ARTIFACTORIAL_URL:-}
ARTIFACTORIAL_TOKEN=${ARTIFACTORIAL_TOKEN:-}
SUITE=cip-iec-fr1-tests

result() { # NAME pass|fail|skip
    lava-test-case "$1" --result "$2"
}

if ! command -v "$SUITE" > /dev/null; then
    if [ "$INSTALL" = true ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$SUITE" ||
            { result "$SUITE-install" fail; exit 0; }
        result "$SUITE-install" pass
    else
        echo "$SUITE is not installed on the device (add it to the image, or INSTALL=true)"
        result "$SUITE" fail
        exit 0
    fi
fi

rm -rf "$OUTPUT_DIR"
mkdir -p "$OUTPUT_DIR"
junit=$OUTPUT_DIR/junit.xml
evidence=$OUTPUT_DIR/evidence
report=$OUTPUT_DIR/report.html

# shellcheck disable=SC2086 # FILTER and SUITE_ARGS are word lists on purpose
"$SUITE" --lava --junit "$junit" --evidence-dir "$evidence" --report "$report" $SUITE_ARGS $FILTER
status=$?
case $status in
    0) result "$SUITE" pass ;;
    *) echo "$SUITE exited with $status"; result "$SUITE" fail ;;
esac

# Keep the reports: an artifact upload when configured, the log in any case.
if [ -n "$ARTIFACTORIAL_URL" ] && [ -f "$junit" ]; then
    tarball=$OUTPUT_DIR.tar.gz
    tar -C "$(dirname "$OUTPUT_DIR")" -czf "$tarball" "$(basename "$OUTPUT_DIR")"
    if url=$(curl -sf -F "path=@$tarball" -F "token=$ARTIFACTORIAL_TOKEN" "$ARTIFACTORIAL_URL"); then
        lava-test-reference "$SUITE-reports" --result pass --reference "$url"
    else
        result "$SUITE-reports-upload" fail
    fi
fi
# The HTML report is kept with the upload; the log only names it.
[ -f "$report" ] && echo "$SUITE: assessor report $report"
for f in "$junit" "$evidence/index.txt"; do
    [ -f "$f" ] || continue
    echo "--- BEGIN $SUITE $(basename "$f") ---"
    cat "$f"
    echo "--- END $SUITE $(basename "$f") ---"
done
exit 0
