//! Interruption safety: the suite killed with SIGKILL at many moments of a
//! run, then `--cleanup`, leaves the image exactly as it was; SIGTERM
//! undoes at once by itself. All kills happen in one disposable image, one
//! after the other, so each must leave a clean state for the next.
//!
//! The moments spread over a whole run at the default number of test
//! threads: dense in the first seconds, where most accounts, servers and
//! files are set up; then fractions of the run's length, which cover the
//! rest of the parallel part, the case that runs alone (TC_CR1.10_1) and
//! the lockout wait beside it (TC_CR1.11_2); then the last case's final
//! steps and cleanups. The length is measured in the same image, under the
//! same load, by the kills that go first (see `KILL_LOOP`), so the moments
//! follow the run when the schedule or the machine makes it longer or
//! shorter. A kill costs the time up to its moment: about 10 minutes for
//! all of them on a quiet 2-core machine.

use fr1_acceptance::{repo_root, suite_binary};
use std::process::Command;

/// Seconds after the start.
const EARLY: &[&str] = &[
    "0.05", "0.1", "0.2", "0.3", "0.5", "0.8", "1.2", "1.8", "2.6", "3.6", "5",
];
/// Fractions of the run's length. The largest stays clear of the end: the
/// case that runs alone varies by some 10 % of a run (random PAM delays),
/// and a kill after the end would not be one.
const FRACTIONS: &[&str] = &[
    "0.12", "0.22", "0.32", "0.42", "0.52", "0.62", "0.72", "0.85",
];
/// Moments at the end, found by events rather than times (the last case's
/// final login takes about 0.4 s, its cleanups and the run's end some tens
/// of milliseconds, and a run's length varies by seconds): 0.05 s after all
/// test cases but one have reported, in the last one's final login; and as
/// soon as it marks its first change undone after that (the undo journal,
/// polled without pause), in its cleanups. See `KILL_LOOP`.
const LAST: usize = 2;
const MOMENTS: usize = EARLY.len() + FRACTIONS.len() + LAST;

// The issue asks for at least 20 moments.
const _: () = assert!(MOMENTS >= 20);

/// Runs in the image (bash, for $EPOCHREALTIME): for every moment,
/// snapshot, start the suite, kill it, clean up, snapshot again and
/// compare. Prints one verdict line per kill, "kill N at S s (WHY): …";
/// a suite that had already ended when the kill came is said so and does
/// not count as identical. The kills at the end go first: the time until
/// all but one case reported is the run's length for the fractions.
const KILL_LOOP: &str = r#"
set -u
total=$(cip-iec-fr1-tests --list | grep -c ': test$')
n=0

start_suite() {
    fr1-snapshot-state > /tmp/before
    : > /tmp/run.log
    started=$EPOCHREALTIME
    cip-iec-fr1-tests --no-lava > /tmp/run.log 2>&1 &
    pid=$!
}
since_start() {
    awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}
# libtest's line per finished test case: "test ID ... ok|FAILED|ignored".
reported() {
    grep -c '^test .* \.\.\. ' /tmp/run.log
}
# DONE := the undo-journal entries marked done ("ID<tab>done" lines). Bash
# builtins only, no process started: the poll below must see a change
# within a few milliseconds.
count_done() {
    local line
    DONE=0
    mapfile -t lines < /var/lib/cip-iec-fr1-tests/journal 2>/dev/null || return 0
    for line in "${lines[@]}"; do
        [[ $line == *$'\t'done ]] && DONE=$((DONE + 1))
    done
    return 0
}
# Whether the suite has exited (a zombie until waited for), by a builtin.
suite_ended() {
    local state
    read -r _ _ state _ < "/proc/$pid/stat" 2>/dev/null || return 0
    [ "$state" = Z ]
}
# The deadline only keeps a suite that died without its summary line from
# hanging the loop; the kill then says the run was over.
wait_all_but_one() {
    deadline=$((SECONDS + 1200))
    while [ "$(reported)" -lt $((total - 1)) ] && ! grep -q '^test result:' /tmp/run.log \
        && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
}
kill_and_check() { # WHY
    local at status verdict
    at=$(since_start)
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    status=$?
    n=$((n + 1))
    # Orphaned PTY sessions get SIGHUP when the suite's terminals close.
    sleep 0.3
    if ! cip-iec-fr1-tests --cleanup > /tmp/cleanup.log 2>&1; then
        echo "kill $n at $at s ($1): CLEANUP FAILED"; cat /tmp/cleanup.log; return
    fi
    fr1-snapshot-state > /tmp/after
    if ! diff /tmp/before /tmp/after > /tmp/diff; then
        echo "kill $n at $at s ($1): DIFFERENT"; cat /tmp/diff; cat /tmp/cleanup.log; return
    fi
    verdict="identical ($(grep -c . /tmp/cleanup.log) cleanup line(s))"
    # 137: ended by SIGKILL. Anything else: the run was over already.
    if [ "$status" -ne 137 ]; then
        verdict="the suite had already ended (exit $status), no kill"
    fi
    echo "kill $n at $at s ($1): $verdict"
}

start_suite
wait_all_but_one
length=$(since_start)
sleep 0.05
kill_and_check "0.05 s after all but one test case reported"
echo "run length until all but one test case reported: $length s"

# The last case's cleanups and the run's end last some tens of
# milliseconds: the journal is polled without pause, and the first entry
# marked done after all but one case reported (its login session closed)
# starts them.
start_suite
wait_all_but_one
count_done
before=$DONE
while count_done && [ "$DONE" -le "$before" ] && ! suite_ended \
    && [ "$SECONDS" -lt "$deadline" ]; do
    :
done
kill_and_check "as the last test case began its cleanups"

for d in $EARLY; do
    start_suite
    sleep "$d"
    kill_and_check "early"
done

for f in $FRACTIONS; do
    d=$(awk -v f="$f" -v l="$length" 'BEGIN { printf "%.2f", f * l }')
    start_suite
    sleep "$d"
    kill_and_check "$f of the run"
done

# SIGTERM: the suite undoes by itself, no --cleanup needed.
fr1-snapshot-state > /tmp/before
cip-iec-fr1-tests --no-lava > /tmp/run.log 2>&1 &
pid=$!
sleep 3
kill -TERM "$pid"
wait "$pid"
echo "sigterm exit code: $?"
sleep 0.3
fr1-snapshot-state > /tmp/after
if diff /tmp/before /tmp/after > /tmp/diff; then echo "sigterm: identical"; else echo "sigterm: DIFFERENT"; cat /tmp/diff; fi
"#;

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn killed_at_moments_over_a_whole_run_then_cleaned_up_leaves_the_image_as_it_was() {
    let moments = MOMENTS;
    let out = Command::new(repo_root().join("ci/target-image.sh"))
        .arg("exec")
        .arg("--bin")
        .arg(suite_binary())
        .args([
            "--",
            "env",
            &format!("EARLY={}", EARLY.join(" ")),
            &format!("FRACTIONS={}", FRACTIONS.join(" ")),
            "bash",
            "-c",
            KILL_LOOP,
        ])
        .output()
        .expect("run ci/target-image.sh exec");
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The moments and verdicts, for the CI log.
    for line in console
        .lines()
        .filter(|l| l.starts_with("kill ") || l.starts_with("run length"))
    {
        println!("{line}");
    }
    let verdicts = |needle: &str| {
        console
            .lines()
            .filter(|l| l.starts_with("kill ") && l.contains(needle))
            .count()
    };
    let identical = verdicts(": identical");
    // A moment found by an event (the last case's cleanups last tens of
    // milliseconds) can come too late on a loaded machine: the suite had
    // ended, nothing was killed. That is no kill, not a failure; every kill
    // made must leave the image identical, and at least 20 must be made.
    let missed = verdicts("already ended");
    println!(
        "SIGKILL then --cleanup: {identical} of {moments} kills left the image identical \
         ({missed} moment(s) came after the end of the run)"
    );
    assert_eq!(identical + missed, moments, "{console}");
    assert!(
        identical >= 20,
        "only {identical} kills were made:\n{console}"
    );
    assert!(console.contains("sigterm: identical"), "{console}");
    assert!(console.contains("sigterm exit code: 143"), "{console}");
}
