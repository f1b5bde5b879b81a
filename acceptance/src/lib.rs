//! Drives `ci/target-image.sh` for the project's acceptance tests and reads
//! back what the suite reported.
//!
//! The tests in `tests/` need root, mmdebstrap and a release build of the
//! suite, so they are `#[ignore]`d for a plain `cargo test`; `ci/test.sh`
//! runs them with `--ignored`.

use anyhow::{bail, Context, Result};
use quick_junit::{Report, TestCaseStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The suite binary the image runs: the release build.
pub fn suite_binary() -> PathBuf {
    std::env::var_os("FR1_SUITE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release/cip-iec-fr1-tests"))
}

/// What one test case ended as, from the JUnit report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One run of the suite in a disposable image.
pub struct ImageRun {
    pub exit_code: Option<i32>,
    pub console: String,
    pub out: tempfile::TempDir,
    pub results: BTreeMap<String, Status>,
}

impl ImageRun {
    pub fn status(&self, id: &str) -> Option<&Status> {
        self.results.get(id)
    }

    pub fn out_file(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// What differs between the state snapshots the setup and after
    /// scripts took (see [`SETUP_USER1_AND_SNAPSHOT`]); panics when either
    /// is missing or the snapshot does not cover accounts.
    pub fn snapshot_changes(&self) -> Vec<String> {
        let before = std::fs::read_to_string(self.out_file("before")).expect("before snapshot");
        let after = std::fs::read_to_string(self.out_file("after")).expect("after snapshot");
        assert!(
            before.contains("user1"),
            "the snapshot does not cover accounts:\n{before}"
        );
        snapshot_diff(&before, &after)
    }

    /// The console output, for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "exit code {:?}\n--- console ---\n{}",
            self.exit_code, self.console
        )
    }
}

/// `--setup` for runs that must leave the image as they found it: a real
/// account the suite must not touch (`user1`), then the state snapshot.
pub const SETUP_USER1_AND_SNAPSHOT: &str = "set -e
useradd --create-home --shell /bin/sh user1
echo 'user1:Pre-existing1!Account' | chpasswd
fr1-snapshot-state > /fr1-out/before
";
/// `--after` for the same runs: the state snapshot after the suite.
pub const SNAPSHOT_AFTER: &str = "set -e
fr1-snapshot-state > /fr1-out/after
";

/// Options for [`run_in_image`].
#[derive(Default)]
pub struct RunSpec<'a> {
    /// Debian suite of the image (default: the runner's, bookworm).
    pub suite: Option<&'a str>,
    /// The image's customisation (`FR1_FLAVOR`: tidied, the default, or
    /// cip, CIP's own).
    pub flavor: Option<&'a str>,
    pub profile: Option<&'a str>,
    /// Shell script run in the image before the suite.
    pub setup: Option<&'a str>,
    /// Shell script run in the image after the suite.
    pub after: Option<&'a str>,
    pub suite_args: &'a [&'a str],
    /// Boot the image with systemd (`run --boot`) instead of the namespace
    /// runner.
    pub boot: bool,
}

/// Run the suite in a fresh overlay of the cached image and parse its JUnit.
pub fn run_in_image(spec: &RunSpec) -> Result<ImageRun> {
    let out = tempfile::Builder::new()
        .prefix("fr1-acceptance-")
        .tempdir()?;
    let mut cmd = Command::new(repo_root().join("ci/target-image.sh"));
    cmd.arg("run")
        .arg("--out")
        .arg(out.path())
        .arg("--bin")
        .arg(suite_binary());
    if let Some(suite) = spec.suite {
        cmd.env("FR1_SUITE", suite);
    }
    if let Some(flavor) = spec.flavor {
        cmd.env("FR1_FLAVOR", flavor);
    }
    if spec.boot {
        cmd.arg("--boot");
    }
    if let Some(p) = spec.profile {
        cmd.args(["--profile", p]);
    }
    for (flag, script, name) in [
        ("--setup", spec.setup, "setup.sh"),
        ("--after", spec.after, "after.sh"),
    ] {
        if let Some(text) = script {
            let path = out.path().join(name);
            std::fs::write(&path, text)?;
            cmd.arg(flag).arg(&path);
        }
    }
    cmd.arg("--").args(spec.suite_args);
    let output = cmd.output().context("cannot run ci/target-image.sh")?;
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let junit = out.path().join("junit.xml");
    let results = match std::fs::read_to_string(&junit) {
        Ok(xml) => parse_junit(&xml).with_context(|| format!("bad JUnit report\n{console}"))?,
        Err(_) => BTreeMap::new(),
    };
    Ok(ImageRun {
        exit_code: output.status.code(),
        console,
        out,
        results,
    })
}

/// Test-case ID -> status, from a JUnit report (which must be well-formed).
pub fn parse_junit(xml: &str) -> Result<BTreeMap<String, Status>> {
    let report = Report::deserialize_from_str(xml).context("JUnit XML does not parse")?;
    let mut results = BTreeMap::new();
    for suite in &report.test_suites {
        for tc in &suite.test_cases {
            let message = |m: Option<&quick_junit::XmlString>| {
                m.map(|s| s.as_str().to_owned()).unwrap_or_default()
            };
            let status = match &tc.status {
                TestCaseStatus::Success { .. } => Status::Passed,
                TestCaseStatus::NonSuccess { message: m, .. } => {
                    Status::Failed(message(m.as_ref()))
                }
                TestCaseStatus::Skipped { message: m, .. } => Status::Skipped(message(m.as_ref())),
            };
            if results
                .insert(tc.name.as_str().to_owned(), status)
                .is_some()
            {
                bail!(
                    "test case {} appears twice in the JUnit report",
                    tc.name.as_str()
                );
            }
        }
    }
    Ok(results)
}

/// Lines that differ between two state snapshots ("-" before, "+" after).
pub fn snapshot_diff(before: &str, after: &str) -> Vec<String> {
    let b: std::collections::BTreeSet<&str> = before.lines().collect();
    let a: std::collections::BTreeSet<&str> = after.lines().collect();
    b.difference(&a)
        .map(|l| format!("- {l}"))
        .chain(a.difference(&b).map(|l| format!("+ {l}")))
        .collect()
}

/// What the suite binary prints for `args`, which must need no root and
/// touch nothing (`--list`, `--list-controls`); an error if it fails.
fn suite_output(args: &[&str]) -> Result<String> {
    let binary = suite_binary();
    let out = Command::new(&binary).args(args).output().with_context(|| {
        format!(
            "cannot run {} (build it with cargo build --release)",
            binary.display()
        )
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{} {}: {}\n{stdout}{}",
            binary.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Every test-case ID the suite binary lists (`--list`), in catalog order:
/// the one list of IDs (the cases crate's catalog), read back from the
/// binary instead of copied.
pub fn listed_cases() -> Result<Vec<String>> {
    let listed = suite_output(&["--list", "--format", "terse"])?;
    let ids: Vec<String> = listed
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        bail!("--list names no test case:\n{listed}");
    }
    Ok(ids)
}

/// The test cases that are tested (`TC_…`: every Met requirement's, and
/// those of NA requirements tested when present), as [`listed_cases`]
/// lists them; the NA rows (`CR1.2`, `NDR1.6`) are left out.
pub fn listed_test_cases() -> Result<Vec<String>> {
    Ok(listed_cases()?
        .into_iter()
        .filter(|id| id.starts_with("TC_"))
        .collect())
}

/// A negative control a test case declares (see `--list-controls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredControl {
    /// The broken image fixtures/profiles/NAME.
    Profile(String),
    /// The case's own refusal halves, with the reason.
    InTest(String),
}

/// Every negative control the test cases declare, as (ID, control), from
/// the suite binary's `--list-controls`.
pub fn declared_controls() -> Result<Vec<(String, DeclaredControl)>> {
    let listed = suite_output(&["--list-controls"])?;
    listed
        .lines()
        .map(|line| {
            let control = match line.splitn(3, '\t').collect::<Vec<_>>()[..] {
                [id, "profile", name] => (id, DeclaredControl::Profile(name.to_owned())),
                [id, "in-test", reason] => (id, DeclaredControl::InTest(reason.to_owned())),
                _ => bail!("--list-controls: a line of an unknown form: {line:?}"),
            };
            Ok((control.0.to_owned(), control.1))
        })
        .collect()
}

/// The negative-control profiles the test cases name, each with the test
/// cases that must FAIL under it (in catalog order), from
/// [`declared_controls`].
pub fn profiles() -> Result<BTreeMap<String, Vec<String>>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, control) in declared_controls()? {
        if let DeclaredControl::Profile(name) = control {
            found.entry(name).or_default().push(id);
        }
    }
    Ok(found)
}

/// Appends "SECONDS<TAB>LABEL" to the file FR1_TIMINGS names, when it is
/// set: the rows of the timing table ci/test.sh prints at its end. A row
/// that cannot be written is said on stderr; it never fails a test.
pub fn record_timing(label: &str, seconds: f64) {
    use std::io::Write;
    let Some(path) = std::env::var_os("FR1_TIMINGS") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{seconds:.1}\t{label}"));
    if let Err(e) = written {
        eprintln!(
            "cannot add the timing of {label} to {}: {e}",
            Path::new(&path).display()
        );
    }
}
