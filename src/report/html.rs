//! The assessor's report as one self-contained HTML file: inline CSS, no
//! script, no external reference. A failure summary comes first, then the
//! FR-1 table with each requirement's evidence collapsible under its row,
//! then the target's identity.
//!
//! Markup is written with [`Html`] only: tag and attribute names are
//! compile-time constants, every piece of data goes through [`escape`].

use super::fr1::{self, CaseVerdict, ReportData};
use anyhow::{Context, Result};
use std::path::Path;

/// Escape text for an HTML element body or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // The evidence shows control characters already; a stray
            // carriage return is dropped, any other one (not valid in HTML)
            // marked where it was.
            '\r' => {}
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A small HTML writer: markup from constants, data always escaped.
#[derive(Default)]
pub struct Html {
    out: String,
}

impl Html {
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            self.out.push_str(&escape(value));
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// `<tag attrs>text</tag>`.
    pub fn element(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, &str)],
        text: &str,
    ) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// A line break in the source, for readability of the file itself.
    fn newline(&mut self) -> &mut Self {
        self.out.push('\n');
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

const STYLE: &str = "\
body{font-family:sans-serif;margin:1.5em;color:#111;max-width:110em}\
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin-top:1.5em}\
table{border-collapse:collapse;width:100%}\
th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eee}\
.summary{border:3px solid;padding:.5em 1em;margin:1em 0}\
.summary.fail{border-color:#b00;background:#fee}.summary.pass{border-color:#070;background:#efe}\
tr.fail>td{background:#fee}.v-failed,.v-not-demonstrated{color:#b00;font-weight:bold}\
.v-passed{color:#070}.v-NA,.v-skipped{color:#555}\
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;font-size:.85em;margin:.3em 0}\
details{margin:.2em 0}summary{cursor:pointer}\
";

pub fn render(data: &ReportData) -> String {
    let mut h = Html::default();
    h.out.push_str("<!DOCTYPE html>\n");
    h.open("html", &[("lang", "en")]).newline();
    h.open("head", &[]);
    h.open("meta", &[("charset", "utf-8")]);
    h.element(
        "title",
        &[],
        &format!("IEC 62443-4-2 FR-1 report: {}", data.identity.pretty_name()),
    );
    h.element("style", &[], STYLE);
    h.close("head").newline();
    h.open("body", &[]).newline();
    heading(&mut h, data);
    failure_summary(&mut h, data);
    table(&mut h, data);
    identity(&mut h, data);
    h.close("body").newline().close("html").newline();
    h.finish()
}

pub fn write(path: &Path, data: &ReportData) -> Result<()> {
    std::fs::write(path, render(data)).with_context(|| format!("writing {}", path.display()))
}

fn heading(h: &mut Html, data: &ReportData) {
    h.element("h1", &[], "IEC 62443-4-2 FR-1 test report");
    h.element("p", &[], &data.headline()).newline();
}

/// The first thing on the page: which cases failed and why, in one line
/// each, so a failure is seen without scrolling.
fn failure_summary(h: &mut Html, data: &ReportData) {
    let failures: Vec<_> = data.failures().collect();
    if failures.is_empty() {
        h.open("div", &[("class", "summary pass"), ("id", "summary")]);
        h.element("strong", &[], &data.summary_title());
        h.close("div").newline();
        return;
    }
    h.open("div", &[("class", "summary fail"), ("id", "summary")]);
    h.element("strong", &[], &data.summary_title());
    h.open("ul", &[]);
    for r in failures {
        h.open("li", &[]);
        h.element("a", &[("href", &format!("#{}", r.case.id))], r.case.id);
        h.text(&format!(
            " ({}, {}): {}",
            r.case.requirement,
            CaseVerdict::of(r).word(),
            fr1::one_line_reason(r)
        ));
        h.close("li").newline();
    }
    h.close("ul").close("div").newline();
}

/// The FR-1 table in the assessment's shape; under each requirement's row
/// a full-width row with its cases' evidence, collapsed.
fn table(h: &mut Html, data: &ReportData) {
    h.element("h2", &[], "FR-1 requirements");
    h.open("table", &[("id", "fr1")])
        .open("thead", &[])
        .open("tr", &[]);
    for title in [
        "Requirement",
        "SL-2 status",
        "Test cases (verdict, time)",
        "NA reason",
        "User action",
    ] {
        h.element("th", &[], title);
    }
    h.close("tr").close("thead").newline().open("tbody", &[]);
    for row in fr1::requirements(data.records) {
        requirement_row(h, &row);
        evidence_row(h, &row);
    }
    h.close("tbody").close("table").newline();
}

/// A requirement's row: its status, its cases, the NA reason and the user
/// action; marked when one of its cases failed.
fn requirement_row(h: &mut Html, row: &fr1::Requirement) {
    let marked: &[(&'static str, &str)] = if row.failed() {
        &[("class", "fail")]
    } else {
        &[]
    };
    h.open("tr", marked);
    h.open("td", &[]).element("strong", &[], row.id).text(" ");
    h.text(row.title).close("td");
    h.element("td", &[], row.status_text());
    h.open("td", &[]);
    for (i, r) in row.cases.iter().enumerate() {
        if i > 0 {
            h.open("br", &[]);
        }
        h.element("a", &[("href", &format!("#{}", r.case.id))], r.case.id);
        h.text(": ");
        verdict_span(h, CaseVerdict::of(r));
        h.text(&format!(", {:.1} s", r.duration.as_secs_f64()));
    }
    h.close("td");
    let reason = row
        .not_applicable
        .map(|na| fr1::one_line(na.reason))
        .unwrap_or_default();
    let action = fr1::one_line(row.user_action());
    h.element("td", &[], &reason);
    h.element("td", &[], &action);
    h.close("tr").newline();
}

/// The full-width row under a requirement with each of its cases'
/// evidence in a `<details>` the failure summary links to.
fn evidence_row(h: &mut Html, row: &fr1::Requirement) {
    h.open("tr", &[("class", "evidence")])
        .open("td", &[("colspan", "5")]);
    for r in &row.cases {
        let verdict = CaseVerdict::of(r);
        // A failure's evidence is open: it is what the reader came for.
        if verdict.is_failure() {
            h.open("details", &[("id", r.case.id), ("open", "open")]);
        } else {
            h.open("details", &[("id", r.case.id)]);
        }
        h.open("summary", &[])
            .text(&format!("Evidence of {}: ", r.case.id));
        verdict_span(h, verdict);
        if verdict != CaseVerdict::Passed {
            h.text(&format!(" ({})", fr1::one_line_reason(r)));
        }
        h.close("summary");
        if !r.case.proves.is_empty() {
            h.element(
                "p",
                &[],
                &format!("Proves: {}", fr1::one_line(r.case.proves)),
            );
        }
        h.element("pre", &[], &r.evidence);
        h.close("details").newline();
    }
    h.close("td").close("tr").newline();
}

/// A verdict word in the colour of its class (`v-passed`, `v-failed`, …).
fn verdict_span(h: &mut Html, verdict: CaseVerdict) {
    h.element(
        "span",
        &[("class", &format!("v-{}", verdict.word().replace(' ', "-")))],
        verdict.word(),
    );
}

fn identity(h: &mut Html, data: &ReportData) {
    let id = data.identity;
    h.element("h2", &[], "Target and run");
    key_value_table(h, "identity", ("Fact", "Value"), &data.facts());
    h.element("h2", &[], "Packages the evidence depends on");
    key_value_table(h, "packages", ("Package", "Version"), &id.packages);
    h.element("h2", &[], "Configuration files read (sha256)");
    key_value_table(h, "config", ("File", "sha256"), &id.config_sha256);
}

fn key_value_table(
    h: &mut Html,
    id: &'static str,
    titles: (&str, &str),
    rows: &[(String, String)],
) {
    h.open("table", &[("id", id)]).open("tr", &[]);
    h.element("th", &[], titles.0).element("th", &[], titles.1);
    h.close("tr").newline();
    for (k, v) in rows {
        h.open("tr", &[]).element("td", &[], k).open("td", &[]);
        h.element("code", &[], v).close("td").close("tr").newline();
    }
    h.close("table").newline();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fr1::tests::render_sample;

    #[test]
    fn escaping_covers_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1b}[0m\r\n"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{FFFD}[0m\n"
        );
        let mut h = Html::default();
        h.element("td", &[("title", "\"><script>")], "</td>");
        assert_eq!(
            h.finish(),
            "<td title=\"&quot;&gt;&lt;script&gt;\">&lt;/td&gt;</td>"
        );
    }

    #[test]
    fn the_failure_summary_comes_before_any_evidence_and_nothing_is_external() {
        let page = render_sample(render);
        let summary = page.find("id=\"summary\"").unwrap();
        let failed = page.find("TC_CR1.1_2").unwrap();
        let details = page.find("<details").unwrap();
        assert!(summary < failed && failed < details, "{page}");
        assert!(page.contains("--report &lt;x&gt;.html"));
        assert!(page.contains("TC_CR1.1_1 evidence &lt;b&gt;&amp;"));
        assert!(!page.contains("http:") && !page.contains("https:"));
        assert!(!page.contains("<script"));
    }
}
