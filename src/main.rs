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

use anyhow::{Context, Result};
use harness::{runner_api, Case};
use libtest_mimic::{Arguments, Conclusion, FormatSetting};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Bad arguments, a filter that selects nothing, not root, or a run that
/// could not be made safe (the lock, the undo journal): nothing was run.
const USAGE_ERROR: u8 = 2;
/// A JUnit file, evidence directory or assessor report that cannot be
/// written. Not a usage error: the arguments were right, the destination
/// (a directory, a full disk, permissions) was not. Before the run it
/// means nothing ran; after it, that the verdicts on the console are not
/// all recorded, which a CI job must not mistake for a pass or a failure.
const RESULTS_NOT_RECORDED: u8 = 3;
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
            ExitCode::from(failure_status(&e))
        }
    }
}

/// The steps of a call, in order: options, the modes that run no test case
/// (help, cleanup, list), making the run safe, the run, its results.
fn real_main() -> Result<ExitCode> {
    let opts = cli::parse(std::env::args().skip(1))?;
    if opts.help {
        die_quietly_on_a_closed_pipe();
        print!("{}", cli::USAGE);
        return Ok(ExitCode::SUCCESS);
    }
    let state_dir = Path::new(runner_api::STATE_DIR);
    if opts.cleanup {
        return cleanup(state_dir);
    }
    let args = libtest_arguments(&opts);
    let cases = filtered_catalog(&opts, &args);
    if opts.list_controls {
        die_quietly_on_a_closed_pipe();
        report::console::print_controls(cases.iter().filter(|c| selected(&args, c.id)));
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        die_quietly_on_a_closed_pipe();
        list(&args, cases);
        return Ok(ExitCode::SUCCESS);
    }
    let _run_lock = prepare(&opts, &args, &cases, state_dir)?;
    let finished = run(&opts, &args, cases, state_dir)?;
    let recorded = write_results(&opts, &finished);
    if plain_output(&args) {
        report::console::print_not_applicable(finished.records.iter().map(|r| &r.case));
    }
    if opts.lava.unwrap_or_else(report::lava::available) {
        report::lava::report(&finished.records);
    }
    println!("suite wall time: {:.1} s", finished.wall.as_secs_f64());
    let timed = report::fr1::TimedChecks::of(&finished.records);
    println!("{}", timed.summary());
    for not_made in &timed.not_made {
        println!("  not made: {not_made}");
    }
    if !recorded {
        return Ok(ExitCode::from(RESULTS_NOT_RECORDED));
    }
    Ok(finished.conclusion.exit_code())
}

/// Marks an error as a result destination that cannot be written, for
/// [`failure_status`]; its text says that nothing ran.
#[derive(Debug)]
struct DestinationUnwritable;

impl std::fmt::Display for DestinationUnwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("nothing was run")
    }
}

/// The exit status of a call that ended in an error.
fn failure_status(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<DestinationUnwritable>().is_some() {
        RESULTS_NOT_RECORDED
    } else {
        USAGE_ERROR
    }
}

/// For the modes that only print (help, the lists): `… --list | head`
/// ends the process quietly, as other tools do, instead of a panic on a
/// broken pipe. Never for a run, which must live to undo its changes.
fn die_quietly_on_a_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default, before any
    // thread is started; no handler is involved.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
}

/// `--cleanup`: undo what an interrupted run left behind, then exit.
fn cleanup(state_dir: &Path) -> Result<ExitCode> {
    require_root()?;
    let _lock = safety::lock(state_dir)?;
    let undone = safety::recover(state_dir)?;
    println!("cip-iec-fr1-tests: cleanup done ({undone} change(s) undone)");
    Ok(ExitCode::SUCCESS)
}

/// The libtest options, as libtest-mimic reads them.
fn libtest_arguments(opts: &cli::Options) -> Arguments {
    // libtest-mimic's parser prints usage and exits 2 on a bad option.
    let mut args = Arguments::from_iter(
        std::iter::once("cip-iec-fr1-tests".to_owned()).chain(opts.libtest_args.iter().cloned()),
    );
    // The test cases mostly wait (PAM failure delays, servers, timers), not
    // compute: more of them at once than there are cores shortens a run.
    args.test_threads = args.test_threads.or(Some(DEFAULT_TEST_THREADS));
    args
}

/// The catalog, in its order, narrowed to the cases any name filter
/// matches (`--skip` is left to libtest-mimic, see [`selected`]).
fn filtered_catalog(opts: &cli::Options, args: &Arguments) -> Vec<Case> {
    let mut cases = cases::catalog();
    if !opts.filters.is_empty() {
        cases.retain(|c| opts.filters.iter().any(|f| id_matches(args, c.id, f)));
    }
    cases
}

/// `--list`: libtest-mimic only prints the names, nothing runs; then the NA
/// requirements among them with their reasons.
fn list(args: &Arguments, cases: Vec<Case>) {
    let limits = watchdog::Limits::new(watchdog::DEFAULT_LIMIT);
    let _listed = libtest_mimic::run(args, runner::trials(cases.clone(), &Arc::default(), limits));
    if plain_output(args) {
        report::console::print_not_applicable(cases.iter().filter(|c| selected(args, c.id)));
    }
}

/// Everything that must hold before a test case touches the system: root,
/// writable result destinations, a selection that is not empty, the run
/// lock (returned: held until the process ends), the previous run's
/// changes undone, the signal watcher and the undo journal.
fn prepare(
    opts: &cli::Options,
    args: &Arguments,
    cases: &[Case],
    state_dir: &Path,
) -> Result<safety::RunLock> {
    // Before the run starts anything: what already runs is not its own to
    // kill at the end (see process::Inherited). Not for --help, --list or
    // --cleanup, which never kill what is left behind.
    runner_api::note_inherited();
    require_root()?;
    cli::check_destinations(opts).context(DestinationUnwritable)?;
    if !cases.iter().any(|c| selected(args, c.id)) {
        anyhow::bail!(
            "no test case matches the filter {:?} (see --list)",
            opts.filters.join(" ")
        );
    }
    let run_lock = safety::lock(state_dir)?;
    safety::recover(state_dir)?;
    safety::watch_signals(state_dir)?;
    runner_api::activate(state_dir)
        .with_context(|| format!("opening the undo journal in {}", state_dir.display()))?;
    Ok(run_lock)
}

/// What a run leaves for the reporters.
struct Finished {
    /// One per test case run, in catalog order.
    records: Vec<runner::Record>,
    /// The target as the run found it; only collected for `--report`.
    identity: Option<identity::Identity>,
    conclusion: Conclusion,
    started_at: SystemTime,
    wall: Duration,
}

/// Runs the selected cases, then undoes whatever they left behind.
fn run(
    opts: &cli::Options,
    args: &Arguments,
    cases: Vec<Case>,
    state_dir: &Path,
) -> Result<Finished> {
    // The target's identity as the run finds it, before any case changes
    // (and restores) a configuration file.
    let identity = (!opts.reports.is_empty()).then(identity::Identity::collect);
    let records = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let started_at = SystemTime::now();
    record_before_run(args, &cases);
    let scope = runner_api::enter_run_scope()?;
    // Reports keep the catalog order; schedule::run_order says why the
    // trials start in another.
    let run_order = schedule::run_order(&cases);
    let limits = watchdog::Limits::new(opts.time_limit.unwrap_or(watchdog::DEFAULT_LIMIT));
    let conclusion = libtest_mimic::run(args, runner::trials(run_order, &records, limits));
    drop(scope);
    undo_left_behind(state_dir)?;
    let wall = started.elapsed();

    // Reports list the test cases in catalog order, whatever order the
    // threads finished in.
    let mut records = records.lock().unwrap_or_else(|p| p.into_inner()).clone();
    records.sort_by_key(|r| cases.iter().position(|c| c.id == r.case.id));
    Ok(Finished {
        records,
        identity,
        conclusion,
        started_at,
        wall,
    })
}

/// Before any test case changes the system: the records some cases judge
/// the image's own state by (Case::before_run). One that cannot be made is
/// said; its case judges without it.
fn record_before_run(args: &Arguments, cases: &[Case]) {
    for case in cases.iter().filter(|c| selected(args, c.id)) {
        if let Some(record) = case.before_run {
            if let Err(e) = record() {
                eprintln!(
                    "cip-iec-fr1-tests: {}: the record before the run could not be made: {e:#}",
                    case.id
                );
            }
        }
    }
}

/// Every change should have been undone by its guard; whatever a failed
/// guard left is undone here, and said. A test case given up on at its
/// time limit may still be running: from here on it can start no change
/// (the replay closes the journal), and what it runs is killed. The
/// process exits without waiting for it.
fn undo_left_behind(state_dir: &Path) -> Result<()> {
    let undone = runner_api::replay(state_dir)
        .with_context(|| format!("undoing the run's changes from {}", state_dir.display()))?;
    for line in undone.into_iter().chain(runner_api::kill_own_children()) {
        eprintln!("cip-iec-fr1-tests: left behind by a test case, now undone: {line}");
    }
    Ok(())
}

/// Writes every result file asked for. One that cannot be written is said
/// and the others are still written: a mistyped or full destination must
/// not cost the evidence of the whole run. Returns whether all were.
fn write_results(opts: &cli::Options, finished: &Finished) -> bool {
    let mut recorded = true;
    let mut outcome = |written: Result<()>, what: &str, path: &Path| match written {
        Ok(()) => println!("{what}: {}", path.display()),
        Err(e) => {
            eprintln!("cip-iec-fr1-tests: the results are not all recorded: {e:#}");
            recorded = false;
        }
    };
    if let Some(path) = &opts.junit {
        let written = report::junit::write(path, &finished.records, finished.wall);
        outcome(written, "JUnit report", path);
    }
    if let Some(dir) = &opts.evidence_dir {
        outcome(
            report::evidence::write(dir, &finished.records),
            "evidence",
            dir,
        );
    }
    if let Some(identity) = &finished.identity {
        let run = report::fr1::RunFacts {
            started: finished.started_at,
            duration: finished.wall,
            suite_version: env!("CARGO_PKG_VERSION"),
            command_line: command_line(),
        };
        let data = report::fr1::ReportData {
            records: &finished.records,
            identity,
            run: &run,
        };
        for (path, format) in &opts.reports {
            let written = match format {
                cli::ReportFormat::Html => report::html::write(path, &data),
                cli::ReportFormat::Markdown => report::markdown::write(path, &data),
            };
            outcome(written, "report", path);
        }
    }
    recorded
}

/// libtest's own human-readable output, to which the NA reasons are added.
fn plain_output(args: &Arguments) -> bool {
    !args.quiet && matches!(args.format, None | Some(FormatSetting::Pretty))
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
