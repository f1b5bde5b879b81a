//! The negative-control matrix: every broken profile under
//! fixtures/profiles must make the test cases it names FAIL, with a message
//! that names the violated requirement, while the same test cases PASS on
//! the compliant image, and the suite must leave each broken image as it
//! found it (it must not repair it). A check that cannot fail proves
//! nothing; one that flips between the two images is trusted.
//!
//! Each test case declares its controls (`Case::fails_under`); the map
//! profile -> test cases comes from the suite binary (`--list-controls`).
//! Coverage rule: every Met test case (ID `TC_…`) declares a control, a
//! profile or an in-test control with its reason; every profile a case
//! names exists under fixtures/profiles, and every profile there is named.

use fr1_acceptance::{
    declared_controls, listed_test_cases, profiles, record_timing, repo_root, run_in_image,
    snapshot_diff, DeclaredControl, ImageRun, RunSpec, Status,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const SNAPSHOT_BEFORE: &str = "fr1-snapshot-state > /fr1-out/before\n";
const SNAPSHOT_AFTER: &str = "fr1-snapshot-state > /fr1-out/after\n";

#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn every_broken_profile_fails_the_cases_it_targets_and_compliant_passes_them() {
    let started = Instant::now();
    let profiles = profiles().expect("profiles");

    let targeted: BTreeSet<&str> = profiles.values().flatten().map(String::as_str).collect();
    let mut compliant_args: Vec<&str> = targeted.iter().copied().collect();
    compliant_args.push("--exact");
    let compliant_started = Instant::now();
    let compliant = run_in_image(&RunSpec {
        suite_args: &compliant_args,
        ..RunSpec::default()
    })
    .expect("image run");
    record_timing(
        "acceptance: matrix compliant",
        compliant_started.elapsed().as_secs_f64(),
    );
    let mut outcome = judged("compliant", &compliant, targeted.iter().copied(), "pass");

    // The broken images are independent (each its own overlay and
    // namespaces) and their runs mostly wait on PAM delays: CI runs a few
    // at once (FR1_MATRIX_JOBS); the outcome of each is the same.
    let queue: Vec<(&String, &Vec<String>)> = profiles.iter().collect();
    let next = AtomicUsize::new(0);
    let jobs = matrix_jobs().min(queue.len()).max(1);
    let mut outcomes: Vec<(usize, ProfileOutcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((profile, targets)) = queue.get(i) else {
                            break done;
                        };
                        done.push((i, check_profile(profile, targets)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a matrix worker panicked"))
            .collect()
    });
    outcomes.sort_by_key(|(i, _)| *i);
    for (_, o) in outcomes {
        outcome.rows.extend(o.rows);
        outcome.mismatches.extend(o.mismatches);
    }
    println!(
        "negative-control matrix ({:.0} s, {jobs} profile(s) at a time):\n{}",
        started.elapsed().as_secs_f64(),
        outcome.rows.join("\n")
    );
    assert!(
        outcome.mismatches.is_empty(),
        "{}",
        outcome.mismatches.join("\n\n")
    );
}

/// What one image of the matrix showed: a row per test case, and what was
/// not as expected.
#[derive(Default)]
struct ProfileOutcome {
    rows: Vec<String>,
    mismatches: Vec<String>,
}

/// The test cases a broken profile targets, run in that image: each must
/// FAIL naming its requirement, and the image must be left as found.
fn check_profile(profile: &str, targets: &[String]) -> ProfileOutcome {
    let started = Instant::now();
    let mut args: Vec<&str> = targets.iter().map(String::as_str).collect();
    args.push("--exact");
    let run = run_in_image(&RunSpec {
        profile: Some(profile),
        setup: Some(SNAPSHOT_BEFORE),
        after: Some(SNAPSHOT_AFTER),
        suite_args: &args,
        ..RunSpec::default()
    })
    .expect("image run");
    let mut outcome = judged(profile, &run, targets.iter().map(String::as_str), "FAIL");
    let before = std::fs::read_to_string(run.out_file("before")).unwrap_or_default();
    let after = std::fs::read_to_string(run.out_file("after")).unwrap_or_default();
    let diff = snapshot_diff(&before, &after);
    if before.is_empty() || !diff.is_empty() {
        outcome.mismatches.push(format!(
            "{profile}: the suite changed the broken image (it must neither repair nor leave anything):\n{}",
            diff.join("\n")
        ));
    }
    record_timing(
        &format!("acceptance: matrix {profile}"),
        started.elapsed().as_secs_f64(),
    );
    outcome
}

/// The rows of one image's run: each of `ids` must have ended as
/// `expected` ("pass" or "FAIL", see [`describe`]).
fn judged<'a>(
    image: &str,
    run: &ImageRun,
    ids: impl Iterator<Item = &'a str>,
    expected: &str,
) -> ProfileOutcome {
    let mut outcome = ProfileOutcome::default();
    for id in ids {
        let actual = describe(run.status(id), id);
        if actual != expected {
            outcome.mismatches.push(format!(
                "{image} x {id}: expected {expected}, got {actual}\n{}",
                run.explain()
            ));
        }
        outcome.rows.push(format!(
            "{image:<22} {id:<16} expected {expected:<4}  actual {actual}"
        ));
    }
    outcome
}

/// How many broken images run at once: FR1_MATRIX_JOBS, default 1.
fn matrix_jobs() -> usize {
    std::env::var("FR1_MATRIX_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

fn describe(status: Option<&Status>, id: &str) -> String {
    match status {
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
    }
}

#[test]
#[ignore = "needs the release build: run ci/test.sh"]
fn every_met_test_case_has_a_negative_control() {
    let met = listed_test_cases().expect("--list");
    let controls = declared_controls().expect("--list-controls");
    let mut covered = BTreeSet::new();
    let mut named = BTreeSet::new();
    let mut problems = Vec::new();
    for (id, control) in &controls {
        covered.insert(id.as_str());
        match control {
            DeclaredControl::Profile(name) => {
                if !repo_root()
                    .join("fixtures/profiles")
                    .join(name)
                    .join("mutate.sh")
                    .is_file()
                {
                    problems.push(format!(
                        "{id} names profile {name}, which has no fixtures/profiles/{name}/mutate.sh"
                    ));
                }
                named.insert(name.clone());
            }
            DeclaredControl::InTest(reason) if reason.trim().is_empty() => {
                problems.push(format!("{id}: an in-test control without a reason"));
            }
            DeclaredControl::InTest(_) => {}
        }
    }
    for id in met.iter().filter(|id| !covered.contains(id.as_str())) {
        problems.push(format!(
            "{id} declares no negative control (Case::fails_under: a profile under fixtures/profiles, or an in-test control with its reason)"
        ));
    }
    let dir = repo_root().join("fixtures/profiles");
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !named.contains(&name) {
            problems.push(format!(
                "profile {name} is the negative control of no test case"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
