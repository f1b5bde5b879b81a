//! What a test case is: the catalog row (ID, requirement, title, verdict),
//! the negative controls under which it must fail, and the body that
//! produces the evidence.

use crate::Evidence;
use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

/// The assessment's verdict for the requirement a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotApplicable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "Met",
            Verdict::NotApplicable => "NA",
        })
    }
}

/// Why a requirement is NA and what the product maker has to do instead,
/// quoted from the FR-1 assessment document.
#[derive(Debug, Clone)]
pub struct NotApplicable {
    pub reason: &'static str,
    pub user_action: &'static str,
}

/// A negative control of a test case: a broken variant under which the case
/// must FAIL. A check that passes on a broken target proves nothing, so
/// every Met case declares at least one, next to its catalog row (as
/// ComplianceAsCode rules carry their tests); the negative-control matrix
/// and its coverage rule read them from the binary (`--list-controls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A broken image: `fixtures/profiles/NAME/mutate.sh` applied to the
    /// compliant one (`ci/target-image.sh run --profile NAME`).
    Profile(&'static str),
    /// The control mutates an artefact the case makes itself (a tampered
    /// certificate, a swapped CA file), not the image: the case's own
    /// refusal halves are the control, so no profile can target it.
    /// `reason` says which mutated artefacts must be refused.
    InTest { reason: &'static str },
}

/// The body of a Met test case. It returns `Ok(())` when every acceptance and
/// every refusal held; an error otherwise (or [`Skip`] when a prerequisite
/// is missing).
pub type Body = fn(&Evidence) -> anyhow::Result<()>;

/// One catalog row, as a runnable trial.
#[derive(Debug, Clone)]
pub struct Case {
    /// Test-case ID, used as the trial name (`TC_CR1.3_2`, or `CR1.2` for NA rows).
    pub id: &'static str,
    /// Requirement ID (`CR1.3`, `CR1.1 RE1`, `NDR1.6`).
    pub requirement: &'static str,
    /// Requirement title from IEC 62443-4-2.
    pub title: &'static str,
    pub verdict: Verdict,
    /// What the case proves, in one sentence (catalog "must prove").
    pub proves: &'static str,
    pub body: Option<Body>,
    pub not_applicable: Option<NotApplicable>,
    /// The negative controls under which the case must fail (see
    /// [`Control`]); none for an NA row that is never tested.
    pub controls: &'static [Control],
    /// Shared system resources the case changes or depends on (a PAM file,
    /// "faillock", "fail2ban", …). Cases naming the same resource never run
    /// at the same time; all others may run in parallel.
    pub resources: &'static [&'static str],
    /// The case must run with no other case at the same time (timing
    /// measurements, for example). The runner starts such cases last.
    pub alone: bool,
    /// The case spends most of its time waiting on the system's clock (an
    /// unlock timer): the runner starts it before the others, so the run
    /// does not end waiting for it alone.
    pub long_running: bool,
    /// The case takes several times as long as most (tens of seconds of
    /// PAM failure delays) without sleeping on a timer: the runner starts it
    /// right after the long-running ones, so the part of the run before a
    /// case that must run alone is not stretched by one late slow start.
    pub slow: bool,
    /// An NA requirement whose mechanism is tested anyway when the image
    /// has it: the body's result is the outcome, and the body skips with
    /// the NA reason when the mechanism is absent.
    pub tested_when_present: bool,
    /// Work the runner does once, before any case starts, when this case is
    /// selected: a record of the image as it was before the other cases
    /// change it (see [`Case::before_run`]).
    pub before_run: Option<BeforeRun>,
}

/// See [`Case::before_run`]. An error is printed and the case judges
/// without the record.
pub type BeforeRun = fn() -> anyhow::Result<()>;

impl Case {
    /// A Met requirement's test case.
    pub const fn met(
        id: &'static str,
        requirement: &'static str,
        title: &'static str,
        proves: &'static str,
        body: Body,
    ) -> Self {
        Case {
            id,
            requirement,
            title,
            verdict: Verdict::Met,
            proves,
            body: Some(body),
            not_applicable: None,
            controls: &[],
            resources: &[],
            alone: false,
            long_running: false,
            slow: false,
            tested_when_present: false,
            before_run: None,
        }
    }

    /// An NA requirement: reported as skipped with its reason and user action.
    /// A [`Case::with_probe`] body may record informational facts first.
    pub const fn not_applicable(
        id: &'static str,
        requirement: &'static str,
        title: &'static str,
        na: NotApplicable,
    ) -> Self {
        Case {
            id,
            requirement,
            title,
            verdict: Verdict::NotApplicable,
            proves: "",
            body: None,
            not_applicable: Some(na),
            controls: &[],
            resources: &[],
            alone: false,
            long_running: false,
            slow: false,
            tested_when_present: false,
            before_run: None,
        }
    }

    /// An NA requirement (at the assessed security level) whose mechanism
    /// the image may still ship: when present it is tested like a Met
    /// requirement; when absent `body` returns [`skip`] with `na.reason`.
    pub const fn not_applicable_tested(
        id: &'static str,
        requirement: &'static str,
        title: &'static str,
        proves: &'static str,
        body: Body,
        na: NotApplicable,
    ) -> Self {
        let mut case = Self::not_applicable(id, requirement, title, na);
        case.proves = proves;
        case.body = Some(body);
        case.tested_when_present = true;
        case
    }

    /// Declare the negative controls under which this case must fail.
    pub const fn fails_under(mut self, controls: &'static [Control]) -> Self {
        self.controls = controls;
        self
    }

    /// Declare the shared resources this case changes or depends on.
    pub const fn uses(mut self, resources: &'static [&'static str]) -> Self {
        self.resources = resources;
        self
    }

    /// Run this case with no other case at the same time.
    pub const fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// Start this case before the others: it mostly waits (see
    /// [`Case::long_running`]); pair it with [`idle`] around the wait.
    pub const fn long_running(mut self) -> Self {
        self.long_running = true;
        self
    }

    /// Start this case early: it is slow (the field `slow` says why).
    pub const fn slow(mut self) -> Self {
        self.slow = true;
        self
    }

    /// Run `record` once before any case starts, if this case is selected:
    /// for a case that judges a state the other cases' own work changes
    /// (the shadow tools rewrite the password store backups at the first
    /// `useradd`).
    pub const fn before_run(mut self, record: BeforeRun) -> Self {
        self.before_run = Some(record);
        self
    }

    /// For an NA requirement: a body that only records facts in the
    /// evidence (is a banner configured, is a TPM present). Its result never
    /// changes the verdict, which stays "skipped: NA".
    pub const fn with_probe(mut self, probe: Body) -> Self {
        self.body = Some(probe);
        self
    }
}

/// Returned (as an error) by a body whose prerequisite is missing, so the
/// runner reports a skip with this reason instead of a failure. Like LTP's
/// TCONF: the image cannot run the check, which is not the same as failing it.
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skip {}

/// Skip the current case with a reason, e.g. `return skip("sshd not installed (openssh-server)")`.
pub fn skip<T>(reason: impl Into<String>) -> anyhow::Result<T> {
    Err(Skip(reason.into()).into())
}

/// What a case found wrong, kept through the steps after it: a step that
/// cannot run (a missing program, an error) never hides a violation found
/// before it. The verdict names every violation, and the steps that could
/// not run with them; with no violation, a step that could not run is the
/// verdict (a failure, or a skip where the step said so).
#[derive(Debug, Default)]
pub struct Findings {
    violations: Vec<String>,
    not_run: Vec<anyhow::Error>,
}

impl Findings {
    pub fn violation(&mut self, what: impl Into<String>) {
        self.violations.push(what.into());
    }

    /// A step's outcome: the violations it found, or why it could not run.
    pub fn step(&mut self, outcome: anyhow::Result<Vec<String>>) {
        match outcome {
            Ok(found) => self.violations.extend(found),
            Err(e) => self.not_run.push(e),
        }
    }

    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.not_run.is_empty()
    }

    /// `Ok` when nothing was found and every step ran; otherwise the
    /// failure, headed by `what` (e.g. "weak algorithms allowed").
    pub fn verdict(self, what: &str) -> anyhow::Result<()> {
        let mut not_run = self.not_run;
        if self.violations.is_empty() {
            return match not_run.len() {
                0 => Ok(()),
                // Kept as it is: it may be a Skip.
                1 => Err(not_run.remove(0)),
                _ => Err(anyhow::anyhow!(
                    "{}",
                    not_run
                        .iter()
                        .map(|e| format!("{e:#}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            };
        }
        let mut message = format!("{what}: {}", self.violations.join("; "));
        let unchecked: Vec<String> = not_run.iter().map(|e| format!("{e:#}")).collect();
        if !unchecked.is_empty() {
            message.push_str(&format!(
                " (and not checked, as a step could not run: {})",
                unchecked.join("; ")
            ));
        }
        Err(anyhow::anyhow!(message))
    }
}

/// What [`idle`] and [`step_aside`] tell the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePhase {
    /// The case starts a pure wait, which ends at this moment if known.
    Start(Option<Instant>),
    /// The case wants to go on.
    End,
    /// A case that runs alone is between two measurements: a sleeping
    /// case whose wait ends within this horizon may go on first.
    StepAside(Duration),
}

type IdleHook = Box<dyn FnMut(IdlePhase)>;

thread_local! {
    static IDLE_HOOK: RefCell<Option<IdleHook>> = const { RefCell::new(None) };
}

/// Installed by the runner around a case body (on the thread that runs it).
pub fn set_idle_hook(hook: Option<IdleHook>) {
    IDLE_HOOK.with(|h| *h.borrow_mut() = hook);
}

fn call_idle_hook(phase: IdlePhase) {
    IDLE_HOOK.with(|h| {
        if let Some(hook) = h.borrow_mut().as_mut() {
            hook(phase);
        }
    });
}

/// Run `wait`, a pure wait (sleeping until the system's clock says so; no
/// logins, no commands), and let the runner start a case that must run
/// alone meanwhile: a sleeping case cannot disturb its timing. Before going
/// on, the case waits until no such case runs. Neither wait counts against
/// the case's time limit (see [`crate::runtime::deadline`]).
pub fn idle<T>(wait: impl FnOnce() -> T) -> T {
    idle_until(None, wait)
}

/// [`idle`], for a wait known to end at `ends`: a case that runs alone
/// meanwhile steps aside for it then ([`step_aside`]), so the timed check
/// after the wait is made on time.
fn idle_until<T>(ends: Option<Instant>, wait: impl FnOnce() -> T) -> T {
    struct Resume(Option<std::sync::Arc<crate::runtime::deadline::Deadline>>);
    impl Drop for Resume {
        fn drop(&mut self) {
            call_idle_hook(IdlePhase::End);
            // Only now: the wait to go on behind a case that runs alone is
            // idle time too.
            if let Some(deadline) = &self.0 {
                deadline.resume();
            }
        }
    }
    let deadline = crate::runtime::deadline::current();
    if let Some(deadline) = &deadline {
        deadline.pause();
    }
    call_idle_hook(IdlePhase::Start(ends));
    let _resume = Resume(deadline);
    wait()
}

/// For a case that runs alone, between two of its measurements: a
/// sleeping case whose wait ends within `horizon` (or has ended) goes on
/// first, up to its next wait or its end, so its timed check is made on
/// time; then this case goes on. Time spent here does not count against
/// the case's time limit. Without a runner (unit tests) nothing happens.
pub fn step_aside(horizon: Duration) {
    // Only the thread the runner runs the case on can step aside (a thread
    // of the case's own, see [`both`], goes on meanwhile).
    if !IDLE_HOOK.with(|h| h.borrow().is_some()) {
        return;
    }
    let deadline = crate::runtime::deadline::current();
    if let Some(deadline) = &deadline {
        deadline.pause();
    }
    call_idle_hook(IdlePhase::StepAside(horizon));
    if let Some(deadline) = &deadline {
        deadline.resume();
    }
}

/// Run `first` and `second` at the same time, `second` on a thread of its
/// own that keeps the case's deadline (a stopped run cuts its waits too),
/// and return both results. For two flows of one case that each mostly
/// wait on the system (PAM's failure delays) and do not share state.
pub fn both<A: Send, B: Send>(
    first: impl FnOnce() -> A,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    let deadline = crate::runtime::deadline::current();
    std::thread::scope(|scope| {
        let other = scope.spawn(move || {
            crate::runtime::deadline::install(deadline);
            second()
        });
        let a = first();
        let b = match other.join() {
            Ok(b) => b,
            // The panic goes on in this thread, as if it had been its own.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (a, b)
    })
}

/// [`wait_idle`] until the wall clock reaches `moment` (at once when it has):
/// for waits measured from an event the system recorded with its clock.
pub fn wait_idle_until(ev: &Evidence, why: &str, moment: std::time::SystemTime) {
    let left = moment
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    wait_idle(ev, why, left);
}

/// How often a long wait says it is still alive.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Sleep for `duration` as a pure wait ([`idle`]): a progress line on
/// stderr every 10 s, so a long wait is visibly alive, and the wait with
/// its reason in the evidence. The wait ends early if the run stops (the
/// case then fails at its next step).
pub fn wait_idle(ev: &Evidence, why: &str, duration: Duration) {
    ev.step(format!("wait {:.0} s: {why}", duration.as_secs_f64()));
    let started = Instant::now();
    idle_until(Some(started + duration), || {
        while let Some(left) = duration.checked_sub(started.elapsed()) {
            if left.is_zero() || crate::runtime::deadline::stopped() {
                break;
            }
            crate::runtime::deadline::sleep(left.min(PROGRESS_EVERY));
            let waited = started.elapsed();
            if waited < duration && !crate::runtime::deadline::stopped() {
                eprintln!(
                    "  ... {why}: {:.0} of {:.0} s waited",
                    waited.as_secs_f64(),
                    duration.as_secs_f64()
                );
            }
        }
    });
    if crate::runtime::deadline::stopped() {
        ev.note(format!(
            "the wait ({why}) ended after {:.1} s: the run stopped",
            started.elapsed().as_secs_f64()
        ));
        return;
    }
    ev.note(format!(
        "waited {:.1} s ({why}); {:.1} s including the time to resume",
        duration.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_cannot_run_never_hides_an_earlier_violation() {
        let mut f = Findings::default();
        f.violation("telnet listens on port 23");
        f.step(Err(anyhow::anyhow!("openssl is not installed")));
        let message = format!("{:#}", f.verdict("plain text").unwrap_err());
        assert_eq!(
            message,
            "plain text: telnet listens on port 23 (and not checked, as a step could not run: openssl is not installed)"
        );
    }

    #[test]
    fn without_a_violation_the_step_that_could_not_run_is_the_verdict() {
        let mut f = Findings::default();
        f.step(Ok(vec![]));
        assert!(f.is_clean());
        f.step(skip::<Vec<String>>("no sshd"));
        let e = f.verdict("x").unwrap_err();
        assert!(e.downcast_ref::<Skip>().is_some(), "{e:#}");
        assert!(Findings::default().verdict("x").is_ok());
    }
}
