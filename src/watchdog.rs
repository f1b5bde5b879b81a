//! Every test case's time limit, and the backstop behind it.
//!
//! Each body runs on a thread of its own with a deadline
//! (harness::runtime::deadline) installed there: the harness cuts its commands and
//! PTY waits at the limit, so a hung `login` or program fails the case, and
//! the case's guards clean up as it unwinds. A body stuck where the harness
//! does not look (a blocking call in the case's own code) is caught here:
//! the trial waits for it only until the cleanup time after the limit and
//! a margin have passed, then gives up on it.
//!
//! A body given up on may still hold accounts, files or servers, so the run
//! must not go on beside it: the watchdog then stops the run. The deadlines
//! of the bodies still running are cut short (their guards clean up), cases
//! not started yet are not run (see the runner), and the main thread
//! undoes the journal and writes the reports.

use harness::runner_api::{deadline, Deadline};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Active time a case may take unless `--time-limit` says otherwise. The
/// slowest case, TC_CR1.10_1 (timing medians over many logins with PAM's
/// failure delay), takes about 60 s natively and 90 s in QEMU without KVM
/// on a loaded machine: twice that leaves room for a slow board, and a hung
/// case still costs the run only a few minutes.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(180);

/// After the limit: time for the guards' cleanup (`userdel`, restored
/// files, lifted bans) as the failing body unwinds.
const CLEANUP: Duration = Duration::from_secs(20);

/// After the cleanup time: how much longer the trial waits for the body to
/// return before it gives up on it (a cleanup command cut at the end of its
/// time still has to be killed and reaped).
const MARGIN: Duration = Duration::from_secs(10);

/// How often a waiting trial looks at its deadline again: a stop of the run
/// brings the backstop forward.
const LOOK_AGAIN: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Active time a case may take (idle time not counted).
    pub limit: Duration,
    /// After the limit, for the guards' cleanup.
    pub cleanup: Duration,
    /// After the cleanup time, before the body is given up on.
    pub margin: Duration,
}

impl Limits {
    pub fn new(limit: Duration) -> Self {
        Limits {
            limit,
            cleanup: CLEANUP,
            margin: MARGIN,
        }
    }
}

/// How a body's thread ended.
pub enum Ended<T> {
    /// It returned (or panicked: the payload).
    Returned(std::thread::Result<T>),
    /// It did not return by the backstop; its thread is left behind.
    Overran,
}

pub struct Watchdog {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The deadlines of the bodies running now.
    running: Vec<Arc<Deadline>>,
    /// The case whose body was given up on, once one was: the run stops.
    stopped_by: Option<&'static str>,
}

impl Watchdog {
    pub fn new(limits: Limits) -> Self {
        Watchdog {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run `body` for case `id` on a thread of its own under a new
    /// deadline, and wait for it until the backstop. Also returns the
    /// deadline, which says whether the case ran out of time.
    pub fn run<T: Send + 'static>(
        &self,
        id: &'static str,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> (Ended<T>, Arc<Deadline>) {
        let deadline = Deadline::new(self.limits.limit, self.limits.cleanup);
        {
            let mut state = self.lock();
            // A case that got its slot just before the stop.
            if let Some(by) = state.stopped_by {
                deadline.stop(&stop_reason(by));
            }
            state.running.push(Arc::clone(&deadline));
        }
        let (done, result) = mpsc::channel();
        let thread_deadline = Arc::clone(&deadline);
        let spawned = std::thread::Builder::new()
            .name(id.to_owned())
            .spawn(move || {
                deadline::install(Some(thread_deadline));
                let result = std::panic::catch_unwind(AssertUnwindSafe(body));
                deadline::install(None);
                let _ = done.send(result);
            });
        let ended = match spawned {
            Err(e) => Ended::Returned(Err(Box::new(format!(
                "cannot start a thread for the test case: {e}"
            )))),
            // Not joined: a body given up on keeps its thread.
            Ok(_thread) => loop {
                let left = deadline.until_backstop(self.limits.margin);
                match result.recv_timeout(left.min(LOOK_AGAIN)) {
                    Ok(result) => break Ended::Returned(result),
                    Err(RecvTimeoutError::Timeout) => {
                        if deadline.until_backstop(self.limits.margin).is_zero() {
                            break Ended::Overran;
                        }
                    }
                    // The thread catches panics, so it always sends.
                    Err(RecvTimeoutError::Disconnected) => {
                        break Ended::Returned(Err(Box::new(
                            "the test case's thread ended without a result",
                        )))
                    }
                }
            },
        };
        self.lock().running.retain(|d| !Arc::ptr_eq(d, &deadline));
        (ended, deadline)
    }

    /// Stop the run because the body of `id` was given up on: every
    /// running body's time is up now. False if the run was already
    /// stopping.
    pub fn stop(&self, id: &'static str) -> bool {
        let mut state = self.lock();
        if state.stopped_by.is_some() {
            return false;
        }
        state.stopped_by = Some(id);
        let why = stop_reason(id);
        for d in &state.running {
            d.stop(&why);
        }
        true
    }

    /// The case whose body was given up on, if the run stops.
    pub fn stopped_by(&self) -> Option<&'static str> {
        self.lock().stopped_by
    }
}

/// Why a case was cut short or not run.
pub fn stop_reason(id: &str) -> String {
    format!("the run stopped after {id} exceeded its time limit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn tiny(limit_ms: u64) -> Limits {
        Limits {
            limit: Duration::from_millis(limit_ms),
            cleanup: Duration::from_millis(100),
            margin: Duration::from_millis(100),
        }
    }

    #[test]
    fn a_body_that_returns_in_time_is_waited_for() {
        let watchdog = Watchdog::new(tiny(5_000));
        let (ended, deadline) = watchdog.run("a", || 42);
        assert!(matches!(ended, Ended::Returned(Ok(42))));
        assert!(deadline.failure(None).is_none());
    }

    #[test]
    fn a_stuck_body_is_given_up_on_at_the_backstop() {
        let watchdog = Watchdog::new(tiny(200));
        let started = Instant::now();
        let (ended, deadline) = watchdog.run("a", || std::thread::sleep(Duration::from_secs(5)));
        assert!(matches!(ended, Ended::Overran));
        // limit + cleanup + margin, give or take the one-second look.
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(deadline.failure(Some("sleeping")).is_some());
    }

    #[test]
    fn a_stop_cuts_the_running_bodies_short() {
        let watchdog = Arc::new(Watchdog::new(tiny(60_000)));
        let sleeper = {
            let watchdog = Arc::clone(&watchdog);
            std::thread::spawn(move || {
                watchdog.run("b", || {
                    deadline::sleep(Duration::from_secs(30));
                    deadline::stopped()
                })
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(watchdog.stop("a"));
        assert!(!watchdog.stop("c"), "the first stop counts");
        let (ended, deadline) = sleeper.join().unwrap();
        assert!(matches!(ended, Ended::Returned(Ok(true))));
        assert_eq!(
            deadline.failure(None).as_deref(),
            Some("the run stopped after a exceeded its time limit")
        );
        // A body that starts after the stop has no time at all.
        let (_, late) = watchdog.run("d", || ());
        assert!(late.failure(None).is_some());
        assert_eq!(watchdog.stopped_by(), Some("a"));
    }
}
