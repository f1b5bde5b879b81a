//! The negative-control matrix: every broken profile under
//! fixtures/profiles must make the test cases it names FAIL, with a message
//! that names the violated requirement; the compliant image (checked in
//! `in_image.rs`) passes them. A check that cannot fail proves nothing.

use fr1_acceptance::{profiles, run_in_image, RunSpec, Status};
use std::time::Instant;

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn every_broken_profile_fails_the_cases_it_targets() {
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut mismatches = Vec::new();
    for (profile, targets) in profiles().expect("profiles") {
        assert!(
            !targets.is_empty(),
            "profile {profile} targets no test case"
        );
        // Run only the targeted cases, each matched exactly.
        let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
        args.push("--exact");
        let run = run_in_image(&RunSpec {
            profile: Some(&profile),
            suite_args: &args,
            ..RunSpec::default()
        })
        .expect("image run");
        for id in &targets {
            let actual = match run.status(id) {
                Some(Status::Failed(msg)) => {
                    let requirement = requirement_of(id);
                    if msg.contains(&requirement) {
                        "FAIL".to_owned()
                    } else {
                        format!("FAIL without naming {requirement}: {msg}")
                    }
                }
                Some(Status::Passed) => "pass".to_owned(),
                Some(Status::Skipped(r)) => format!("skip ({r})"),
                None => "not run".to_owned(),
            };
            if actual != "FAIL" {
                mismatches.push(format!(
                    "{profile} x {id}: expected FAIL, got {actual}\n{}",
                    run.explain()
                ));
            }
            rows.push(format!(
                "{profile:<20} {id:<16} expected FAIL  actual {actual}"
            ));
        }
    }
    println!(
        "negative-control matrix ({:.0} s):\n{}",
        started.elapsed().as_secs_f64(),
        rows.join("\n")
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// `TC_CR1.1-RE1_1` -> `CR1.1 RE1`, `TC_CR1.3_2` -> `CR1.3`.
fn requirement_of(id: &str) -> String {
    let base = id.trim_start_matches("TC_");
    let base = base.rsplit_once('_').map_or(base, |(b, _)| b);
    base.replace("-RE", " RE")
}

#[test]
fn requirement_ids_are_derived_from_test_case_ids() {
    assert_eq!(requirement_of("TC_CR1.1-RE1_1"), "CR1.1 RE1");
    assert_eq!(requirement_of("TC_CR1.3_2"), "CR1.3");
}
