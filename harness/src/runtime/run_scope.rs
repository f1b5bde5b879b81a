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

use crate::runtime::journal::{self, Undo};
use anyhow::{Context, Result};
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub struct RunScope {
    undo: Undo,
    journal: journal::Entry,
}

impl RunScope {
    /// Enter the run's scope; `dir` is where pam_faillock keeps its records
    /// ([`crate::facts::faillock_policy::records_dir`]).
    pub fn enter(dir: PathBuf) -> Result<Self> {
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
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(RunScope { undo, journal })
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        if let Undo::TidyFaillock { dir, kept, created } = &self.undo {
            let _ = tidy_faillock(dir, kept, *created);
        }
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

/// Undo what the run did to the faillock directory (see the module's
/// documentation), at the end of a run and in the journal's replay after a
/// killed one: the empty tallies that are not in `kept`, and the directory
/// if the run created it and it is empty again. Says what it did.
pub(crate) fn tidy_faillock(dir: &Path, kept: &[String], created: bool) -> Result<Option<String>> {
    let mut did = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let empty = entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
        // A tally with failures in it is never removed.
        if empty && !kept.contains(&name) && fs::remove_file(entry.path()).is_ok() {
            did.push(format!("removed empty tally {name}"));
        }
    }
    if created && fs::remove_dir(dir).is_ok() {
        did.push(format!("removed {}", dir.display()));
    }
    Ok((!did.is_empty()).then(|| did.join(", ")))
}
