//! Run-level safety: one run at a time, undo what an interrupted run left,
//! and undo at once on SIGINT/SIGTERM/SIGHUP.
//!
//! The undo itself is the journal's replay (harness::runner_api::replay), the same
//! code whether the interruption was a Ctrl-C, a LAVA timeout's SIGTERM or
//! a SIGKILL/power loss found by the next run.

use anyhow::{bail, Context, Result};
use harness::runner_api;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigSet, Signal};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held for the whole run: a second run refuses to start.
pub struct RunLock {
    _lock: Flock<File>,
}

/// How long a run (or `--cleanup`) waits for the lock before it refuses.
/// A run killed with SIGKILL holds it until the kernel has ended the last
/// of its processes (a program it forked that had not yet started), which
/// is a moment, not a run: a recovery started right after the kill must
/// wait for that, not refuse and leave the changes in place.
const LOCK_WAIT: Duration = Duration::from_secs(20);
const LOCK_POLL: Duration = Duration::from_millis(100);

pub fn lock(dir: &Path) -> Result<RunLock> {
    lock_within(dir, LOCK_WAIT)
}

/// [`lock`], waiting at most `wait` for another holder.
fn lock_within(dir: &Path, wait: Duration) -> Result<RunLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let started = Instant::now();
    let mut said = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                // The PID in the lock file is for the message another run prints.
                let _ = lock.set_len(0);
                let _ = lock.rewind();
                let _ = write!(lock, "{}", std::process::id());
                // A program the suite forks must not hold the lock while it
                // waits to start (see harness::runtime::process::run_lock_fd).
                runner_api::set_run_lock_fd(lock.as_raw_fd());
                return Ok(RunLock { _lock: lock });
            }
            Err((mut held, _)) => {
                let mut pid = String::new();
                let _ = held.rewind();
                let _ = held.read_to_string(&mut pid);
                let holder = describe_holder(pid.trim());
                if started.elapsed() >= wait {
                    bail!(
                        "another cip-iec-fr1-tests run ({holder}) is in progress; runs change accounts \
                         and must not overlap (waited {} s for it)",
                        wait.as_secs()
                    );
                }
                if !said {
                    eprintln!(
                        "cip-iec-fr1-tests: waiting up to {} s for the run lock {}: {holder}",
                        wait.as_secs(),
                        path.display()
                    );
                    said = true;
                }
                std::thread::sleep(LOCK_POLL);
                file = held;
            }
        }
    }
}

/// Who holds the lock, from the PID the holder wrote into it.
fn describe_holder(pid: &str) -> String {
    match pid.parse::<i32>() {
        Ok(n) if Path::new(&format!("/proc/{n}")).exists() => format!("pid {n}, still running"),
        Ok(n) => format!("pid {n}, which has ended: its last processes are going"),
        Err(_) => "a run that has not written its pid yet".to_owned(),
    }
}

/// Undo what an interrupted earlier run left behind, printing each step.
pub fn recover(dir: &Path) -> Result<usize> {
    let replay = || {
        runner_api::replay(dir)
            .with_context(|| format!("undoing the changes journaled in {}", dir.display()))
    };
    let pending = runner_api::pending(dir)
        .with_context(|| format!("reading the undo journal in {}", dir.display()))?;
    if pending.is_empty() {
        // Also clears a journal whose changes were all done.
        replay()?;
        return Ok(0);
    }
    eprintln!("cip-iec-fr1-tests: an interrupted run left changes behind; undoing them first:");
    let lines = replay()?;
    for line in &lines {
        eprintln!("  {line}");
    }
    Ok(lines.len())
}

/// How long the undo on a signal lets a change that was journaled just
/// before the journal closed land, so the undo comes after it.
const CHANGES_IN_FLIGHT: std::time::Duration = std::time::Duration::from_millis(200);

/// Block the termination signals in this (the main) thread before any
/// other thread exists, so every thread inherits the mask and only the
/// watcher thread receives them. Child processes start with a clean mask
/// (std's Command resets it).
pub fn watch_signals(dir: &Path) -> Result<()> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("blocking termination signals")?;
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .name("signal-watcher".into())
        .spawn(move || {
            let Ok(signal) = set.wait() else { return };
            eprintln!("\ncip-iec-fr1-tests: {signal}: undoing every change of this run");
            // The test threads go on meanwhile. From here on they cannot
            // start a change (the journal refuses to record one); one that
            // was journaled just before lands at once after its entry (a
            // file write, a directory, `ip netns add`), given a moment.
            runner_api::close();
            std::thread::sleep(CHANGES_IN_FLIGHT);
            // Held until the process exits: an account tool waiting for it
            // (its account journaled before the close) never runs.
            let accounts = runner_api::account_db_lock();
            match runner_api::replay_holding(&dir, &accounts) {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("  {l}")),
                Err(e) => eprintln!("cip-iec-fr1-tests: undo failed: {e:#}; run --cleanup"),
            }
            std::process::exit(128 + signal as i32);
        })
        .context("starting the signal watcher")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_waits_for_the_lock_then_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_within(dir.path(), Duration::ZERO).unwrap();
        let path = dir.path().to_path_buf();
        let second = std::thread::spawn(move || lock_within(&path, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(300));
        // The holder goes, as a killed run's last process does.
        drop(first);
        assert!(second.join().unwrap().is_ok());
    }

    #[test]
    fn the_wait_for_a_run_in_progress_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let _first = lock_within(dir.path(), Duration::ZERO).unwrap();
        let started = Instant::now();
        let Err(err) = lock_within(dir.path(), Duration::from_millis(300)) else {
            panic!("a second lock while the first is held");
        };
        assert!(started.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}, still running", std::process::id())),
            "{text}"
        );
    }
}
