//! Console additions to libtest's own output: the NA requirements with the
//! assessment's reason and the product maker's action, which libtest's
//! one-line "ignored" cannot carry; and the negative controls the cases
//! declare (`--list-controls`).

use harness::{Case, Control};

/// Print the NA requirements among `cases` (nothing if there are none).
pub fn print_not_applicable<'a>(cases: impl IntoIterator<Item = &'a Case>) {
    let mut header = false;
    for case in cases {
        // A case tested when present carries its NA reason in its own
        // skip message, if it skipped at all.
        let Some(na) = case
            .not_applicable
            .as_ref()
            .filter(|_| !case.tested_when_present)
        else {
            continue;
        };
        if !header {
            println!("\nNot applicable to the platform (reported as skipped):");
            header = true;
        }
        println!("  {} — {}", case.id, case.title);
        println!("      why: {}", one_line(na.reason));
        println!("      user action: {}", one_line(na.user_action));
    }
}

/// The texts are wrapped in the source; print them as single lines.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Print one line per negative control of `cases`, for tools (the
/// negative-control matrix, `ci/target-image.sh profiles`) that must not
/// keep a copy of the mapping: `ID<TAB>profile<TAB>NAME` or
/// `ID<TAB>in-test<TAB>REASON`.
pub fn print_controls<'a>(cases: impl IntoIterator<Item = &'a Case>) {
    for case in cases {
        for line in control_lines(case) {
            println!("{line}");
        }
    }
}

fn control_lines(case: &Case) -> Vec<String> {
    case.controls
        .iter()
        .map(|control| match control {
            Control::Profile(name) => format!("{}\tprofile\t{name}", case.id),
            // One line, so a reader can split on tabs and newlines.
            Control::InTest { reason } => format!("{}\tin-test\t{}", case.id, one_line(reason)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(_: &harness::Evidence) -> anyhow::Result<()> {
        Ok(())
    }

    #[test]
    fn each_control_is_one_tab_separated_line() {
        let case = Case::met("TC_X_1", "CRX", "title", "proves", body).fails_under(&[
            Control::Profile("pam-permit"),
            Control::InTest {
                reason: "a tampered\tcertificate\n  is refused",
            },
        ]);
        assert_eq!(
            control_lines(&case),
            [
                "TC_X_1\tprofile\tpam-permit",
                "TC_X_1\tin-test\ta tampered certificate is refused"
            ]
        );
        let undeclared = Case::met("TC_X_2", "CRX", "title", "proves", body);
        assert!(control_lines(&undeclared).is_empty());
    }
}
