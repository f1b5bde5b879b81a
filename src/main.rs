//! cip-iec-fr1-tests: IEC 62443-4-2 FR-1 evidence for a CIP-based image.
//!
//! Reads the options, checks the run can report and is allowed to touch the
//! system, makes it safe (one run at a time, undo journal, signal watcher),
//! runs the catalog as libtest trials, then hands the records to the
//! reporters (console, JUnit, evidence directory, assessor report, LAVA).

mod cli;
mod identity;
mod report;
mod runner;
mod safety;
mod schedule;
mod watchdog;

use anyhow::Result;
use harness::journal;
use libtest_mimic::{Arguments, FormatSetting};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const USAGE_ERROR: u8 = 2;
/// Test cases run at once unless `--test-threads` says otherwise. Six, not
/// four: a case sleeping through faillock's unlock_time keeps its thread for
/// the whole run, and with four the rest of the catalog queued on three
/// threads for about 35 s before the case that must run alone could start;
/// with six the slowest single case (about 25 s) bounds that part instead.
/// Per-case times at six threads match those at one on a 2-core machine.
const DEFAULT_TEST_THREADS: usize = 6;

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cip-iec-fr1-tests: {e:#}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let opts = cli::parse(std::env::args().skip(1))?;
    if opts.help {
        print!("{}", cli::USAGE);
        return Ok(ExitCode::SUCCESS);
    }
    let state_dir = Path::new(journal::STATE_DIR);
    if opts.cleanup {
        require_root()?;
        let _lock = safety::lock(state_dir)?;
        let undone = safety::recover(state_dir)?;
        println!("cip-iec-fr1-tests: cleanup done ({undone} change(s) undone)");
        return Ok(ExitCode::SUCCESS);
    }
    // libtest-mimic's parser prints usage and exits 2 on a bad option.
    let mut args = Arguments::from_iter(
        std::iter::once("cip-iec-fr1-tests".to_owned()).chain(opts.libtest_args.iter().cloned()),
    );
    // The test cases mostly wait (PAM failure delays, servers, timers), not
    // compute: more of them at once than there are cores shortens a run.
    args.test_threads = args.test_threads.or(Some(DEFAULT_TEST_THREADS));
    let mut cases = cases::catalog();
    if !opts.filters.is_empty() {
        cases.retain(|c| opts.filters.iter().any(|f| id_matches(&args, c.id, f)));
    }
    let plain_output = !args.quiet && matches!(args.format, None | Some(FormatSetting::Pretty));

    if args.list {
        // With --list, libtest-mimic only prints the names; nothing runs.
        let limits = watchdog::Limits::new(watchdog::DEFAULT_LIMIT);
        let _listed = libtest_mimic::run(
            &args,
            runner::trials(cases.clone(), &Arc::default(), limits),
        );
        if plain_output {
            report::console::print_not_applicable(cases.iter().filter(|c| selected(&args, c.id)));
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Before the run starts anything: what already runs is not its own to
    // kill at the end (see process::Inherited). Not for --help, --list or
    // --cleanup, which never kill what is left behind.
    harness::process::note_inherited();
    require_root()?;
    cli::check_destinations(&opts)?;
    if !cases.iter().any(|c| selected(&args, c.id)) {
        anyhow::bail!(
            "no test case matches the filter {:?} (see --list)",
            opts.filters.join(" ")
        );
    }
    let _run_lock = safety::lock(state_dir)?;
    safety::recover(state_dir)?;
    safety::watch_signals(state_dir)?;
    journal::activate(state_dir)?;

    // The target's identity as the run finds it, before any case changes
    // (and restores) a configuration file.
    let identity = (!opts.reports.is_empty()).then(identity::Identity::collect);
    let records = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    // Before any test case changes the system: the records some cases
    // judge the image's own state by (Case::before_run).
    for case in cases.iter().filter(|c| selected(&args, c.id)) {
        if let Some(record) = case.before_run {
            if let Err(e) = record() {
                eprintln!(
                    "cip-iec-fr1-tests: {}: the record before the run could not be made: {e:#}",
                    case.id
                );
            }
        }
    }
    let scope = harness::run_scope::RunScope::enter()?;
    // Reports keep the catalog order; schedule::run_order says why the
    // trials start in another.
    let run_order = schedule::run_order(&cases);
    let limits = watchdog::Limits::new(opts.time_limit.unwrap_or(watchdog::DEFAULT_LIMIT));
    let conclusion = libtest_mimic::run(&args, runner::trials(run_order, &records, limits));
    drop(scope);
    // Every change should have been undone by its guard; whatever a failed
    // guard left is undone here, and said. A test case given up on at its
    // time limit may still be running: from here on it can start no change
    // (the replay closes the journal), and what it runs is killed. The
    // process exits without waiting for it.
    for line in journal::replay(state_dir)?
        .into_iter()
        .chain(harness::process::kill_own_children())
    {
        eprintln!("cip-iec-fr1-tests: left behind by a test case, now undone: {line}");
    }
    let wall = started.elapsed();

    // Reports list the test cases in catalog order, whatever order the
    // threads finished in.
    let mut records = records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    records.sort_by_key(|r| cases.iter().position(|c| c.id == r.case.id));

    if let Some(path) = &opts.junit {
        report::junit::write(path, &records, wall)?;
        println!("JUnit report: {}", path.display());
    }
    if let Some(dir) = &opts.evidence_dir {
        report::evidence::write(dir, &records)?;
        println!("evidence: {}", dir.display());
    }
    if let Some(identity) = &identity {
        let run = report::fr1::RunFacts {
            started: started_at,
            duration: wall,
            suite_version: env!("CARGO_PKG_VERSION"),
            command_line: command_line(),
        };
        let data = report::fr1::ReportData {
            records: &records,
            identity,
            run: &run,
        };
        for (path, format) in &opts.reports {
            match format {
                cli::ReportFormat::Html => report::html::write(path, &data)?,
                cli::ReportFormat::Markdown => report::markdown::write(path, &data)?,
            }
            println!("report: {}", path.display());
        }
    }
    if plain_output {
        report::console::print_not_applicable(records.iter().map(|r| &r.case));
    }
    if opts.lava.unwrap_or_else(report::lava::available) {
        report::lava::report(&records);
    }
    println!("suite wall time: {:.1} s", wall.as_secs_f64());
    Ok(conclusion.exit_code())
}

/// How the suite was called, as a shell would take it back (arguments with
/// blanks or quotes in single quotes).
fn command_line() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn require_root() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "must run as root: the test cases create accounts and start services (try sudo)"
        );
    }
    Ok(())
}

/// libtest's rule for one filter: substring match, or equality with `--exact`.
fn id_matches(args: &Arguments, id: &str, filter: &str) -> bool {
    if args.exact {
        id == filter
    } else {
        id.contains(filter)
    }
}

/// Is a (filtered) case left after `--skip`?
fn selected(args: &Arguments, id: &str) -> bool {
    !args.skip.iter().any(|s| id_matches(args, id, s))
}
