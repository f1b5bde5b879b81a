//! The suite as a container's PID 1: `sh -c 'start daemons; exec
//! cip-iec-fr1-tests'`.
//!
//! exec keeps the shell's PID and start time, so the daemons the shell
//! started are the suite's children, and a daemon that forks into the
//! background is re-parented to it (PID 1 of its PID namespace). At its end
//! the suite kills what its test cases left behind: it must tell those
//! from the daemons that ran before it began, and leave the daemons alone.

use fr1_acceptance::{repo_root, suite_binary};
use std::process::Command;

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn as_pid_one_after_exec_the_suite_leaves_the_daemons_before_it_alone() {
    // In a PID namespace of its own, so the shell, and the suite it becomes,
    // is PID 1: `sleep 1000` is a daemon the shell started (its child),
    // `sleep 1001` one that forked into the background (re-parented to PID
    // 1). A line from each, read while the suite still runs, shows whether
    // the suite killed them: when PID 1 exits the kernel ends them anyway.
    let script = r#"
sleep 1000 &
echo "daemon $!"
sh -c 'sleep 1001 & echo "background $!"'
sleep 0.2
exec /usr/bin/cip-iec-fr1-tests TC_CR1.4_1 --exact
"#;
    let output = Command::new(repo_root().join("ci/target-image.sh"))
        .args(["exec", "--bin"])
        .arg(suite_binary())
        .args([
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("ci/target-image.sh exec");
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{console}");
    assert!(
        console.contains("test TC_CR1.4_1 ... ok"),
        "the case did not pass:\n{console}"
    );
    assert!(
        console.contains("daemon ") && console.contains("background "),
        "the daemons did not start:\n{console}"
    );
    assert!(
        !console.contains("left behind by a test case"),
        "the suite killed what ran before it began:\n{console}"
    );
}
