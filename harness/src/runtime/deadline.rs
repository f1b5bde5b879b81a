//! A test case's time limit, counted in active time.
//!
//! The runner gives every case a [`Deadline`] and installs it on the thread
//! that runs the case's body ([`install`]). The harness's waits ask it how
//! long they may still take: a program run through `command::run` is killed
//! at the limit, a PTY expectation gives up there. A hung program then fails
//! its case instead of holding up the run.
//!
//! Time the case spends in [`crate::runtime::case::idle`] is not counted: that is a
//! mandated wait (faillock's unlock time, which a product may set to ten
//! minutes or more) and the wait to go on behind a case that runs alone. So
//! a case's limit is the same for every case, plus its mandated waits.
//!
//! Once the limit has cut a wait, the body is failing and unwinds; the
//! guards it drops on the way run commands of their own (`userdel`, a
//! restored file, a lifted ban). Those get the cleanup time after the
//! limit, so that the system is still put back in order.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The time limit of one run of one case body.
pub struct Deadline {
    limit: Duration,
    cleanup: Duration,
    state: Mutex<State>,
    stopped: Condvar,
}

struct State {
    started: Instant,
    /// Active time at which the case's time is up: its limit, or earlier
    /// when the run stops it.
    ends_at: Duration,
    /// Idle time of finished pauses.
    idle: Duration,
    /// The current pause, if the case is idle; `depth` counts nested ones.
    idle_since: Option<Instant>,
    depth: u32,
    /// What the case was doing when its time ran out (the first wait cut).
    cut_while: Option<String>,
    /// Why the run stopped the case before its limit.
    stopped: Option<String>,
}

impl State {
    fn active(&self) -> Duration {
        let idle_now = self.idle_since.map_or(Duration::ZERO, |t| t.elapsed());
        self.started.elapsed().saturating_sub(self.idle + idle_now)
    }
}

/// The error a wait returns when its case's time has run out.
#[derive(Debug)]
pub struct TimeLimit(pub String);

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimeLimit {}

impl Deadline {
    /// A deadline `limit` of active time from now; after the limit, waits
    /// get `cleanup` more for the guards' cleanup.
    pub fn new(limit: Duration, cleanup: Duration) -> Arc<Self> {
        Arc::new(Deadline {
            limit,
            cleanup,
            state: Mutex::new(State {
                started: Instant::now(),
                ends_at: limit,
                idle: Duration::ZERO,
                idle_since: None,
                depth: 0,
                cut_while: None,
                stopped: None,
            }),
            stopped: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Time since the start, without the time spent idle.
    pub fn active(&self) -> Duration {
        self.lock().active()
    }

    /// The case starts a pure wait: the clock stops.
    pub fn pause(&self) {
        let mut s = self.lock();
        if s.depth == 0 {
            s.idle_since = Some(Instant::now());
        }
        s.depth += 1;
    }

    /// The case goes on: the clock runs again.
    pub fn resume(&self) {
        let mut s = self.lock();
        s.depth = s.depth.saturating_sub(1);
        if s.depth == 0 {
            if let Some(since) = s.idle_since.take() {
                s.idle += since.elapsed();
            }
        }
    }

    /// How long a wait that starts now may take: until the case's time is
    /// up or, once a wait has been cut, until the end of the cleanup time.
    pub fn time_left(&self) -> Duration {
        let s = self.lock();
        let end = if s.cut_while.is_some() {
            s.ends_at + self.cleanup
        } else {
            s.ends_at
        };
        end.saturating_sub(s.active())
    }

    /// A wait ran out of time while `doing` (e.g. "running `sleep 100`"):
    /// remembered for the verdict, and returned as the error that fails
    /// the body.
    pub fn cut(&self, doing: &str) -> anyhow::Error {
        let mut s = self.lock();
        let message = if let Some(why) = &s.stopped {
            format!("{why} (while {doing})")
        } else if s.cut_while.is_some() {
            format!(
                "time limit of {} s and the {} s to clean up after it reached while {doing}",
                self.limit.as_secs(),
                self.cleanup.as_secs()
            )
        } else {
            self.reached_while(doing)
        };
        if s.cut_while.is_none() {
            s.cut_while = Some(doing.to_owned());
        }
        TimeLimit(message).into()
    }

    fn reached_while(&self, doing: &str) -> String {
        format!(
            "time limit of {} s reached while {doing}",
            self.limit.as_secs()
        )
    }

    /// Why the case failed on time, if it did: the run stopped it, a wait
    /// was cut, or its active time went past the limit where no wait was
    /// watching (`last_step` then says where it was).
    pub fn failure(&self, last_step: Option<&str>) -> Option<String> {
        let s = self.lock();
        if let Some(why) = &s.stopped {
            return Some(why.clone());
        }
        if let Some(doing) = &s.cut_while {
            return Some(self.reached_while(doing));
        }
        (s.active() > s.ends_at).then(|| match last_step {
            Some(step) => self.reached_while(step),
            None => self.reached_while("starting"),
        })
    }

    /// The run stops: the case's time is up now, for the reason `why`.
    /// An idle case wakes up.
    pub fn stop(&self, why: &str) {
        let mut s = self.lock();
        if s.stopped.is_none() {
            s.stopped = Some(why.to_owned());
            s.ends_at = s.ends_at.min(s.active());
        }
        drop(s);
        self.stopped.notify_all();
    }

    pub fn stopped(&self) -> bool {
        self.lock().stopped.is_some()
    }

    /// Active time until `margin` after the cleanup time: when the runner
    /// gives up waiting for the body.
    pub fn until_backstop(&self, margin: Duration) -> Duration {
        let s = self.lock();
        (s.ends_at + self.cleanup + margin).saturating_sub(s.active())
    }

    /// Sleep for `duration`, or less if the run stops the case meanwhile.
    pub fn sleep(&self, duration: Duration) {
        let s = self.lock();
        let _ = self
            .stopped
            .wait_timeout_while(s, duration, |s| s.stopped.is_none());
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Deadline>>> = const { RefCell::new(None) };
}

/// Installed by the runner on the thread that runs a case body (and
/// removed after it). Without one, waits are bounded only by their own
/// timeouts, as in the harness's unit tests.
pub fn install(deadline: Option<Arc<Deadline>>) {
    CURRENT.with(|c| *c.borrow_mut() = deadline);
}

/// The deadline of the case running on this thread, if any.
pub fn current() -> Option<Arc<Deadline>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Sleep for `duration`, or less if the run stops the current case.
pub fn sleep(duration: Duration) {
    match current() {
        Some(d) => d.sleep(duration),
        None => std::thread::sleep(duration),
    }
}

/// Has the run stopped the current case (so a long wait should end)?
pub fn stopped() -> bool {
    current().is_some_and(|d| d.stopped())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn idle_time_is_not_counted() {
        let wall = Instant::now();
        let d = Deadline::new(Duration::from_secs(10), Duration::ZERO);
        std::thread::sleep(20 * MS);
        d.pause();
        std::thread::sleep(300 * MS);
        // However late the sleeps ended, the 300 ms idle are not counted.
        assert!(d.active() + 300 * MS <= wall.elapsed(), "{:?}", d.active());
        d.resume();
        assert!(d.active() >= 20 * MS);
        assert!(d.failure(None).is_none());
    }

    #[test]
    fn a_mandated_wait_extends_the_deadline_past_the_limit() {
        let d = Deadline::new(500 * MS, Duration::ZERO);
        d.pause();
        d.pause(); // nested pauses count once
        std::thread::sleep(700 * MS);
        d.resume();
        d.resume();
        // Past the limit in wall time, not in active time.
        assert!(d.time_left() > Duration::ZERO);
        assert!(d.failure(None).is_none());
        std::thread::sleep(500 * MS);
        assert_eq!(d.time_left(), Duration::ZERO);
        assert!(d.failure(None).is_some());
    }

    #[test]
    fn past_the_limit_the_first_wait_fails_and_cleanup_gets_its_time() {
        let d = Deadline::new(20 * MS, 10_000 * MS);
        std::thread::sleep(30 * MS);
        assert_eq!(d.time_left(), Duration::ZERO);
        assert_eq!(
            d.failure(Some("logging in")).as_deref(),
            Some("time limit of 0 s reached while logging in")
        );
        let err = d.cut("running `sleep 100`").to_string();
        assert_eq!(err, "time limit of 0 s reached while running `sleep 100`");
        // The guards' commands now get the cleanup time.
        assert!(d.time_left() > Duration::from_secs(9));
        assert_eq!(
            d.failure(Some("logging in")).as_deref(),
            Some("time limit of 0 s reached while running `sleep 100`")
        );
        assert!(d.until_backstop(Duration::from_secs(5)) > Duration::from_secs(14));
    }

    #[test]
    fn a_stop_ends_the_time_and_wakes_a_sleeper() {
        let d = Deadline::new(Duration::from_secs(100), Duration::ZERO);
        let sleeper = {
            let d = Arc::clone(&d);
            std::thread::spawn(move || {
                let started = Instant::now();
                d.sleep(Duration::from_secs(30));
                started.elapsed()
            })
        };
        std::thread::sleep(50 * MS);
        d.stop("the run stopped after TC_X exceeded its time limit");
        let slept = sleeper.join().unwrap();
        assert!(slept < Duration::from_secs(5), "{slept:?}");
        assert_eq!(d.time_left(), Duration::ZERO);
        assert_eq!(
            d.failure(None).as_deref(),
            Some("the run stopped after TC_X exceeded its time limit")
        );
    }
}
