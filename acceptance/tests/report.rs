//! The assessor's report (`--report FILE.html`, `--report FILE.md`) from a
//! compliant run and from a broken-profile run (pam-permit: TC_CR1.1_1
//! gets a shell with a wrong password).
//!
//! Checks, per run: the HTML is valid (Debian's `tidy -errors -quiet`
//! reports nothing), refers to nothing outside itself (every `href` is a
//! fragment, no `src=`, no `url(` in the style), and headless Chromium
//! renders it to a 1280x900 screenshot, the first screen, saved with both
//! reports under target/report/ (the CI artefacts). The failed case is in
//! the first screen: a screenshot cannot be read back here, so this is
//! checked on the markup: the failure summary is the first block after the
//! heading, before the table and any evidence, and names the failed case.
//! The Markdown has a table (header, `|---|` separator, one row per
//! requirement, the same number of cells in each) that python3-markdown's
//! tables extension renders as an HTML table.

use fr1_acceptance::{repo_root, run_in_image, ImageRun, RunSpec, Status};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Quick cases of three requirements: two Met (CR1.1, CR1.4) and an NA one.
const CASES: &[&str] = &["TC_CR1.1_1", "TC_CR1.4_1", "CR1.2", "--exact"];
const REQUIREMENTS: usize = 3;
const BROKEN_PROFILE: &str = "pam-permit";
const FAILED_CASE: &str = "TC_CR1.1_1";

#[test]
#[ignore = "needs root, the disposable image, tidy, chromium and python3-markdown: run ci/test.sh"]
fn reports_of_a_compliant_and_a_broken_run_are_valid_self_contained_and_render() {
    let started = Instant::now();
    let artefacts = repo_root().join("target/report");
    std::fs::create_dir_all(&artefacts).expect("target/report");

    let compliant = run_with_reports(None);
    assert_eq!(
        compliant.status(FAILED_CASE),
        Some(&Status::Passed),
        "{}",
        compliant.explain()
    );
    let broken = run_with_reports(Some(BROKEN_PROFILE));
    assert!(
        matches!(broken.status(FAILED_CASE), Some(Status::Failed(_))),
        "{FAILED_CASE} did not fail on {BROKEN_PROFILE}:\n{}",
        broken.explain()
    );

    for (name, run, failed) in [
        ("compliant", &compliant, None),
        (BROKEN_PROFILE, &broken, Some(FAILED_CASE)),
    ] {
        let html_path = keep(run, "report.html", &artefacts, &format!("{name}.html"));
        let md_path = keep(run, "report.md", &artefacts, &format!("{name}.md"));
        let html = std::fs::read_to_string(&html_path).expect("HTML report");
        let md = std::fs::read_to_string(&md_path).expect("Markdown report");

        tidy_finds_no_problem(&html_path);
        assert_eq!(external_references(&html), Vec::<String>::new(), "{name}");
        failure_summary_comes_first(&html, failed);
        let shot = artefacts.join(format!("{name}.png"));
        let render_time = screenshot(&html_path, &shot);
        markdown_table_has_a_row_per_requirement(&md, REQUIREMENTS);
        markdown_renders_a_table(&md_path);
        println!(
            "{name}: report.html and report.md valid; screenshot {} ({:.1} s)",
            shot.display(),
            render_time
        );
    }
    println!(
        "report acceptance wall time: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A result that cannot be written after the run (here the JUnit report
/// into /dev/full, which opens but takes no byte, as a full disk would) is
/// said with its path, does not cost the other results, and gives the run
/// status 3, not the verdict's 0 and not the usage error's 2. The NA case
/// runs nothing, so the run takes seconds.
#[test]
#[ignore = "needs root and the disposable image: run ci/test.sh"]
fn a_result_that_cannot_be_written_after_the_run_exits_3_and_the_others_are_written() {
    let run = run_in_image(&RunSpec {
        suite_args: &[
            "--junit",
            "/dev/full",
            "--report",
            "/fr1-out/report.md",
            "CR1.2",
            "--exact",
        ],
        ..RunSpec::default()
    })
    .expect("image run");
    assert_eq!(run.exit_code, Some(3), "{}", run.explain());
    assert!(
        run.console.contains("/dev/full") && run.console.contains("not all recorded"),
        "{}",
        run.explain()
    );
    for written in ["report.md", "evidence/CR1.2.log", "evidence/index.txt"] {
        assert!(
            run.out_file(written).is_file(),
            "{written} missing:\n{}",
            run.explain()
        );
    }
}

fn run_with_reports(profile: Option<&str>) -> ImageRun {
    let mut args = vec![
        "--report",
        "/fr1-out/report.html",
        "--report",
        "/fr1-out/report.md",
    ];
    args.extend_from_slice(CASES);
    run_in_image(&RunSpec {
        profile,
        suite_args: &args,
        ..RunSpec::default()
    })
    .expect("image run")
}

/// Copy a report out of the run's temporary directory into the artefacts.
fn keep(run: &ImageRun, file: &str, artefacts: &Path, name: &str) -> PathBuf {
    let kept = artefacts.join(name);
    std::fs::copy(run.out_file(file), &kept)
        .unwrap_or_else(|e| panic!("no {file} written ({e}):\n{}", run.explain()));
    kept
}

fn tidy_finds_no_problem(path: &Path) {
    let out = Command::new("tidy")
        .args(["-errors", "-quiet"])
        .arg(path)
        .output()
        .expect("tidy (Debian package tidy, ci/install-deps.sh)");
    // tidy exits 1 on warnings and 2 on errors; -errors prints only errors.
    assert!(
        out.status.success(),
        "tidy finds problems in {} ({}):\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every place in the markup that could load or link something outside
/// the file. Data is escaped, so a `"` here belongs to markup.
fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in html.match_indices("href=\"") {
        let value = &html[at + 6..];
        if !value.starts_with('#') {
            found.push(html[at..].chars().take(60).collect());
        }
    }
    for marker in [" src=\"", "<link", "<script", "@import"] {
        if html.contains(marker) {
            found.push(marker.to_owned());
        }
    }
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map_or("", |(style, _)| style);
    if style.contains("url(") {
        found.push("url( in the style".to_owned());
    }
    found
}

/// The summary is the first block after the heading: before the FR-1
/// table and every evidence block; it names the failed case (or says
/// there was no failure).
fn failure_summary_comes_first(html: &str, failed: Option<&str>) {
    let summary = html.find("id=\"summary\"").expect("no failure summary");
    let table = html.find("<table").expect("no table");
    let details = html.find("<details").expect("no evidence");
    assert!(
        summary < table && summary < details,
        "the summary is not first"
    );
    let summary_text = &html[summary..table];
    match failed {
        Some(id) => {
            assert!(summary_text.contains("FAILED"), "{summary_text}");
            assert!(summary_text.contains(id), "{summary_text}");
        }
        None => assert!(summary_text.contains("No failure"), "{summary_text}"),
    }
}

/// Headless Chromium renders the first screen; returns its time in s.
fn screenshot(html: &Path, png: &Path) -> f64 {
    let _ = std::fs::remove_file(png);
    let started = Instant::now();
    let out = Command::new("chromium")
        // As root Chromium refuses its sandbox; the page is our own file.
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,900")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (Debian package chromium, ci/install-deps.sh)");
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        out.status.success() && size > 10_000,
        "chromium wrote no screenshot ({}, {size} bytes):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

/// Cells of a Markdown table row (`\|` is a pipe inside a cell).
fn cells(row: &str) -> usize {
    row.replace("\\|", "")
        .matches('|')
        .count()
        .saturating_sub(1)
}

fn markdown_table_has_a_row_per_requirement(md: &str, requirements: usize) {
    let table: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with("| Requirement"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(table.len() >= 2, "no requirement table:\n{md}");
    let separator = table[1].trim_matches('|').split('|').collect::<Vec<_>>();
    assert!(
        separator.iter().all(|c| c.trim() == "---"),
        "no separator row: {}",
        table[1]
    );
    assert_eq!(table.len() - 2, requirements, "rows:\n{}", table.join("\n"));
    for row in &table {
        assert_eq!(cells(row), cells(table[0]), "{row}");
    }
}

/// Debian's python3-markdown with its tables extension.
fn markdown_renders_a_table(md: &Path) {
    let out = Command::new("/usr/bin/python3")
        .args(["-m", "markdown", "-x", "tables"])
        .arg(md)
        .output()
        .expect("python3-markdown (ci/install-deps.sh)");
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && html.contains("<table>") && html.contains("<th>Requirement</th>"),
        "python3-markdown renders no table ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
