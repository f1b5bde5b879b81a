//! Command-line options: ours, split from the libtest ones.
//!
//! The libtest options (`--list`, `--exact`, `--skip`, `--test-threads`,
//! `--format`, a name filter, …) are parsed by libtest-mimic. Ours are taken
//! out first and checked before any test touches the system, so a typo or an
//! unwritable report path fails the run at once, not after ten minutes.

use anyhow::{bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Options {
    /// Write a JUnit XML report here.
    pub junit: Option<PathBuf>,
    /// Write one evidence log per test case into this directory.
    pub evidence_dir: Option<PathBuf>,
    /// Assessor reports (`--report`, repeatable), format by extension.
    pub reports: Vec<(PathBuf, ReportFormat)>,
    /// Report each test case to LAVA with `lava-test-case`: `Some(true)`
    /// forced on, `Some(false)` off, `None` when the program is on PATH.
    pub lava: Option<bool>,
    /// Print our help and exit.
    pub help: bool,
    /// Print each selected case's negative controls and exit.
    pub list_controls: bool,
    /// Undo what an interrupted run left behind, then exit.
    pub cleanup: bool,
    /// Active time each test case may take (`--time-limit`); None: the
    /// default.
    pub time_limit: Option<Duration>,
    /// Name filters: a test case runs if its ID matches any of them.
    /// libtest-mimic takes only one, so the runner applies them itself.
    pub filters: Vec<String>,
    /// The arguments libtest-mimic parses.
    pub libtest_args: Vec<String>,
}

/// The format of an assessor report, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Markdown,
}

impl ReportFormat {
    /// `.html`/`.htm` or `.md`/`.markdown`, any case; anything else is a
    /// usage error that names the choices.
    pub fn from_path(path: &std::path::Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("html" | "htm") => Ok(ReportFormat::Html),
            Some("md" | "markdown") => Ok(ReportFormat::Markdown),
            _ => bail!(
                "--report {}: the file name must end in .html (HTML) or .md (Markdown)",
                path.display()
            ),
        }
    }
}

/// libtest options whose value is the next argument (so it is no filter).
const LIBTEST_VALUED: &[&str] = &[
    "--skip",
    "--test-threads",
    "--format",
    "--color",
    "--logfile",
    "-Z",
];

pub const USAGE: &str = "\
Usage: cip-iec-fr1-tests [OPTIONS] [FILTER...]

Runs the IEC 62443-4-2 FR-1 test cases (TC_CR1.*) on this system, as root.
Every test case creates its own throw-away accounts, keys and services and
removes them again; the system's policy is checked as configured.

Report options:
      --junit PATH          write a JUnit XML report to PATH
      --evidence-dir DIR    write one evidence log per test case into DIR
      --report FILE.html|FILE.md
                            write the assessor's FR-1 report (requirement
                            table, failures first, target identity, each
                            case's evidence) as self-contained HTML or as
                            Markdown, by the extension; may be given twice
      --lava / --no-lava    report each test case with lava-test-case
                            (default: when lava-test-case is on PATH)

Selection and output (libtest):
      FILTER...             run only test cases whose ID contains a FILTER
      --exact               FILTER must match an ID exactly
      --skip FILTER         skip test cases whose ID contains FILTER (repeatable)
      --list                list the test cases and exit (no root needed)
      --list-controls       list the negative controls of the test cases, one
                            line each, ID<TAB>profile<TAB>NAME (a broken image
                            under fixtures/profiles) or ID<TAB>in-test<TAB>REASON,
                            and exit (no root needed)
      --test-threads N      run at most N test cases at once (default 6)
      --format pretty|terse|json
  -q, --quiet               terse output
      --color auto|always|never

Safety:
      --time-limit SECONDS  each test case may take SECONDS (default 180), not
                            counting the waits its requirement mandates (such
                            as faillock's unlock time); at the limit it fails
                            and cleans up
      --cleanup             undo what an interrupted run (SIGKILL, power loss)
                            left behind, then exit; a normal run does this
                            first by itself. SIGINT/SIGTERM/SIGHUP undo at once.

Exit status: 0 all selected test cases passed (or were skipped as NA),
101 at least one failed, 2 usage error or not run as root, 3 a JUnit
file, report or evidence directory cannot be written (before the run:
nothing ran; after it: the other results are written, the verdicts are
on the console).
";

/// Split `args` (without the program name) into our options and libtest's.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options> {
    let mut opts = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String> {
            match inline.clone().or_else(|| args.next()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => bail!("{name} needs a value"),
            }
        };
        match flag.as_str() {
            "--junit" => opts.junit = Some(PathBuf::from(value("--junit")?)),
            "--evidence-dir" => opts.evidence_dir = Some(PathBuf::from(value("--evidence-dir")?)),
            "--report" => {
                let path = PathBuf::from(value("--report")?);
                let format = ReportFormat::from_path(&path)?;
                opts.reports.push((path, format));
            }
            "--lava" => opts.lava = Some(true),
            "--no-lava" => opts.lava = Some(false),
            "-h" | "--help" => opts.help = true,
            "--list-controls" => opts.list_controls = true,
            "--cleanup" => opts.cleanup = true,
            "--time-limit" => {
                opts.time_limit = Some(seconds("--time-limit", &value("--time-limit")?)?)
            }
            _ if !arg.starts_with('-') => opts.filters.push(arg),
            _ => {
                let takes_value = inline.is_none() && LIBTEST_VALUED.contains(&flag.as_str());
                opts.libtest_args.push(arg);
                if takes_value {
                    opts.libtest_args.extend(args.next());
                }
            }
        }
    }
    Ok(opts)
}

/// A whole, positive number of seconds.
fn seconds(name: &str, value: &str) -> Result<Duration> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => bail!("{name} needs a whole number of seconds above 0, not {value:?} (see --help)"),
    }
}

/// Make sure the report destinations can be written, before the run.
pub fn check_destinations(opts: &Options) -> Result<()> {
    let reports = opts.reports.iter().map(|(path, _)| (path, "report"));
    for (path, what) in opts
        .junit
        .iter()
        .map(|p| (p, "JUnit report"))
        .chain(reports)
    {
        // Opening for append creates the file without losing an old report
        // if the run is aborted before the new one is written.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write the {what} {}", path.display()))?;
    }
    if let Some(dir) = &opts.evidence_dir {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the evidence directory {}", dir.display()))?;
        let probe = dir.join(".fr1-write-test");
        File::create(&probe).with_context(|| {
            format!("cannot write into the evidence directory {}", dir.display())
        })?;
        let _ = fs::remove_file(probe);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Options> {
        parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn our_options_are_taken_out_and_the_rest_goes_to_libtest() {
        let o = parse_str("--junit out.xml TC_CR1.3 --evidence-dir=ev --exact --no-lava --skip TC_CR1.3_2 TC_CR1.4").unwrap();
        assert_eq!(o.junit, Some(PathBuf::from("out.xml")));
        assert_eq!(o.evidence_dir, Some(PathBuf::from("ev")));
        assert_eq!(o.lava, Some(false));
        assert_eq!(o.filters, vec!["TC_CR1.3", "TC_CR1.4"]);
        assert_eq!(o.libtest_args, vec!["--exact", "--skip", "TC_CR1.3_2"]);
        assert!(!o.list_controls);
        let o = parse_str("--list-controls TC_CR1.3 --exact").unwrap();
        assert!(o.list_controls);
        assert_eq!(o.filters, vec!["TC_CR1.3"]);
        assert_eq!(o.libtest_args, vec!["--exact"]);
    }

    #[test]
    fn reports_take_their_format_from_the_extension() {
        let o = parse_str("--report fr1.html --report=out/FR1.MD TC_CR1.3").unwrap();
        assert_eq!(
            o.reports,
            vec![
                (PathBuf::from("fr1.html"), ReportFormat::Html),
                (PathBuf::from("out/FR1.MD"), ReportFormat::Markdown),
            ]
        );
        assert_eq!(o.filters, vec!["TC_CR1.3"]);
        for bad in ["--report fr1.pdf", "--report fr1", "--report"] {
            assert!(parse_str(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_missing_value_is_an_error() {
        assert!(parse_str("--junit").is_err());
        assert!(parse_str("--evidence-dir=").is_err());
        assert!(parse_str("--time-limit").is_err());
    }

    #[test]
    fn the_time_limit_is_a_positive_number_of_seconds() {
        let o = parse_str("--time-limit 600 TC_CR1.11").unwrap();
        assert_eq!(o.time_limit, Some(Duration::from_secs(600)));
        assert_eq!(o.filters, vec!["TC_CR1.11"]);
        let o = parse_str("--time-limit=20").unwrap();
        assert_eq!(o.time_limit, Some(Duration::from_secs(20)));
        assert_eq!(parse_str("").unwrap().time_limit, None);
        for bad in ["0", "-5", "1.5", "ten", "20s", ""] {
            let err = parse_str(&format!("--time-limit={bad}"));
            assert!(err.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_unwritable_report_path_is_refused_before_the_run() {
        let o = parse_str("--junit /nonexistent-dir/x.xml").unwrap();
        assert!(check_destinations(&o).is_err());
        let o = parse_str("--report /nonexistent-dir/x.html").unwrap();
        assert!(check_destinations(&o).is_err());
    }
}
