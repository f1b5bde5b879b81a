#!/usr/bin/env bash
# The acceptance tests (acceptance/tests, the #[ignore]d ones: the suite in
# disposable images), several at a time: each test is one run of its test
# binary (`--ignored --exact NAME`), taken from one queue by JOBS workers,
# the longest first. The tests are independent (each image is a throw-away
# overlay in namespaces of its own) and mostly wait on PAM delays and lock
# timers, so two at a time take about half the time of one after the other;
# every test still runs, once, with its own rules (the suite inside each
# image schedules its cases itself: TC_CR1.10_1 alone there).
#
#   ci/acceptance.sh [--jobs N] [--log FILE]
#   ci/acceptance.sh --list
#
# --list  print the tests in the order they are taken, and run none
# --jobs  how many tests at once (default FR1_ACCEPTANCE_JOBS or 2)
# --log   append every test's output to FILE too (ci/test.sh counts the
#         results there)
# Each test's output is printed whole when it ends (never interleaved), and
# its wall time is added to the timing table (FR1_TIMINGS, see ci/lib.sh).
# Exit status 1 when any test failed (all of them still run). Needs root,
# the release build (FR1_SUITE_BIN or target/release/cip-iec-fr1-tests) and
# the cached target images (ci/target-image.sh build).
set -euo pipefail
shopt -s inherit_errexit
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
cd "$REPO"

# The order tests are taken in: the longest first (measured in a cold CI
# run, 2026-12-07: the interruption test about 11 min, the thread-parity
# run 6.5 min, the matrix 5.5 min, the slow target 2.7 min, each CIP image
# about 1.7 min, …), so that the last to start is a short one. A test
# missing here runs after these; a name here that no binary has is an error
# (a renamed test must be renamed here too).
LONGEST_FIRST=(
    interruption::killed_at_moments_over_a_whole_run_then_cleaned_up_leaves_the_image_as_it_was
    in_image::compliant_bookworm_image_passes_alike_at_one_and_default_threads_and_is_left_as_found
    negative_controls::every_broken_profile_fails_the_cases_it_targets_and_compliant_passes_them
    slow_target::a_slow_ssh_connection_does_not_fail_the_remote_lockout_case
    cip_targets::cip_trixie_booted_fails_only_its_published_root_password
    cip_targets::cip_bookworm_booted_fails_the_remote_ban_and_its_root_password_for_its_real_defects
    cip_targets::cip_bookworm_fixed_booted_passes_every_met_case
    in_image::compliant_trixie_image_booted_passes_and_is_left_as_found
    time_limit::a_case_stuck_beyond_the_harness_stops_the_run_which_still_undoes_everything
    time_limit::a_hung_program_fails_its_case_at_the_time_limit_and_leaves_the_image_as_found
    report::reports_of_a_compliant_and_a_broken_run_are_valid_self_contained_and_render
    report::a_result_that_cannot_be_written_after_the_run_exits_3_and_the_others_are_written
    pid_one::as_pid_one_after_exec_the_suite_leaves_the_daemons_before_it_alone
    in_image::a_name_filter_runs_only_the_matching_cases
)

jobs=${FR1_ACCEPTANCE_JOBS:-2} also_log='' list=0
while [ $# -gt 0 ]; do
    case $1 in
        --list) list=1; shift ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --log) also_log=${2:?--log needs a file}; shift 2 ;;
        *) die "unknown argument '$1' (see the comment at the top of $PROG)" 2 ;;
    esac
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a whole number above 0, not '$jobs'" 2

work=$(mktemp -d "${TMPDIR:-/tmp}/fr1-acceptance.XXXXXX")
CLEANUP+=("$work")

# The test binaries, by target name (cargo's JSON messages name each).
cargo test -p fr1-acceptance --locked --no-run --message-format=json 2> "$work/build.log" |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"] + "\t" + m["executable"])
' > "$work/binaries" || { cat "$work/build.log" >&2; die "cannot build the acceptance tests"; }
declare -A binary=()
while IFS=$'\t' read -r name path; do binary[$name]=$path; done < "$work/binaries"
[ ${#binary[@]} -gt 0 ] || die "cargo built no acceptance test binary"

# Every #[ignore]d test of every binary, as BINARY::NAME.
declare -A ignored=()
for name in "${!binary[@]}"; do
    while IFS= read -r t; do
        ignored["$name::$t"]=1
    done < <("${binary[$name]}" --ignored --list --format terse | sed -n 's/: test$//p')
done
queue=()
for t in "${LONGEST_FIRST[@]}"; do
    [ -n "${ignored[$t]:-}" ] || die "LONGEST_FIRST names $t, which no acceptance test binary has"
    queue+=("$t")
done
for t in $(printf '%s\n' "${!ignored[@]}" | sort); do
    [[ " ${LONGEST_FIRST[*]} " == *" $t "* ]] || queue+=("$t")
done
if [ "$list" -eq 1 ]; then
    printf '%s\n' "${queue[@]}"
    exit 0
fi
log "${#queue[@]} tests, $jobs at a time"

# One worker: takes the next index from the shared counter (under a lock)
# until the queue is empty; each test's output and status in $work.
worker() {
    local i t bin name rc t0
    while true; do
        i=$({
            flock 9
            read -r i < "$work/counter"
            echo $((i + 1)) > "$work/counter"
            echo "$i"
        } 9> "$work/counter.lock")
        [ "$i" -lt "${#queue[@]}" ] || return 0
        t=${queue[$i]}
        bin=${t%%::*} name=${t#*::}
        t0=$EPOCHREALTIME
        rc=0
        timed "acceptance: $t" "${binary[$bin]}" --ignored --exact "$name" --test-threads 1 --show-output \
            > "$work/$i.out" 2>&1 || rc=$?
        echo "$rc" > "$work/$i.rc"
        log "$t: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $(elapsed "$t0") s"
    done
}
echo 0 > "$work/counter"
pids=()
for _ in $(seq "$jobs"); do
    worker &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

failed=()
for i in "${!queue[@]}"; do
    step "acceptance: ${queue[$i]}"
    cat "$work/$i.out"
    [ -z "$also_log" ] || cat "$work/$i.out" >> "$also_log"
    [ "$(cat "$work/$i.rc" 2> /dev/null || echo 1)" -eq 0 ] || failed+=("${queue[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
    printf '%s: failed: %s\n' "$PROG" "${failed[@]}" >&2
    exit 1
fi
log "all ${#queue[@]} acceptance tests passed"
