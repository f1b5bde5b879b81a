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
//! failures in it is never touched.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

pub struct RunScope {
    faillock: PathBuf,
    tallies_before: BTreeSet<PathBuf>,
    created: Vec<PathBuf>,
}

fn tallies(dir: &Path) -> BTreeSet<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
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
    pub fn enter() -> Self {
        let mut created = Vec::new();
        let faillock = faillock_dir();
        if !faillock.exists() && fs::DirBuilder::new().mode(0o755).create(&faillock).is_ok() {
            created.push(faillock.clone());
        }
        RunScope {
            tallies_before: tallies(&faillock),
            faillock,
            created,
        }
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        for tally in tallies(&self.faillock).difference(&self.tallies_before) {
            if fs::metadata(tally).is_ok_and(|m| m.is_file() && m.len() == 0) {
                let _ = fs::remove_file(tally);
            }
        }
        for dir in &self.created {
            // remove_dir only succeeds on an empty directory: a record that
            // someone else left there keeps it.
            let _ = fs::remove_dir(dir);
        }
    }
}
