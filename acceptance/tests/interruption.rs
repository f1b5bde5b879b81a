//! Interruption safety: the suite killed with SIGKILL at many moments of a
//! run, then `--cleanup`, leaves the image exactly as it was; SIGTERM
//! undoes at once by itself. All kills happen in one disposable image, one
//! after the other, so each must leave a clean state for the next.

use fr1_acceptance::{repo_root, suite_binary};
use std::process::Command;

/// Moments (seconds after the start) at which the suite is killed. They
/// spread over a whole run of the foundation cases, from before the first
/// account exists to the last cleanups, and are dense early, where most
/// setup happens.
const KILL_AT: &[&str] = &[
    "0.05", "0.1", "0.2", "0.3", "0.5", "0.7", "1", "1.3", "1.7", "2.2", "2.8", "3.5", "4.3",
    "5.2", "6.3", "7.5", "9", "10.5", "12", "14",
];

/// Runs in the image: for every moment, snapshot, start the suite, kill it,
/// clean up, snapshot again and compare. Prints one verdict line per kill.
const KILL_LOOP: &str = r#"
set -u
for d in $KILL_AT; do
    fr1-snapshot-state > /tmp/before
    cip-iec-fr1-tests --no-lava > /tmp/run.log 2>&1 &
    pid=$!
    sleep "$d"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # Orphaned PTY sessions get SIGHUP when the suite's terminals close.
    sleep 0.3
    if ! cip-iec-fr1-tests --cleanup > /tmp/cleanup.log 2>&1; then
        echo "kill at ${d}s: CLEANUP FAILED"; cat /tmp/cleanup.log; continue
    fi
    fr1-snapshot-state > /tmp/after
    if diff /tmp/before /tmp/after > /tmp/diff; then
        echo "kill at ${d}s: identical ($(grep -c . /tmp/cleanup.log) cleanup line(s))"
    else
        echo "kill at ${d}s: DIFFERENT"; cat /tmp/diff; cat /tmp/cleanup.log
    fi
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
fn killed_at_twenty_moments_then_cleaned_up_leaves_the_image_as_it_was() {
    let out = Command::new(repo_root().join("ci/target-image.sh"))
        .arg("exec")
        .arg("--bin")
        .arg(suite_binary())
        .args([
            "--",
            "env",
            &format!("KILL_AT={}", KILL_AT.join(" ")),
            "sh",
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
    let identical = console
        .lines()
        .filter(|l| l.starts_with("kill at ") && l.contains(": identical"))
        .count();
    println!(
        "SIGKILL then --cleanup: {identical} of {} kills left the image identical",
        KILL_AT.len()
    );
    assert_eq!(identical, KILL_AT.len(), "{console}");
    assert!(console.contains("sigterm: identical"), "{console}");
    assert!(console.contains("sigterm exit code: 143"), "{console}");
}
