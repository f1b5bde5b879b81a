//! State that belongs to the whole run rather than to one test case.
//!
//! pam_faillock creates its tally directory on first use, owned by the
//! group of whoever triggered it: when that is a test user's `su`, the
//! directory would outlive the run owned by a deleted GID that the next new
//! account inherits. So, if the directory is missing, the run creates it the
//! way root's first login would (root:root 0755) before any test case, and
//! removes it afterwards if it is empty again.
//!
//! The `account required pam_faillock.so` line also writes an *empty* tally
//! for every successful account check, root's included (`adduser` runs
//! `chfn` as root). An empty tally means the same as none, so tallies that
//! appeared during the run and are still empty are removed; a tally with
//! failures in it is never touched. Both are journaled, so an interrupted
//! run is tidied the same way.

use crate::journal::{self, Undo};
use anyhow::Result;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

pub struct RunScope {
    undo: Undo,
    journal: journal::Entry,
}

/// Where pam_faillock keeps its records (`dir =` in faillock.conf, or the
/// built-in default).
pub fn faillock_dir() -> PathBuf {
    fs::read_to_string("/etc/security/faillock.conf")
        .ok()
        .and_then(|conf| {
            conf.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == "dir")
                .map(|(_, v)| PathBuf::from(v.trim()))
        })
        .unwrap_or_else(|| PathBuf::from("/var/run/faillock"))
}

impl RunScope {
    pub fn enter() -> Result<Self> {
        let dir = faillock_dir();
        let kept = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let missing = !dir.exists();
        let undo = Undo::TidyFaillock {
            dir: dir.clone(),
            kept,
            created: missing,
        };
        let journal = journal::record(&undo)?;
        if missing {
            fs::DirBuilder::new().mode(0o755).create(&dir)?;
        }
        Ok(RunScope { undo, journal })
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        let _ = journal::undo_one(&self.undo);
        // A directory the run created and could not remove still holds
        // tallies of test accounts: a test case the runner gave up on at
        // its time limit has not removed its accounts. The journal's replay
        // removes them, and then tidies again, last (it undoes newest
        // first).
        let untidy =
            matches!(&self.undo, Undo::TidyFaillock { dir, created: true, .. } if dir.exists());
        if !untidy {
            self.journal.done();
        }
    }
}
