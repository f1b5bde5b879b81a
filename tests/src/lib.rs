//! The FR-1 test cases, one file per catalog row (../shared/tc-catalog.md).
//!
//! Each file starts with what it proves and the negative control under
//! which it must fail; its body is the flow and the assertions, nothing
//! else. System plumbing lives in the `harness` crate.

use harness::Case;

mod not_applicable;
mod tc_cr1_10_1;
mod tc_cr1_11_1;
mod tc_cr1_11_2;
mod tc_cr1_11_3;
mod tc_cr1_1_1;
mod tc_cr1_1_2;
mod tc_cr1_1_re1_1;
mod tc_cr1_1_re2_1;
mod tc_cr1_3_1;
mod tc_cr1_3_2;
mod tc_cr1_3_3;
mod tc_cr1_4_1;
mod tc_cr1_5_1;
mod tc_cr1_5_2;
mod tc_cr1_5_3;
mod tc_cr1_5_4;
mod tc_cr1_7_1;
mod tc_cr1_7_re1_1;
mod tc_cr1_8_1;
mod tc_cr1_9_1;
mod tc_cr1_9_2;
mod tc_cr1_9_3;
mod tc_cr1_9_4;
mod tc_cr1_9_5;
mod tc_cr1_9_6;

/// Every catalog row: the Met test cases, then the NA requirements.
pub fn catalog() -> Vec<Case> {
    let mut cases = vec![
        tc_cr1_1_1::CASE,
        tc_cr1_1_2::CASE,
        tc_cr1_1_re1_1::CASE,
        tc_cr1_1_re2_1::CASE,
        tc_cr1_3_1::CASE,
        tc_cr1_3_2::CASE,
        tc_cr1_3_3::CASE,
        tc_cr1_4_1::CASE,
        tc_cr1_5_1::CASE,
        tc_cr1_5_2::CASE,
        tc_cr1_5_3::CASE,
        tc_cr1_5_4::CASE,
        tc_cr1_7_1::CASE,
        tc_cr1_7_re1_1::CASE,
        tc_cr1_8_1::CASE,
        tc_cr1_9_1::CASE,
        tc_cr1_9_2::CASE,
        tc_cr1_9_3::CASE,
        tc_cr1_9_4::CASE,
        tc_cr1_9_5::CASE,
        tc_cr1_9_6::CASE,
        tc_cr1_10_1::CASE,
        tc_cr1_11_1::CASE,
        tc_cr1_11_2::CASE,
        tc_cr1_11_3::CASE,
    ];
    cases.extend(not_applicable::CASES);
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::Control;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn ids_are_unique_and_met_cases_have_bodies() {
        let cases = catalog();
        let ids: BTreeSet<_> = cases.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), cases.len(), "duplicate test-case ID");
        for c in &cases {
            match c.verdict {
                // Met test cases are named TC_…: the negative-control
                // meta-test finds them by that prefix.
                harness::Verdict::Met => {
                    assert!(c.body.is_some() && !c.proves.is_empty(), "{}", c.id);
                    assert!(c.id.starts_with("TC_"), "{}", c.id);
                }
                harness::Verdict::NotApplicable => {
                    assert!(c.not_applicable.is_some(), "{}", c.id);
                    assert!(!c.tested_when_present || c.body.is_some(), "{}", c.id);
                }
            }
        }
    }

    /// The coverage rule, checked without the binary: a check that cannot
    /// fail proves nothing, so every Met case names a control under which it
    /// fails; a profile it names must exist (a typo would drop the case from
    /// the matrix), and a profile no case names would be applied for nothing.
    #[test]
    fn every_met_case_declares_negative_controls_that_exist() {
        let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/profiles");
        let mut named = BTreeSet::new();
        for c in catalog() {
            if c.verdict == harness::Verdict::Met {
                assert!(
                    !c.controls.is_empty(),
                    "{} declares no negative control",
                    c.id
                );
            }
            for control in c.controls {
                match control {
                    Control::Profile(name) => {
                        let script = profiles.join(name).join("mutate.sh");
                        assert!(script.is_file(), "{}: no {}", c.id, script.display());
                        named.insert(name.to_string());
                    }
                    Control::InTest { reason } => {
                        assert!(
                            !reason.trim().is_empty(),
                            "{}: in-test control without a reason",
                            c.id
                        );
                    }
                }
            }
        }
        let entries = std::fs::read_dir(&profiles)
            .unwrap_or_else(|e| panic!("reading {}: {e}", profiles.display()));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("mutate.sh").is_file() {
                assert!(
                    named.contains(&name),
                    "profile {name} is the negative control of no case"
                );
            }
        }
    }
}
