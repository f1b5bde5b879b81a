//! Run-level safety: one run at a time, undo what an interrupted run left,
//! and undo at once on SIGINT/SIGTERM/SIGHUP.
//!
//! The undo itself is the journal's replay (harness::journal), the same
//! code whether the interruption was a Ctrl-C, a LAVA timeout's SIGTERM or
//! a SIGKILL/power loss found by the next run.

use anyhow::{bail, Context, Result};
use harness::journal;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigSet, Signal};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held for the whole run: a second run refuses to start.
pub struct RunLock {
    _lock: Flock<File>,
}

pub fn lock(dir: &Path) -> Result<RunLock> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            // The PID in the lock file is for the message a second run prints.
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = write!(lock, "{}", std::process::id());
            Ok(RunLock { _lock: lock })
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another cip-iec-fr1-tests run (pid {}) is in progress; runs change accounts \
                 and must not overlap",
                pid.trim()
            )
        }
    }
}

/// Undo what an interrupted earlier run left behind, printing each step.
pub fn recover(dir: &Path) -> Result<usize> {
    if journal::pending(dir)?.is_empty() {
        // Also clears a journal whose changes were all done.
        journal::replay(dir)?;
        return Ok(0);
    }
    eprintln!("cip-iec-fr1-tests: an interrupted run left changes behind; undoing them first:");
    let lines = journal::replay(dir)?;
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
            journal::close();
            std::thread::sleep(CHANGES_IN_FLIGHT);
            // Held until the process exits: an account tool waiting for it
            // (its account journaled before the close) never runs.
            let accounts = harness::command::account_db_lock();
            match journal::replay_holding(&dir, &accounts) {
                Ok(lines) => lines.iter().for_each(|l| eprintln!("  {l}")),
                Err(e) => eprintln!("cip-iec-fr1-tests: undo failed: {e:#}; run --cleanup"),
            }
            std::process::exit(128 + signal as i32);
        })
        .context("starting the signal watcher")?;
    Ok(())
}
