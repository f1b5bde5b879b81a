//! Console additions to libtest's own output: the NA requirements with the
//! assessment's reason and the product maker's action, which libtest's
//! one-line "ignored" cannot carry.

use harness::Case;

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
