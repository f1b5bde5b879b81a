//! The command line outside an image: listing, filters and usage errors
//! must work without touching the system.

use fr1_acceptance::suite_binary;
use std::process::Command;

fn suite(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(suite_binary())
        .args(args)
        .output()
        .expect("run the suite binary (build it with cargo build --release)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listed(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect()
}

#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn list_names_every_foundation_case() {
    let (code, out, _) = suite(&["--list"]);
    assert_eq!(code, Some(0));
    for id in [
        "TC_CR1.1_1",
        "TC_CR1.1_2",
        "TC_CR1.1-RE1_1",
        "TC_CR1.3_1",
        "TC_CR1.3_2",
        "TC_CR1.3_3",
        "TC_CR1.4_1",
        "TC_CR1.5_1",
        "TC_CR1.5_2",
        "TC_CR1.5_3",
        "TC_CR1.7_1",
        "TC_CR1.7-RE1_1",
    ] {
        assert!(
            listed(&out).contains(&id),
            "{id} missing from --list:\n{out}"
        );
    }
}

#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn filters_select_by_id() {
    let (_, out, _) = suite(&["TC_CR1.3", "--list"]);
    assert_eq!(listed(&out), ["TC_CR1.3_1", "TC_CR1.3_2", "TC_CR1.3_3"]);
    let (_, out, _) = suite(&["TC_CR1.1_1", "--exact", "--list"]);
    assert_eq!(listed(&out), ["TC_CR1.1_1"]);
    let (_, out, _) = suite(&["TC_CR1.3", "--skip", "TC_CR1.3_2", "--list"]);
    assert_eq!(listed(&out), ["TC_CR1.3_1", "TC_CR1.3_3"]);
}

#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn bad_input_exits_2_before_touching_the_system() {
    let (code, _, err) = suite(&["--no-such-option"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = suite(&["--junit", "/nonexistent-dir/report.xml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent-dir/report.xml"), "{err}");
    // The report's format comes from its extension: anything else is a
    // usage error naming the choices.
    let (code, _, err) = suite(&["--report", "fr1.pdf", "TC_CR1.1_1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(".html") && err.contains(".md"), "{err}");
    for bad in ["0", "ten", "-1"] {
        let (code, _, err) = suite(&["--time-limit", bad, "TC_CR1.1_1"]);
        assert_eq!(code, Some(2), "--time-limit {bad}: {err}");
        assert!(err.contains("--time-limit needs a whole number"), "{err}");
    }
    let (code, _, err) = suite(&["NO_SUCH_TC"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no test case matches"), "{err}");
}

#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn refuses_to_run_as_an_unprivileged_user() {
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(suite_binary())
        .output()
        .expect("setpriv");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as root"));
}
