//! A private temporary directory for keys, certificates and configs.
//!
//! [`PrivateDir`] is created mode 0700 (CA keys and private keys are
//! nobody else's business), journaled before anything is put in it (a
//! killed run still gets it removed, see [`crate::runtime::journal`]), and removed
//! with everything in it when dropped, which the evidence records.

use crate::runtime::journal::{self, Undo};
use crate::Evidence;
use anyhow::{Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub struct PrivateDir {
    dir: Option<TempDir>,
    path: PathBuf,
    /// What is in it, for the evidence ("SSH CA key, client keys").
    what: &'static str,
    journal: journal::Entry,
    ev: Evidence,
}

impl PrivateDir {
    /// A new directory `/tmp/<prefix>XXXXXX`, mode 0700.
    pub fn create(ev: &Evidence, prefix: &str, what: &'static str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .with_context(|| format!("creating a private directory for {what}"))?;
        let path = dir.path().to_path_buf();
        let journal = journal::record(&Undo::RemoveTree { path: path.clone() })?;
        let private = PrivateDir {
            dir: Some(dir),
            path,
            what,
            journal,
            ev: ev.clone(),
        };
        fs::set_permissions(&private.path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", private.path.display()))?;
        Ok(private)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        match dir.close() {
            Ok(()) => {
                self.journal.done();
                self.ev
                    .cleanup(format!("removed {} ({})", self.path.display(), self.what));
            }
            Err(e) => self.ev.cleanup(format!(
                "FAILED to remove {} ({}): {e}",
                self.path.display(),
                self.what
            )),
        }
    }
}

/// The journal's undo of [`Undo::RemoveTree`] after a killed run.
pub(crate) fn remove_leftover(path: &Path) -> Result<Option<String>> {
    if !path.exists() {
        return Ok(None);
    }
    fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    Ok(Some(format!("removed {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_private_and_gone_after_drop() {
        let ev = Evidence::new("t");
        let path = {
            let d = PrivateDir::create(&ev, "fr1-test-", "test files").unwrap();
            fs::write(d.path().join("key"), b"secret").unwrap();
            let mode = fs::metadata(d.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
            d.path().to_path_buf()
        };
        assert!(!path.exists());
        assert!(ev.render().contains("(test files)"));
    }
}
