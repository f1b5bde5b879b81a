//! The command line outside an image: listing, filters and usage errors
//! must work without touching the system.

use fr1_acceptance::{declared_controls, listed_cases, suite_binary, DeclaredControl};
use harness::Control;
use std::collections::BTreeSet;
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

/// The binary lists the catalog, the one list of IDs (the cases crate),
/// every case in catalog order, and exits 0.
#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn list_names_every_case_of_the_catalog() {
    let catalog: Vec<&str> = cases::catalog().iter().map(|c| c.id).collect();
    assert!(catalog.iter().any(|id| id.starts_with("TC_")));
    assert_eq!(listed_cases().expect("--list"), catalog);
}

/// `--list-controls` prints what the cases declare, one line per control,
/// and selects like a run.
#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn list_controls_prints_the_declared_controls() {
    let expected: Vec<(String, DeclaredControl)> = cases::catalog()
        .iter()
        .flat_map(|c| {
            c.controls.iter().map(|control| {
                let declared = match control {
                    Control::Profile(name) => DeclaredControl::Profile((*name).to_owned()),
                    Control::InTest { reason } => DeclaredControl::InTest(
                        reason.split_whitespace().collect::<Vec<_>>().join(" "),
                    ),
                };
                (c.id.to_owned(), declared)
            })
        })
        .collect();
    assert_eq!(declared_controls().expect("--list-controls"), expected);

    let (code, out, err) = suite(&["--list-controls", "TC_CR1.1_1", "--exact"]);
    assert_eq!(code, Some(0), "{err}");
    // One case only, in its declared order (the case's own list, so a
    // control added to it needs no edit here).
    let one: String = expected
        .iter()
        .filter(|(id, _)| id == "TC_CR1.1_1")
        .map(|(id, control)| match control {
            DeclaredControl::Profile(name) => format!("{id}\tprofile\t{name}\n"),
            DeclaredControl::InTest(reason) => format!("{id}\tin-test\t{reason}\n"),
        })
        .collect();
    assert!(one.contains("\tprofile\tpam-permit\n"), "{one}");
    assert_eq!(out, one);
    let (code, out, err) = suite(&["--list-controls", "TC_CR1.9", "--skip", "TC_CR1.9_4"]);
    assert_eq!(code, Some(0), "{err}");
    let ids: BTreeSet<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([
            "TC_CR1.9_1",
            "TC_CR1.9_2",
            "TC_CR1.9_3",
            "TC_CR1.9_5",
            "TC_CR1.9_6"
        ])
    );
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

/// A destination that cannot be written is no usage error (the arguments
/// were right): its own status, 3, and the message names it. Tried before
/// the run, with a filter that selects nothing so that, were the check
/// missing, the run would still stop before touching the system (with 2).
#[test]
#[ignore = "needs the release build and root: run ci/test.sh"]
fn an_unwritable_destination_exits_3_naming_it_before_the_run() {
    for (option, path) in [
        ("--junit", "/proc/nonexistent/fr1.xml"),
        ("--report", "/proc/nonexistent/fr1.html"),
        ("--evidence-dir", "/proc/nonexistent/evidence"),
    ] {
        let (code, _, err) = suite(&[option, path, "NO_SUCH_TC"]);
        assert_eq!(code, Some(3), "{option} {path}: {err}");
        assert!(err.contains(path), "{option} {path}: {err}");
        assert!(err.contains("nothing was run"), "{option} {path}: {err}");
    }
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

/// `--list | head -1`, as a user pipes a long listing: the suite ends
/// quietly when the reader goes away, no panic on a broken pipe.
#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    for mode in ["--list", "--list-controls", "--help"] {
        let script = format!("\"$0\" {mode} | head -c 1 >/dev/null");
        let out = Command::new("sh")
            .args(["-c", &script])
            .arg(suite_binary())
            .output()
            .expect("run sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{mode} into a closed pipe:\n{stderr}"
        );
    }
}
