//! How long each PKI operation of a test case took.

use crate::Evidence;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The CIP FR-1 assessment states that each PKI operation takes less than
/// this. Reported in the evidence, never asserted (timings on a shared or
/// slow board are not a pass/fail criterion).
pub const ASSESSED_OPERATION_TIME: Duration = Duration::from_millis(500);
/// The time of every PKI operation of one test case. Clones share one
/// log; when the last clone is gone the list, the total and the operations
/// over [`ASSESSED_OPERATION_TIME`] are written to the evidence.
#[derive(Clone)]
pub struct Timings {
    inner: Arc<Mutex<TimingLog>>,
}

struct TimingLog {
    ev: Evidence,
    ops: Vec<(String, Duration)>,
}

impl Timings {
    pub fn new(ev: &Evidence) -> Self {
        Timings {
            inner: Arc::new(Mutex::new(TimingLog {
                ev: ev.clone(),
                ops: Vec::new(),
            })),
        }
    }

    pub fn record(&self, what: &str, took: Duration) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ops
            .push((what.to_owned(), took));
    }

    /// Run `f` and record how long it took as `what`.
    pub fn time<T>(&self, what: &str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.record(what, started.elapsed());
        out
    }

    /// The sum of all recorded operations so far.
    pub fn total(&self) -> Duration {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ops
            .iter()
            .map(|(_, d)| *d)
            .sum()
    }
}

impl Drop for TimingLog {
    fn drop(&mut self) {
        if self.ops.is_empty() {
            return;
        }
        let total: Duration = self.ops.iter().map(|(_, d)| *d).sum();
        let budget = ASSESSED_OPERATION_TIME.as_secs_f64();
        let over: Vec<&str> = self
            .ops
            .iter()
            .filter(|(_, d)| *d > ASSESSED_OPERATION_TIME)
            .map(|(w, _)| w.as_str())
            .collect();
        let mut block = format!(
            "PKI operation times (the assessment states < {budget:.1} s per operation; reported, not asserted):"
        );
        for (what, took) in &self.ops {
            let _ = write!(
                block,
                "\n  {:>7.3} s  {}{what}",
                took.as_secs_f64(),
                if *took > ASSESSED_OPERATION_TIME {
                    "OVER "
                } else {
                    ""
                }
            );
        }
        let _ = write!(
            block,
            "\n  total PKI time: {:.3} s over {} operation(s); {} over {budget:.1} s{}",
            total.as_secs_f64(),
            self.ops.len(),
            over.len(),
            if over.is_empty() {
                String::new()
            } else {
                format!(" ({})", over.join("; "))
            }
        );
        self.ev.note(block);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_add_up() {
        let ev = Evidence::new("t");
        {
            let t = Timings::new(&ev);
            t.record("a", Duration::from_millis(100));
            t.record("b", Duration::from_millis(600));
            assert_eq!(t.total(), Duration::from_millis(700));
        }
        let text = ev.render();
        assert!(
            text.contains("total PKI time: 0.700 s over 2 operation(s); 1 over 0.5 s (b)"),
            "{text}"
        );
        assert!(text.contains("OVER b"), "{text}");
    }
}
