//! The FR-1 test cases, one file per catalog row (doc/catalog.md, whose
//! table is generated from these cases' data).
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

    const BEGIN: &str = "<!-- BEGIN generated:";
    const END: &str = "<!-- END generated -->";

    /// A table cell: no line break, no `|` that would end it.
    fn cell(text: &str) -> String {
        text.replace('|', "\\|").replace('\n', " ")
    }

    /// The catalog's table of cases, as doc/catalog.md carries it.
    fn catalog_table() -> String {
        let mut out = String::from(
            "| ID | Requirement | Verdict | Must prove | Negative controls, or why NA and what the product maker does |\n|---|---|---|---|---|\n",
        );
        for c in catalog() {
            let verdict = match c.verdict {
                harness::Verdict::Met => "Met",
                harness::Verdict::NotApplicable => "NA",
            };
            let controls: Vec<String> = c
                .controls
                .iter()
                .map(|control| match control {
                    Control::Profile(name) => format!("profile `{name}`"),
                    Control::InTest { reason } => format!("in the test: {reason}"),
                })
                .collect();
            let last = match (&c.not_applicable, controls.is_empty()) {
                (Some(na), true) => format!("{} (user action: {})", na.reason, na.user_action),
                (Some(na), false) => format!(
                    "{} (user action: {}); when present, tested: {}",
                    na.reason,
                    na.user_action,
                    controls.join("; ")
                ),
                (None, _) => controls.join("; "),
            };
            let proves = if c.proves.is_empty() { "—" } else { c.proves };
            out.push_str(&format!(
                "| {} | {} {} | {verdict} | {} | {} |\n",
                c.id,
                c.requirement,
                cell(c.title),
                cell(proves),
                cell(&last)
            ));
        }
        out
    }

    /// doc/catalog.md's table is the cases' own data: it cannot drift from
    /// what the binary runs. FR1_UPDATE_DOCS=1 writes it.
    #[test]
    fn the_catalog_document_lists_the_cases_as_they_are() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc/catalog.md");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let start = text.find(BEGIN).expect("the BEGIN generated marker");
        let start = start + text[start..].find('\n').expect("a line after the marker") + 1;
        let end = text.find(END).expect("the END generated marker");
        let want = catalog_table();
        if text[start..end] == want {
            return;
        }
        if std::env::var_os("FR1_UPDATE_DOCS").is_some() {
            let updated = format!("{}{want}{}", &text[..start], &text[end..]);
            std::fs::write(&path, updated)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            return;
        }
        panic!(
            "{} does not list the cases as they are; FR1_UPDATE_DOCS=1 cargo test -p fr1-cases writes it",
            path.display()
        );
    }

    /// The README's table has one row per Met case, with its requirement
    /// and exactly its negative-control profiles.
    #[test]
    fn the_readme_table_names_each_case_and_its_controls() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        for c in catalog()
            .into_iter()
            .filter(|c| c.verdict == harness::Verdict::Met)
        {
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("| {} | ", c.id)))
                .collect();
            assert_eq!(rows.len(), 1, "README: {} rows for {}", rows.len(), c.id);
            let cells: Vec<&str> = rows[0].split(" | ").collect();
            assert_eq!(
                cells.get(1).copied(),
                Some(c.requirement),
                "README row of {}",
                c.id
            );
            let last = cells.last().copied().unwrap_or_default();
            // The backticked words that are profiles (an in-test control's
            // text may quote a command).
            let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/profiles");
            let named: BTreeSet<&str> = last
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|w| profiles.join(w).join("mutate.sh").is_file())
                .collect();
            let declared: BTreeSet<&str> = c
                .controls
                .iter()
                .filter_map(|control| match control {
                    Control::Profile(name) => Some(*name),
                    Control::InTest { .. } => None,
                })
                .collect();
            assert_eq!(
                named, declared,
                "README: the profiles in the row of {}",
                c.id
            );
            if c.controls
                .iter()
                .any(|x| matches!(x, Control::InTest { .. }))
            {
                assert!(
                    last.contains("in-test"),
                    "README: {} has an in-test control",
                    c.id
                );
            }
        }
    }
}
