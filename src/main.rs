//! cip-iec-fr1-tests: IEC 62443-4-2 FR-1 evidence for a CIP-based image.
//!
//! Reads the options, checks the run can report and is allowed to touch the
//! system, runs the catalog as libtest trials, then hands the records to the
//! reporters (console summary, JUnit, evidence directory, LAVA).

mod cli;
mod report;
mod runner;
mod schedule;

use anyhow::Result;
use libtest_mimic::{Arguments, FormatSetting};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const USAGE_ERROR: u8 = 2;

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
    // libtest-mimic's parser prints usage and exits 2 on a bad option. It
    // takes one name filter; with several we select the cases ourselves.
    let one_filter = (opts.filters.len() == 1).then(|| opts.filters[0].clone());
    let args = Arguments::from_iter(
        std::iter::once("cip-iec-fr1-tests".to_owned())
            .chain(opts.libtest_args.iter().cloned())
            .chain(one_filter),
    );
    let mut cases = cases::catalog();
    if opts.filters.len() > 1 {
        cases.retain(|c| {
            opts.filters.iter().any(|f| {
                if args.exact {
                    c.id == f
                } else {
                    c.id.contains(f.as_str())
                }
            })
        });
    }

    if !args.list {
        if !nix::unistd::geteuid().is_root() {
            anyhow::bail!(
                "must run as root: the test cases create accounts and start services (try sudo)"
            );
        }
        cli::check_destinations(&opts)?;
        let selected = cases.iter().filter(|c| selected(&args, c.id)).count();
        if selected == 0 {
            anyhow::bail!(
                "no test case matches the filter {:?} (see --list)",
                opts.filters.join(" ")
            );
        }
    }

    let records = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let scope = (!args.list).then(harness::run_scope::RunScope::enter);
    // Cases that mostly wait on a timer start first, so the run does not
    // end waiting for one of them alone; --list keeps the catalog order.
    let mut run_order = cases.clone();
    if !args.list {
        run_order.sort_by_key(|c| !c.long_running);
    }
    let conclusion = libtest_mimic::run(&args, runner::trials(run_order, &records));
    drop(scope);
    let plain_output = !args.quiet && matches!(args.format, None | Some(FormatSetting::Pretty));
    if args.list {
        if plain_output {
            report::console::print_not_applicable(cases.iter().filter(|c| selected(&args, c.id)));
        }
        return Ok(ExitCode::SUCCESS);
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
    if plain_output {
        report::console::print_not_applicable(records.iter().map(|r| &r.case));
    }
    if opts.lava.unwrap_or_else(report::lava::available) {
        report::lava::report(&records);
    }
    println!("suite wall time: {:.1} s", wall.as_secs_f64());
    Ok(conclusion.exit_code())
}

/// Same selection rule as libtest: substring (or exact) match on the ID,
/// minus `--skip` substrings.
fn selected(args: &Arguments, id: &str) -> bool {
    let matches = |f: &str| if args.exact { id == f } else { id.contains(f) };
    args.filter.as_deref().is_none_or(matches)
        && !args.skip.iter().any(|s| {
            if args.exact {
                id == s
            } else {
                id.contains(s.as_str())
            }
        })
}
