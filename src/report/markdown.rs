//! The assessor's report as GitHub/GitLab-flavoured Markdown: the failure
//! summary, the FR-1 table, the target's identity, then each case's
//! evidence in a fenced block inside `<details>`.

use super::fr1::{self, CaseVerdict, ReportData};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// Text for one table cell: `|` escaped, line breaks and runs of blanks
/// folded, characters Markdown would read as markup escaped.
pub fn cell(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    inline(&folded).replace('|', "\\|")
}

/// Inline text outside a table: markup characters escaped, HTML included
/// (GitHub and GitLab pass raw HTML through). `_` stays: inside words (the
/// case IDs) it is no emphasis, and IDs stay searchable in the source.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

/// A fence longer than any backtick run in `text`, so the block cannot end
/// early.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// One table row from its cells.
fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// The whole report, in the order an assessor reads it.
pub fn render(data: &ReportData) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# IEC 62443-4-2 FR-1 test report\n");
    let _ = writeln!(md, "{}\n", inline(&data.headline()));
    failure_summary(&mut md, data);
    requirement_table(&mut md, data);
    target_and_run(&mut md, data);
    evidence(&mut md, data);
    md
}

/// The first thing in the report: which cases failed and why, one line
/// each.
fn failure_summary(md: &mut String, data: &ReportData) {
    let _ = writeln!(md, "**{}**\n", inline(&data.summary_title()));
    for r in data.failures() {
        let _ = writeln!(
            md,
            "- **{}** ({}, {}): {}",
            inline(r.case.id),
            inline(r.case.requirement),
            CaseVerdict::of(r).word(),
            inline(&fr1::one_line_reason(r))
        );
    }
    md.push('\n');
}

/// One row per FR-1 requirement with its status and its test cases.
fn requirement_table(md: &mut String, data: &ReportData) {
    md.push_str("## FR-1 requirements\n\n");
    md.push_str(&row(&[
        "Requirement".into(),
        "SL-2 status".into(),
        "Test cases (verdict, time)".into(),
        "NA reason".into(),
        "User action".into(),
    ]));
    md.push_str("|---|---|---|---|---|\n");
    for req in fr1::requirements(data.records) {
        let reason = req
            .not_applicable
            .map(|na| cell(na.reason))
            .unwrap_or_default();
        let action = cell(req.user_action());
        md.push_str(&row(&[
            format!("**{}** {}", cell(req.id), cell(req.title)),
            req.status_text().into(),
            case_verdicts(&req),
            reason,
            action,
        ]));
    }
}

/// A requirement's test cases with verdict and time, one per line of the
/// cell; a failure in capitals so it stands out in the table.
fn case_verdicts(req: &fr1::Requirement) -> String {
    req.cases
        .iter()
        .map(|r| {
            let verdict = CaseVerdict::of(r).word();
            let verdict = if CaseVerdict::of(r).is_failure() {
                format!("**{}**", verdict.to_uppercase())
            } else {
                verdict.to_owned()
            };
            format!(
                "{}: {verdict}, {:.1} s",
                cell(r.case.id),
                r.duration.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// The target's identity and the run's facts.
fn target_and_run(md: &mut String, data: &ReportData) {
    md.push_str("\n## Target and run\n\n");
    let id = data.identity;
    key_value_table(md, ("Fact", "Value"), &data.facts());
    md.push_str("\n### Packages the evidence depends on\n\n");
    key_value_table(md, ("Package", "Version"), &id.packages);
    md.push_str("\n### Configuration files read (sha256)\n\n");
    key_value_table(md, ("File", "sha256"), &id.config_sha256);
}

/// Each case's evidence log in a fenced block, folded in `<details>`.
fn evidence(md: &mut String, data: &ReportData) {
    md.push_str("\n## Evidence\n");
    for r in data.records {
        let verdict = CaseVerdict::of(r);
        let _ = write!(
            md,
            "\n<details><summary>{} ({}): {}</summary>\n\n",
            inline(r.case.id),
            inline(r.case.requirement),
            verdict.word()
        );
        if verdict != CaseVerdict::Passed {
            let _ = writeln!(md, "{}\n", inline(&fr1::one_line_reason(r)));
        }
        let fence = fence_for(&r.evidence);
        let _ = writeln!(
            md,
            "{fence}text\n{}\n{fence}\n\n</details>",
            r.evidence.trim_end()
        );
    }
}

fn key_value_table(md: &mut String, titles: (&str, &str), rows: &[(String, String)]) {
    md.push_str(&row(&[titles.0.into(), titles.1.into()]));
    md.push_str("|---|---|\n");
    for (k, v) in rows {
        md.push_str(&row(&[cell(k), cell(v)]));
    }
}

pub fn write(path: &Path, data: &ReportData) -> Result<()> {
    std::fs::write(path, render(data)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fr1::tests::render_sample;

    #[test]
    fn cells_escape_pipes_and_fold_lines() {
        assert_eq!(cell("a | b\n  c"), "a \\| b c");
        assert_eq!(cell("<b>*x*</b>"), "&lt;b&gt;\\*x\\*&lt;/b&gt;");
    }

    #[test]
    fn a_fence_is_longer_than_any_backtick_run_inside() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }

    #[test]
    fn the_table_has_a_header_a_separator_and_one_row_per_requirement() {
        let md = render_sample(render);
        let table: Vec<&str> = md
            .lines()
            .skip_while(|l| !l.starts_with("| Requirement"))
            .take_while(|l| l.starts_with('|'))
            .collect();
        assert_eq!(table[1], "|---|---|---|---|---|");
        // CR1.1, CR1.1 RE1, CR1.2, CR1.6, NDR1.6, CR1.11
        assert_eq!(table.len(), 2 + 6, "{md}");
        for line in &table {
            // Five cells each: six unescaped pipes.
            let pipes = line.matches('|').count() - line.matches("\\|").count();
            assert_eq!(pipes, 6, "{line}");
        }
        assert!(table[2].contains("**FAILED**"), "{}", table[2]);
        assert!(md.find("TC_CR1.1_2").unwrap() < md.find("| Requirement").unwrap());
    }
}
