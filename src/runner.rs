//! Turns catalog cases into libtest trials and records what each did.
//!
//! Execution only: a trial waits for its turn (schedule), runs its body
//! under its time limit (watchdog) against a fresh [`Evidence`] log and
//! leaves a [`Record`]; the reporters read the records afterwards.

use crate::schedule::Scheduler;
use crate::watchdog::{self, Ended, Limits, Watchdog};
use harness::runner_api::{Body, IdlePhase};
use harness::{Case, Evidence, Skip, Verdict};
use libtest_mimic::{Completion, Failed, Trial};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// The body found the requirement violated (or hit an error on its way).
    Failed(String),
    /// The case could not show anything: a missing prerequisite, its time
    /// limit, a panic, or the run stopped before it. A failure like
    /// `Failed` for every reporter but the assessor's report, which words
    /// it apart.
    NotDemonstrated(String),
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
/// runs under `limits`, and pushes its record into `records`.
pub fn trials(cases: Vec<Case>, records: &Records, limits: Limits) -> Vec<Trial> {
    let run = Arc::new(Run::new(limits));
    cases
        .into_iter()
        .map(|case| {
            let records = Arc::clone(records);
            let run = Arc::clone(&run);
            Trial::ignorable_test(case.id, move || {
                let record = run.trial(case);
                let result = match &record.outcome {
                    Outcome::Passed => Ok(Completion::Completed),
                    Outcome::Skipped(reason) => Ok(Completion::ignored_with(reason)),
                    Outcome::Failed(msg) | Outcome::NotDemonstrated(msg) => {
                        Err(Failed::from(msg.as_str()))
                    }
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

/// What the trials of one run share.
struct Run {
    scheduler: Arc<Scheduler>,
    watchdog: Watchdog,
}

/// How a body (or an NA probe) ended, as its verdict needs it.
enum BodyEnd {
    Returned(anyhow::Result<()>),
    Panicked(String),
    /// Its time ran out (or the run stopped it): why.
    OutOfTime(String),
    /// It did not return by the backstop and was left behind: why.
    GivenUp(String),
}

impl Run {
    fn new(limits: Limits) -> Self {
        Run {
            scheduler: Arc::new(Scheduler::new()),
            watchdog: Watchdog::new(limits),
        }
    }

    /// Wait for the case's turn, run it and say what it did.
    fn trial(&self, case: Case) -> Record {
        match self.scheduler.acquire(&case) {
            Some(_slot) => self.run_case(case),
            None => not_run(case, self.watchdog.stopped_by()),
        }
    }

    fn run_case(&self, case: Case) -> Record {
        let ev = Evidence::new(&title(&case));
        let started = Instant::now();
        let outcome = match (case.verdict, case.body, &case.not_applicable) {
            (Verdict::NotApplicable, probe, Some(na)) if !case.tested_when_present => {
                ev.note(format!("reason: {}", na.reason));
                ev.note(format!("user action: {}", na.user_action));
                // Informational only: a failing probe is recorded, never a
                // verdict, unless it had to be given up on.
                match probe.map(|probe| self.execute(&case, &ev, probe)) {
                    None | Some(BodyEnd::Returned(Ok(()))) => {
                        Outcome::Skipped(format!("NA: {}", na.reason))
                    }
                    Some(BodyEnd::Returned(Err(e))) => {
                        ev.note(format!("probe could not complete: {e:#}"));
                        Outcome::Skipped(format!("NA: {}", na.reason))
                    }
                    Some(BodyEnd::Panicked(_)) => {
                        ev.note("probe panicked");
                        Outcome::Skipped(format!("NA: {}", na.reason))
                    }
                    Some(BodyEnd::OutOfTime(why)) => {
                        ev.note(format!("probe could not complete: {why}"));
                        Outcome::Skipped(format!("NA: {}", na.reason))
                    }
                    Some(BodyEnd::GivenUp(why)) => incomplete(&case, &why),
                }
            }
            (_, Some(body), _) => match self.execute(&case, &ev, body) {
                BodyEnd::Returned(Ok(())) => Outcome::Passed,
                BodyEnd::Returned(Err(e)) => match e.downcast_ref::<Skip>() {
                    // A Met requirement is never skipped: without its
                    // prerequisite (a program, a running service, a log
                    // the suite can read) it is simply not demonstrated.
                    // Only an NA row tested when present may skip.
                    Some(skip) if case.verdict == Verdict::Met => {
                        incomplete(&case, &format!("a prerequisite is missing: {}", skip.0))
                    }
                    Some(skip) => Outcome::Skipped(skip.0.clone()),
                    None => not_demonstrated(&case, &ev.mask(&format!("{e:#}"))),
                },
                BodyEnd::Panicked(msg) => incomplete(&case, &format!("the test panicked: {msg}")),
                BodyEnd::OutOfTime(why) | BodyEnd::GivenUp(why) => incomplete(&case, &why),
            },
            _ => Outcome::Failed(format!("{}: the catalog entry has no body", case.id)),
        };
        match &outcome {
            Outcome::Passed => ev.note("VERDICT: PASS"),
            Outcome::Failed(msg) | Outcome::NotDemonstrated(msg) => {
                ev.note(format!("VERDICT: FAIL — {msg}"))
            }
            Outcome::Skipped(reason) => ev.note(format!("VERDICT: SKIP — {reason}")),
        }
        Record {
            duration: started.elapsed(),
            evidence: ev.render(),
            case,
            outcome,
        }
    }

    /// Run `body` under the watchdog, with harness::runtime::case::idle pausing the
    /// case's slot (the hook is per thread: it is installed on the body's).
    /// Running out of time outweighs whatever the body returned: a body
    /// that goes on after a cut wait has not shown what it should.
    fn execute(&self, case: &Case, ev: &Evidence, body: Body) -> BodyEnd {
        let (scheduler, me, body_ev) = (Arc::clone(&self.scheduler), case.clone(), ev.clone());
        let (ended, deadline) = self.watchdog.run(case.id, move || {
            harness::runner_api::set_idle_hook(Some(Box::new(move |phase| match phase {
                IdlePhase::Start(ends) => {
                    scheduler.pause(&me, ends);
                }
                IdlePhase::End => scheduler.resume(&me),
                IdlePhase::StepAside(horizon) => scheduler.step_aside(&me, horizon),
            })));
            let result = body(&body_ev);
            harness::runner_api::set_idle_hook(None);
            result
        });
        let out_of_time = deadline.failure(ev.last_step().as_deref());
        match (ended, out_of_time) {
            (Ended::Overran, why) => {
                let limits = self.watchdog.limits();
                let why = why.unwrap_or_else(|| {
                    format!("time limit of {} s reached", limits.limit.as_secs())
                });
                ev.note(format!(
                    "the test case did not end within {} s after its time limit; given up on, \
                     the run stops",
                    (limits.cleanup + limits.margin).as_secs()
                ));
                if self.watchdog.stop(case.id) {
                    eprintln!(
                        "cip-iec-fr1-tests: {} did not end within its time limit ({why}); \
                         stopping the run: no further test case starts, running ones are cut \
                         short, then every change is undone",
                        case.id
                    );
                    self.scheduler.stop();
                }
                BodyEnd::GivenUp(why)
            }
            (Ended::Returned(_), Some(why)) => BodyEnd::OutOfTime(why),
            (Ended::Returned(Ok(result)), None) => BodyEnd::Returned(result),
            (Ended::Returned(Err(panic)), None) => BodyEnd::Panicked(panic_message(&panic)),
        }
    }
}

/// The head of a case's evidence.
fn title(case: &Case) -> String {
    let mut title = format!(
        "{} — {} {} [{}]",
        case.id, case.requirement, case.title, case.verdict
    );
    if !case.proves.is_empty() {
        title.push_str(&format!("\nproves: {}", case.proves));
    }
    title
}

/// A failure that names the requirement, like every failed case's.
fn not_demonstrated(case: &Case, why: &str) -> Outcome {
    Outcome::Failed(format!(
        "{} ({}) not demonstrated: {why}",
        case.requirement, case.title
    ))
}

/// A case that could not show anything either way: worded like every
/// failure, told apart in the assessor's report.
fn incomplete(case: &Case, why: &str) -> Outcome {
    match not_demonstrated(case, why) {
        Outcome::Failed(msg) => Outcome::NotDemonstrated(msg),
        other => other,
    }
}

/// The record of a case that never started because the run stopped.
fn not_run(case: Case, stopped_by: Option<&str>) -> Record {
    let why = format!(
        "not run: {}",
        stopped_by.map_or_else(|| "the run stopped".to_owned(), watchdog::stop_reason)
    );
    let ev = Evidence::new(&title(&case));
    ev.note(format!("VERDICT: FAIL — {why}"));
    Record {
        duration: Duration::ZERO,
        evidence: ev.render(),
        case,
        outcome: Outcome::NotDemonstrated(why),
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
        harness::runtime::case::skip("module not installed")
    }
    fn panicking(_: &Evidence) -> anyhow::Result<()> {
        panic!("boom")
    }
    /// Stuck where the harness does not look.
    fn hanging(ev: &Evidence) -> anyhow::Result<()> {
        ev.step("wait for a reply that never comes");
        std::thread::sleep(Duration::from_secs(10));
        Ok(())
    }
    /// Stuck in a program the harness runs.
    fn running_long(ev: &Evidence) -> anyhow::Result<()> {
        ev.step("run a program that hangs");
        harness::runtime::command::sh(ev, "sh", &["-c", "sleep 100"])?;
        Ok(())
    }
    /// Ignores the cut and claims success.
    fn swallowing(ev: &Evidence) -> anyhow::Result<()> {
        let _ = harness::runtime::command::sh(ev, "sh", &["-c", "sleep 100"]);
        Ok(())
    }

    fn limits(limit: Duration) -> Limits {
        Limits {
            limit,
            cleanup: Duration::from_millis(300),
            margin: Duration::from_millis(300),
        }
    }

    fn run_case(case: Case) -> Record {
        Run::new(Limits::new(Duration::from_secs(60))).run_case(case)
    }

    fn case(id: &'static str, body: Body) -> Case {
        Case::met(id, "CR9.9", "Title", "proves", body)
    }

    /// A trial under a 1 s limit, which must end long before a hung body
    /// would.
    fn trial_at_one_second(run: &Run, id: &'static str, body: Body) -> Record {
        let started = Instant::now();
        let record = run.trial(case(id, body));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        record
    }

    #[test]
    fn outcomes_are_recorded_with_the_requirement_in_failures() {
        assert_eq!(run_case(case("a", passing)).outcome, Outcome::Passed);
        let failed = run_case(case("b", failing));
        assert!(
            matches!(&failed.outcome, Outcome::Failed(m) if m.starts_with("CR9.9 (Title) not demonstrated: wrong password")),
            "{:?}",
            failed.outcome
        );
        assert!(failed.evidence.contains("VERDICT: FAIL"));
        // A Met case that cannot run is not demonstrated, never skipped.
        assert_eq!(
            run_case(case("c", skipping)).outcome,
            Outcome::NotDemonstrated(
                "CR9.9 (Title) not demonstrated: a prerequisite is missing: module not installed"
                    .into()
            )
        );
        assert!(
            matches!(run_case(case("d", panicking)).outcome, Outcome::NotDemonstrated(m) if m.contains("boom"))
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
        assert_eq!(
            run_case(case(skipping)).outcome,
            Outcome::Skipped("module not installed".into())
        );
        // The plain NA entry never runs a body as a test.
        let plain = Case::not_applicable("f", "CR9.9", "T", na.clone()).with_probe(failing);
        assert!(matches!(run_case(plain).outcome, Outcome::Skipped(_)));
    }

    #[test]
    fn a_hung_body_fails_at_the_backstop_and_stops_the_run() {
        let run = Run::new(limits(Duration::from_secs(1)));
        let record = trial_at_one_second(&run, "TC_HUNG", hanging);
        assert_eq!(
            record.outcome,
            Outcome::NotDemonstrated(
                "CR9.9 (Title) not demonstrated: time limit of 1 s reached while wait for a \
                 reply that never comes"
                    .into()
            )
        );
        let last = record.evidence.lines().last().unwrap_or_default();
        assert!(last.contains("VERDICT: FAIL"), "{}", record.evidence);
        assert!(record.evidence.contains("STEP wait for a reply"));
        // Nothing starts beside the body left behind.
        assert_eq!(run.watchdog.stopped_by(), Some("TC_HUNG"));
        assert_eq!(
            run.trial(case("TC_NEXT", passing)).outcome,
            Outcome::NotDemonstrated(
                "not run: the run stopped after TC_HUNG exceeded its time limit".into()
            )
        );
    }

    #[test]
    fn a_hung_program_fails_its_case_at_the_limit_and_the_run_goes_on() {
        let run = Run::new(limits(Duration::from_secs(1)));
        let record = trial_at_one_second(&run, "TC_SLOW", running_long);
        assert_eq!(
            record.outcome,
            Outcome::NotDemonstrated(
                "CR9.9 (Title) not demonstrated: time limit of 1 s reached while running \
                 `sh -c 'sleep 100'`"
                    .into()
            )
        );
        assert!(record
            .evidence
            .contains("killed: the test case's time ran out"));
        assert_eq!(run.watchdog.stopped_by(), None);
        assert_eq!(run.trial(case("TC_NEXT", passing)).outcome, Outcome::Passed);
        // A body that ignores the cut has not shown anything either.
        assert!(matches!(
            run.trial(case("TC_SWALLOW", swallowing)).outcome,
            Outcome::NotDemonstrated(m) if m.contains("time limit of 1 s reached while running `sh -c 'sleep 100'`")
        ));
    }
}
