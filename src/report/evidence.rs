//! The evidence directory: one `<TC-ID>.log` per test case, plus an
//! `index.txt` that lists every case with its verdict, so an assessor starts
//! from one page.

use crate::runner::{Outcome, Record};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

pub fn write(dir: &Path, records: &[Record]) -> Result<()> {
    let mut index = String::from("IEC 62443-4-2 FR-1 evidence (cip-iec-fr1-tests)\n\n");
    for r in records {
        let file = format!("{}.log", r.case.id.replace([' ', '/'], "_"));
        std::fs::write(dir.join(&file), &r.evidence)
            .with_context(|| format!("writing evidence {}", dir.join(&file).display()))?;
        let verdict = match &r.outcome {
            Outcome::Passed => "PASS".to_owned(),
            Outcome::Failed(_) | Outcome::NotDemonstrated(_) => "FAIL".to_owned(),
            Outcome::Skipped(reason) => format!("SKIP ({reason})"),
        };
        let _ = writeln!(
            index,
            "{:<16} {:<10} {:>7.2}s  {}  -> {file}",
            r.case.id,
            r.case.requirement,
            r.duration.as_secs_f64(),
            verdict
        );
    }
    let index_path = dir.join("index.txt");
    std::fs::write(&index_path, index)
        .with_context(|| format!("writing the evidence index {}", index_path.display()))
}
