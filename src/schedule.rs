//! Which trials may run at the same time.
//!
//! libtest-mimic runs trials on a pool of threads. Each case declares the
//! shared resources it changes or depends on; a trial holds them while it
//! runs, so only conflicting trials wait for each other. A case that must
//! run alone waits until no other case runs, and no case starts while it
//! waits or runs. A running case without resources may step aside while it
//! only sleeps ([`Scheduler::pause`]), so that a case that must run alone
//! does not wait for a long timer of another. In turn, the case running
//! alone steps aside between its measurements for a sleeping case whose
//! wait ends ([`Scheduler::step_aside`]): that case's timed check is due
//! then and cannot wait for the alone case to end. Once the run stops
//! ([`Scheduler::stop`]), no case starts any more.

use harness::Case;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct Scheduler {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Cases running beside others (not paused).
    shared: usize,
    /// A case that must run alone is running.
    alone: bool,
    /// Cases that must run alone and wait for their turn: they go before
    /// any case that has not started yet.
    alone_waiting: usize,
    /// Resources held by running cases.
    held: BTreeSet<&'static str>,
    /// The run stops: waiting trials give up.
    stopped: bool,
    /// Paused cases, with the moment their wait ends when known.
    sleeping: BTreeMap<&'static str, Option<Instant>>,
    /// Paused cases whose wait has ended, waiting to go on.
    resume_waiting: usize,
    /// The case running alone has stepped aside for them.
    stepping_aside: bool,
}

impl State {
    /// A paused case wants to go on now, or its wait ends within `horizon`.
    fn sleeper_due(&self, horizon: Duration) -> bool {
        let soon = Instant::now() + horizon;
        self.resume_waiting > 0
            || self
                .sleeping
                .values()
                .any(|ends| ends.is_some_and(|e| e <= soon))
    }
}

/// Held while a trial runs; dropping it lets waiting trials go on.
pub struct Slot<'a> {
    scheduler: &'a Scheduler,
    alone: bool,
    resources: &'static [&'static str],
}

/// The order in which trials are handed to the threads (reports keep the
/// catalog order). Cases that mostly wait on a timer start first, so the run
/// does not end waiting for one of them; slow cases next, so none of them
/// starts late and holds back a case that must run alone (which waits until
/// every other case has finished or sleeps); cases that must run alone
/// last, so the others are not held back behind them (a sleeping timer case
/// lets them run meanwhile). Otherwise the catalog order stays.
pub fn run_order(cases: &[Case]) -> Vec<Case> {
    let mut order = cases.to_vec();
    order.sort_by_key(|c| (c.alone, !c.long_running, !c.slow));
    order
}

impl Scheduler {
    pub fn new() -> Self {
        Scheduler {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        ready: impl Fn(&State) -> bool,
    ) -> MutexGuard<'a, State> {
        while !ready(&state) {
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state
    }

    /// Wait until a trial of `case` may run; None once the run stops. All
    /// its resources are taken at once, so two trials can never each hold
    /// what the other waits for.
    pub fn acquire(&self, case: &Case) -> Option<Slot<'_>> {
        let resources = case.resources;
        let free = move |s: &State| resources.iter().all(|r| !s.held.contains(r));
        let mut state = self.lock();
        if case.alone {
            state.alone_waiting += 1;
            state = self.wait_until(state, |s| {
                s.stopped || (!s.alone && s.shared == 0 && free(s))
            });
            state.alone_waiting -= 1;
            if state.stopped {
                return None;
            }
            state.alone = true;
        } else {
            state = self.wait_until(state, |s| {
                s.stopped || (!s.alone && s.alone_waiting == 0 && free(s))
            });
            if state.stopped {
                return None;
            }
            state.shared += 1;
        }
        state.held.extend(resources.iter().copied());
        Some(Slot {
            scheduler: self,
            alone: case.alone,
            resources,
        })
    }

    /// The run stops: no trial starts any more, and paused ones go on at
    /// once (to end: the runner has cut their time short).
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// The trial of `case` only sleeps from now on: a case that must run
    /// alone may start. Only for cases that hold no resources (a paused
    /// holder would block others, and its changes would still be in place)
    /// and do not run alone; returns whether the case was paused.
    pub fn pause(&self, case: &Case, ends: Option<Instant>) -> bool {
        if case.alone || !case.resources.is_empty() {
            return false;
        }
        let mut state = self.lock();
        state.shared -= 1;
        state.sleeping.insert(case.id, ends);
        drop(state);
        self.changed.notify_all();
        true
    }

    /// The paused trial of `case` goes on: it waits until no case runs
    /// alone (or waits to), or the one running alone steps aside, or the
    /// run stops.
    pub fn resume(&self, case: &Case) {
        if case.alone || !case.resources.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.sleeping.remove(case.id);
        state.resume_waiting += 1;
        self.changed.notify_all();
        let mut state = self.wait_until(state, |s| {
            s.stopped || s.stepping_aside || (!s.alone && s.alone_waiting == 0)
        });
        state.resume_waiting -= 1;
        state.shared += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// The case running alone (`case`) is between two measurements: if a
    /// paused case wants to go on, or its wait ends within `horizon`, let
    /// it go on until it pauses again or ends, then return. No other case
    /// starts meanwhile.
    pub fn step_aside(&self, case: &Case, horizon: Duration) {
        if !case.alone {
            return;
        }
        let mut state = self.lock();
        if !state.alone || !state.sleeper_due(horizon) {
            return;
        }
        state.stepping_aside = true;
        self.changed.notify_all();
        // Time passes without a notification (a wait nears its end): look
        // again every few milliseconds.
        while !state.stopped && (state.sleeper_due(horizon) || state.shared > 0) {
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(20))
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        state.stepping_aside = false;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.scheduler.lock();
        if self.alone {
            state.alone = false;
        } else {
            state.shared -= 1;
        }
        for r in self.resources {
            state.held.remove(r);
        }
        drop(state);
        self.scheduler.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn body(_: &harness::Evidence) -> anyhow::Result<()> {
        Ok(())
    }

    #[test]
    fn cases_sharing_a_resource_never_overlap() {
        let case = Case::met("a", "r", "t", "p", body).uses(&["pam"]);
        let sched = Arc::new(Scheduler::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (sched, inside, case) = (Arc::clone(&sched), Arc::clone(&inside), case.clone());
                std::thread::spawn(move || {
                    let _slot = sched.acquire(&case).unwrap();
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no overlap");
        }
    }

    /// A case that sleeps through a long timer steps aside for a case that
    /// must run alone, and goes on only after it.
    /// The case running alone steps aside, between two measurements, for a
    /// sleeper whose wait ends within the horizon: the sleeper's timed step
    /// runs then, and the alone case goes on once it paused again.
    #[test]
    fn an_alone_case_steps_aside_for_a_sleeper_whose_wait_ends() {
        let sched = Arc::new(Scheduler::new());
        let sleeper = Case::met("sleeper", "r", "t", "p", body).long_running();
        let alone = Case::met("alone", "r", "t", "p", body).alone();
        let log = Arc::new(Mutex::new(Vec::new()));

        let _slot = sched.acquire(&sleeper).unwrap();
        let wakes = Instant::now() + Duration::from_secs(1);
        assert!(sched.pause(&sleeper, Some(wakes)));
        let t = {
            let (sched, log, alone) = (Arc::clone(&sched), Arc::clone(&log), alone.clone());
            std::thread::spawn(move || {
                let _slot = sched.acquire(&alone).unwrap();
                log.lock().unwrap().push("alone: first measurement");
                // Nothing due within 10 ms: no step aside.
                sched.step_aside(&alone, Duration::from_millis(10));
                log.lock().unwrap().push("alone: second measurement");
                sched.step_aside(&alone, Duration::from_secs(5));
                log.lock().unwrap().push("alone: third measurement");
            })
        };
        while Instant::now() < wakes {
            std::thread::sleep(Duration::from_millis(5));
        }
        sched.resume(&sleeper);
        log.lock().unwrap().push("sleeper: timed check");
        std::thread::sleep(Duration::from_millis(30));
        assert!(sched.pause(&sleeper, None));
        t.join().unwrap();
        // Its slot ends as a runner's trial ends: after going on.
        sched.resume(&sleeper);
        assert_eq!(
            *log.lock().unwrap(),
            [
                "alone: first measurement",
                "alone: second measurement",
                "sleeper: timed check",
                "alone: third measurement"
            ]
        );
    }

    #[test]
    fn an_alone_case_runs_while_another_sleeps_and_before_it_goes_on() {
        let sched = Arc::new(Scheduler::new());
        let sleeper = Case::met("sleeper", "r", "t", "p", body).long_running();
        let alone = Case::met("alone", "r", "t", "p", body).alone();
        let log = Arc::new(Mutex::new(Vec::new()));

        let slot = sched.acquire(&sleeper).unwrap();
        assert!(sched.pause(&sleeper, None));
        let t = {
            let (sched, log) = (Arc::clone(&sched), Arc::clone(&log));
            std::thread::spawn(move || {
                let _slot = sched.acquire(&alone).unwrap();
                log.lock().unwrap().push("alone runs");
                std::thread::sleep(Duration::from_millis(50));
                log.lock().unwrap().push("alone ends");
            })
        };
        // The alone case starts although the sleeper has not finished.
        let started = Instant::now();
        while log.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "alone never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        sched.resume(&sleeper);
        log.lock().unwrap().push("sleeper goes on");
        drop(slot);
        t.join().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["alone runs", "alone ends", "sleeper goes on"]
        );
    }

    #[test]
    fn after_a_stop_waiting_trials_give_up_and_none_starts() {
        let sched = Arc::new(Scheduler::new());
        let holder = Case::met("h", "r", "t", "p", body).uses(&["pam"]);
        let slot = sched.acquire(&holder).unwrap();
        let waiter = {
            let (sched, holder) = (Arc::clone(&sched), holder.clone());
            std::thread::spawn(move || sched.acquire(&holder).is_none())
        };
        std::thread::sleep(Duration::from_millis(50));
        sched.stop();
        assert!(waiter.join().unwrap(), "the waiting trial started");
        drop(slot);
        let free = Case::met("f", "r", "t", "p", body);
        assert!(sched.acquire(&free).is_none());
    }

    #[test]
    fn timer_cases_start_first_then_slow_ones_and_alone_ones_last() {
        let cases = [
            Case::met("plain1", "r", "t", "p", body),
            Case::met("alone", "r", "t", "p", body).alone(),
            Case::met("slow", "r", "t", "p", body).slow(),
            Case::met("plain2", "r", "t", "p", body),
            Case::met("timer", "r", "t", "p", body).long_running(),
        ];
        let ids: Vec<&str> = run_order(&cases).iter().map(|c| c.id).collect();
        assert_eq!(ids, ["timer", "slow", "plain1", "plain2", "alone"]);
    }

    #[test]
    fn a_case_holding_resources_does_not_pause() {
        let sched = Scheduler::new();
        let holder = Case::met("h", "r", "t", "p", body).uses(&["pam"]);
        let _slot = sched.acquire(&holder).unwrap();
        assert!(!sched.pause(&holder, None));
    }
}
