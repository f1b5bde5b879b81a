//! State that belongs to the whole run rather than to one test case.
//!
//! pam_faillock creates its tally directory on first use, owned by the
//! group of whoever triggered it: when that is a test user's `su`, the
//! directory would outlive the run owned by a deleted GID that the next new
//! account inherits. So, if the directory is missing, the run creates it the
//! way root's first login would (root:root 0755) before any test case, and
//! removes it afterwards if it holds no record with failures.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

pub struct RunScope {
    created: Vec<PathBuf>,
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
        let dir = faillock_dir();
        if !dir.exists() && fs::DirBuilder::new().mode(0o755).create(&dir).is_ok() {
            created.push(dir);
        }
        RunScope { created }
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        for dir in &self.created {
            // A record without failures is an empty file: what pam_faillock's
            // account phase leaves for whoever passed it (adduser run by root
            // makes /run/faillock/root), and the same as no record. Those go;
            // a record with failures keeps the directory, and remove_dir only
            // succeeds on an empty one.
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let empty_file = entry
                        .metadata()
                        .is_ok_and(|m| m.file_type().is_file() && m.len() == 0);
                    if empty_file {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
            let _ = fs::remove_dir(dir);
        }
    }
}
