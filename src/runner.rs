//! Turns catalog cases into libtest trials and records what each did.
//!
//! Execution only: a trial runs its body against a fresh [`Evidence`] log
//! and leaves a [`Record`]; the reporters read the records afterwards.

use crate::schedule::Scheduler;
use harness::case::IdlePhase;
use harness::{Case, Evidence, Skip, Verdict};
use libtest_mimic::{Completion, Failed, Trial};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// What one test case did: the data every reporter works from.
#[derive(Debug, Clone)]
pub struct Record {
    pub case: Case,
    pub outcome: Outcome,
    pub duration: Duration,
    pub evidence: String,
}

pub type Records = Arc<Mutex<Vec<Record>>>;

/// One trial per case; each waits for the resources its case declares,
/// runs, and pushes its record into `records`.
pub fn trials(cases: Vec<Case>, records: &Records) -> Vec<Trial> {
    let scheduler = Arc::new(Scheduler::new());
    cases
        .into_iter()
        .map(|case| {
            let records = Arc::clone(records);
            let scheduler = Arc::clone(&scheduler);
            let id = case.id;
            Trial::ignorable_test(id, move || {
                let record = {
                    let _slot = scheduler.acquire(&case);
                    // harness::case::idle in the body pauses this slot.
                    let (sched, me) = (Arc::clone(&scheduler), case.clone());
                    harness::case::set_idle_hook(Some(Box::new(move |phase| match phase {
                        IdlePhase::Start => {
                            sched.pause(&me);
                        }
                        IdlePhase::End => sched.resume(&me),
                    })));
                    let record = run_case(case);
                    harness::case::set_idle_hook(None);
                    record
                };
                let result = match &record.outcome {
                    Outcome::Passed => Ok(Completion::Completed),
                    Outcome::Skipped(reason) => Ok(Completion::ignored_with(reason)),
                    Outcome::Failed(msg) => Err(Failed::from(msg.as_str())),
                };
                records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(record);
                result
            })
        })
        .collect()
}

fn run_case(case: Case) -> Record {
    let mut title = format!(
        "{} — {} {} [{}]",
        case.id, case.requirement, case.title, case.verdict
    );
    if !case.proves.is_empty() {
        title.push_str(&format!("\nproves: {}", case.proves));
    }
    let ev = Evidence::new(&title);
    let started = Instant::now();
    let outcome = match (case.verdict, case.body, &case.not_applicable) {
        (Verdict::NotApplicable, probe, Some(na)) if !case.tested_when_present => {
            ev.note(format!("reason: {}", na.reason));
            ev.note(format!("user action: {}", na.user_action));
            if let Some(probe) = probe {
                // Informational only: a failing probe is recorded, never a verdict.
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe(&ev))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => ev.note(format!("probe could not complete: {e:#}")),
                    Err(_) => ev.note("probe panicked"),
                }
            }
            Outcome::Skipped(format!("NA: {}", na.reason))
        }
        (_, Some(body), _) => {
            // A panic in a body is a failed case, not a crashed run: the
            // guards inside the body have already restored the system while
            // unwinding.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&ev)));
            match result {
                Ok(Ok(())) => Outcome::Passed,
                Ok(Err(e)) => match e.downcast_ref::<Skip>() {
                    Some(skip) => Outcome::Skipped(skip.0.clone()),
                    None => Outcome::Failed(format!(
                        "{} ({}) not demonstrated: {}",
                        case.requirement,
                        case.title,
                        ev.mask(&format!("{e:#}"))
                    )),
                },
                Err(panic) => Outcome::Failed(format!(
                    "{} ({}) not demonstrated: the test panicked: {}",
                    case.requirement,
                    case.title,
                    panic_message(&panic)
                )),
            }
        }
        _ => Outcome::Failed(format!("{}: the catalog entry has no body", case.id)),
    };
    match &outcome {
        Outcome::Passed => ev.note("VERDICT: PASS"),
        Outcome::Failed(msg) => ev.note(format!("VERDICT: FAIL — {msg}")),
        Outcome::Skipped(reason) => ev.note(format!("VERDICT: SKIP — {reason}")),
    }
    Record {
        duration: started.elapsed(),
        evidence: ev.render(),
        case,
        outcome,
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passing(ev: &Evidence) -> anyhow::Result<()> {
        ev.ok("fine");
        Ok(())
    }
    fn failing(_: &Evidence) -> anyhow::Result<()> {
        anyhow::bail!("wrong password accepted")
    }
    fn skipping(_: &Evidence) -> anyhow::Result<()> {
        harness::case::skip("module not installed")
    }
    fn panicking(_: &Evidence) -> anyhow::Result<()> {
        panic!("boom")
    }

    #[test]
    fn outcomes_are_recorded_with_the_requirement_in_failures() {
        let case = |id, body| Case::met(id, "CR9.9", "Title", "proves", body);
        assert_eq!(run_case(case("a", passing)).outcome, Outcome::Passed);
        let failed = run_case(case("b", failing));
        assert!(
            matches!(&failed.outcome, Outcome::Failed(m) if m.starts_with("CR9.9 (Title) not demonstrated: wrong password")),
            "{:?}",
            failed.outcome
        );
        assert!(failed.evidence.contains("VERDICT: FAIL"));
        assert_eq!(
            run_case(case("c", skipping)).outcome,
            Outcome::Skipped("module not installed".into())
        );
        assert!(
            matches!(run_case(case("d", panicking)).outcome, Outcome::Failed(m) if m.contains("boom"))
        );
    }

    #[test]
    fn an_na_requirement_tested_when_present_can_fail() {
        let na = harness::NotApplicable {
            reason: "an SL-3 requirement",
            user_action: "add it",
        };
        let case = |body| Case::not_applicable_tested("e", "CR9.9 RE2", "T", "p", body, na.clone());
        assert!(matches!(
            run_case(case(failing)).outcome,
            Outcome::Failed(_)
        ));
        assert_eq!(run_case(case(passing)).outcome, Outcome::Passed);
        // The plain NA entry never runs a body as a test.
        let plain = Case::not_applicable("f", "CR9.9", "T", na.clone()).with_probe(failing);
        assert!(matches!(run_case(plain).outcome, Outcome::Skipped(_)));
    }
}
