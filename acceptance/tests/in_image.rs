//! The suite in a disposable CIP-security-like image (ci/target-image.sh).
//!
//! Foundation acceptance: the compliant image passes and is left exactly as
//! it was (a pre-existing `user1` included), and the name filter selects.
//! The negative-control matrix lives in `negative_controls.rs`.

use fr1_acceptance::{run_in_image, snapshot_diff, RunSpec, Status};

const FOUNDATION: &[&str] = &[
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
    "TC_CR1.8_1",
    "TC_CR1.9_1",
    "TC_CR1.9_2",
    "TC_CR1.9_3",
    "TC_CR1.9_4",
    "TC_CR1.9_5",
    "TC_CR1.9_6",
];

/// A real account the suite must not touch, and a snapshot of the state the
/// suite must leave as it found it.
const SETUP: &str = "set -e
useradd --create-home --shell /bin/sh user1
echo 'user1:Pre-existing1!Account' | chpasswd
fr1-snapshot-state > /fr1-out/before
";
const AFTER: &str = "set -e
fr1-snapshot-state > /fr1-out/after
";

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn compliant_bookworm_image_passes_and_is_left_as_found() {
    compliant_image_passes_and_is_left_as_found("bookworm");
}

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn compliant_trixie_image_passes_and_is_left_as_found() {
    compliant_image_passes_and_is_left_as_found("trixie");
}

/// The whole suite on a compliant image of `suite`: every foundation case
/// passes (and nothing fails), each has its evidence, and the image is
/// exactly as before, a pre-existing `user1` included.
fn compliant_image_passes_and_is_left_as_found(suite: &str) {
    let run = run_in_image(&RunSpec {
        suite: Some(suite),
        setup: Some(SETUP),
        after: Some(AFTER),
        ..RunSpec::default()
    })
    .expect("image run");
    for id in FOUNDATION {
        assert_eq!(
            run.status(id),
            Some(&Status::Passed),
            "{id}\n{}",
            run.explain()
        );
    }
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());

    for id in FOUNDATION {
        let log = std::fs::read_to_string(run.out_file(&format!("evidence/{id}.log")))
            .unwrap_or_else(|e| panic!("no evidence for {id}: {e}"));
        assert!(
            log.contains("VERDICT: PASS"),
            "{id} evidence has no verdict:\n{log}"
        );
        assert!(!log.contains("Pre-existing1!Account"));
    }

    let before = std::fs::read_to_string(run.out_file("before")).expect("before snapshot");
    let after = std::fs::read_to_string(run.out_file("after")).expect("after snapshot");
    assert!(
        before.contains("user1"),
        "the snapshot does not cover accounts:\n{before}"
    );
    let diff = snapshot_diff(&before, &after);
    assert!(
        diff.is_empty(),
        "the run changed the system:\n{}",
        diff.join("\n")
    );
}

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn a_name_filter_runs_only_the_matching_cases() {
    let run = run_in_image(&RunSpec {
        suite_args: &["TC_CR1.3"],
        ..RunSpec::default()
    })
    .expect("image run");
    let ids: Vec<&str> = run.results.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["TC_CR1.3_1", "TC_CR1.3_2", "TC_CR1.3_3"],
        "{}",
        run.explain()
    );
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());
}
