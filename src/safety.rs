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
/// How long the lock of an ended run may stay held before its holders are
/// taken for forked copies that will never exec (see
/// [`runner_api::end_copies_holding`]): the kernel ends a killed run's
/// own children sooner.
const COPY_GRACE: Duration = Duration::from_secs(3);

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
    let mut ended_copies = false;
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
                if !ended_copies && started.elapsed() >= COPY_GRACE && holder_has_ended(&pid) {
                    ended_copies = true;
                    end_copies_of_ended_run(&path, &mut held, &pid);
                }
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

/// Whether the run whose PID is in the lock file has ended.
fn holder_has_ended(pid: &str) -> bool {
    pid.trim()
        .parse::<i32>()
        .is_ok_and(|n| !Path::new(&format!("/proc/{n}")).exists())
}

/// The run that wrote `pid` into the lock has ended, yet the lock is still
/// held: by children it forked that never reached their exec. End them.
/// The file is read once more first: a run that took the lock meanwhile
/// (the copies gone) has its own PID there, and is not touched.
fn end_copies_of_ended_run(path: &Path, lock_file: &mut File, pid: &str) {
    let mut now = String::new();
    let _ = lock_file.rewind();
    let _ = lock_file.read_to_string(&mut now);
    if now != pid {
        return;
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    for copy in runner_api::end_copies_holding(&canonical) {
        eprintln!(
            "cip-iec-fr1-tests: ended {copy}, a copy of the ended run {} that still held \
             its lock (forked, it never started its program)",
            pid.trim()
        );
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
    fn a_forked_copy_of_an_ended_run_that_holds_the_lock_is_ended() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().join("lock").as_os_str().as_bytes()).unwrap();
        // The run that wrote its PID has ended.
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        let ended_pid = ended.id().to_string();
        ended.wait().unwrap();
        let (ready, ready_in_child) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only makes system calls (open, flock, write,
        // close, pause, _exit) before it is killed.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                let fd =
                    nix::libc::open(path.as_ptr(), nix::libc::O_RDWR | nix::libc::O_CREAT, 0o600);
                if fd < 0 || nix::libc::flock(fd, nix::libc::LOCK_EX) != 0 {
                    nix::libc::_exit(1);
                }
                nix::libc::write(fd, ended_pid.as_ptr().cast(), ended_pid.len());
                nix::libc::write(ready_in_child.as_raw_fd(), [1u8].as_ptr().cast(), 1);
                loop {
                    nix::libc::pause();
                }
            },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        drop(ready_in_child);
        let mut byte = [0u8];
        assert_eq!(nix::unistd::read(&ready, &mut byte).unwrap(), 1);
        let taken = lock_within(dir.path(), Duration::from_secs(15));
        // Not left behind should the lock code not have ended it.
        let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
        assert!(taken.is_ok(), "{:?}", taken.err());
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
