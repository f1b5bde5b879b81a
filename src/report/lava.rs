//! LAVA results: each test case reported with `lava-test-case ID --result
//! pass|fail|skip`, which the LAVA test shell provides on PATH.

use crate::runner::{Outcome, Record};
use std::process::Command;

pub const PROGRAM: &str = "lava-test-case";

/// Is the LAVA helper on PATH (i.e. are we inside a LAVA test shell)?
pub fn available() -> bool {
    harness::runner_api::find_program(PROGRAM).is_some()
}

/// Report every record; a failing `lava-test-case` is printed, not fatal:
/// the JUnit file and the exit status still carry the result.
pub fn report(records: &[Record]) {
    for r in records {
        let result = match r.outcome {
            Outcome::Passed => "pass",
            Outcome::Failed(_) | Outcome::NotDemonstrated(_) => "fail",
            Outcome::Skipped(_) => "skip",
        };
        let status = Command::new(PROGRAM)
            .args([r.case.id, "--result", result])
            .args([
                "--measurement",
                &format!("{:.3}", r.duration.as_secs_f64()),
                "--units",
                "s",
            ])
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("cip-iec-fr1-tests: {PROGRAM} {} failed ({s})", r.case.id),
            Err(e) => eprintln!("cip-iec-fr1-tests: cannot run {PROGRAM}: {e}"),
        }
    }
}
