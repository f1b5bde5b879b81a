//! Which trials may run at the same time.
//!
//! libtest-mimic runs trials on a pool of threads. Each case declares the
//! shared resources it changes or depends on; a trial holds a lock per
//! resource while it runs, so only conflicting trials wait for each other.
//! A case that must run alone takes the whole run exclusively.

use harness::Case;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub struct Scheduler {
    everything: RwLock<()>,
    resources: BTreeMap<&'static str, Mutex<()>>,
}

/// Held while a trial runs; dropping it lets conflicting trials go on.
pub struct Slot<'a> {
    _resources: Vec<MutexGuard<'a, ()>>,
    _shared: Option<RwLockReadGuard<'a, ()>>,
    _exclusive: Option<RwLockWriteGuard<'a, ()>>,
}

impl Scheduler {
    /// One lock per resource any of `cases` declares.
    pub fn new(cases: &[Case]) -> Self {
        Scheduler {
            everything: RwLock::new(()),
            resources: cases
                .iter()
                .flat_map(|c| c.resources.iter().copied())
                .map(|r| (r, Mutex::new(())))
                .collect(),
        }
    }

    /// Wait until a trial of `case` may run.
    pub fn acquire(&self, case: &Case) -> Slot<'_> {
        let (shared, exclusive) = if case.alone {
            (
                None,
                Some(self.everything.write().unwrap_or_else(|p| p.into_inner())),
            )
        } else {
            (
                Some(self.everything.read().unwrap_or_else(|p| p.into_inner())),
                None,
            )
        };
        // Locks are taken in the map's sorted order, so two trials can never
        // each hold what the other waits for.
        let resources = self
            .resources
            .iter()
            .filter(|(name, _)| case.resources.contains(name))
            .map(|(_, lock)| lock.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        Slot {
            _resources: resources,
            _shared: shared,
            _exclusive: exclusive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn body(_: &harness::Evidence) -> anyhow::Result<()> {
        Ok(())
    }

    #[test]
    fn cases_sharing_a_resource_never_overlap() {
        let case = Case::met("a", "r", "t", "p", body).uses(&["pam"]);
        let sched = Arc::new(Scheduler::new(std::slice::from_ref(&case)));
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (sched, inside, case) = (Arc::clone(&sched), Arc::clone(&inside), case.clone());
                std::thread::spawn(move || {
                    let _slot = sched.acquire(&case);
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
}
