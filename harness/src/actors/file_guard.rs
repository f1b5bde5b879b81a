//! Byte-exact backup and restore of a system file a test must touch.
//!
//! A [`FileGuard`] remembers a file's content, mode and owner (or that it did
//! not exist) and puts exactly that back when dropped, also when the test
//! failed or panicked. Restoring writes a temporary file next to the original
//! and renames it over, so a crash mid-restore never leaves half a file.

use crate::runtime::journal::{self, Undo};
use crate::Evidence;
use anyhow::{Context, Result};
use nix::unistd::{chown, Gid, Uid};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
struct Saved {
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

pub struct FileGuard {
    path: PathBuf,
    saved: Option<Saved>,
    ev: Evidence,
    restored: bool,
    journal: journal::Entry,
}

impl FileGuard {
    /// Remember `path` as it is now.
    pub fn new(ev: &Evidence, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let saved = match fs::symlink_metadata(&path) {
            Ok(meta) => {
                anyhow::ensure!(
                    meta.file_type().is_file(),
                    "{} is not a regular file; refusing to guard it",
                    path.display()
                );
                Some(Saved {
                    content: fs::read(&path)
                        .with_context(|| format!("backing up {}", path.display()))?,
                    mode: meta.permissions().mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
        };
        ev.note(format!(
            "backed up {} ({})",
            path.display(),
            saved.as_ref().map_or("absent".to_owned(), |s| format!(
                "{} bytes, mode {:o}",
                s.content.len(),
                s.mode
            ))
        ));
        // Journaled with its own copy of the content before the test can
        // change the file, so a killed run still gets it back.
        let undo = match &saved {
            None => Some(Undo::RemoveFile { path: path.clone() }),
            Some(s) => journal::save_backup(&s.content)?.map(|backup| Undo::RestoreFile {
                path: path.clone(),
                backup,
                mode: s.mode,
                uid: s.uid,
                gid: s.gid,
            }),
        };
        let journal = match undo {
            Some(undo) => journal::record(&undo)?,
            None => journal::Entry::none(),
        };
        Ok(FileGuard {
            path,
            saved,
            ev: ev.clone(),
            restored: false,
            journal,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Put the file back as it was. Called by `Drop`; call it directly to
    /// see the error.
    pub fn restore(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        match &self.saved {
            None => match fs::remove_file(&self.path) {
                Ok(()) => self.ev.cleanup(format!(
                    "removed {} (it did not exist before)",
                    self.path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {}", self.path.display()))
                }
            },
            Some(saved) => {
                write_atomically(&self.path, saved)
                    .with_context(|| format!("restoring {}", self.path.display()))?;
                self.ev.cleanup(format!("restored {}", self.path.display()));
            }
        }
        self.restored = true;
        self.journal.done();
        Ok(())
    }
}

/// Write `saved` over `path` through a temporary file next to it, renamed
/// over: a crash mid-restore leaves the old file or the restored one, never
/// half of one. The one way a file is put back, by a guard or by a replay.
fn write_atomically(path: &Path, saved: &Saved) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.fr1-restore"));
    let write = || -> Result<()> {
        fs::write(&tmp, &saved.content)?;
        chown(
            &tmp,
            Some(Uid::from_raw(saved.uid)),
            Some(Gid::from_raw(saved.gid)),
        )?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(saved.mode))?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    };
    write().with_context(|| format!("writing {} and renaming it over", tmp.display()))
}

/// The journal's undo of [`Undo::RestoreFile`] after a killed run: put the
/// saved copy back, unless the file already is as saved. Says what it did.
pub(crate) fn restore_from_backup(
    path: &Path,
    backup: &Path,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<Option<String>> {
    let content = fs::read(backup).with_context(|| format!("reading {}", backup.display()))?;
    let unchanged = fs::read(path).ok().as_deref() == Some(content.as_slice())
        && fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if unchanged {
        return Ok(None);
    }
    let saved = Saved {
        content,
        mode,
        uid,
        gid,
    };
    write_atomically(path, &saved).with_context(|| format!("restoring {}", path.display()))?;
    Ok(Some(format!("restored {}", path.display())))
}

/// The journal's undo of [`Undo::RemoveFile`]: a file the run created.
pub(crate) fn remove_created_file(path: &Path) -> Result<Option<String>> {
    match fs::remove_file(path) {
        Ok(()) => Ok(Some(format!("removed {}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            self.ev.cleanup(format!("FAILED: {e:#}"));
            eprintln!("cip-iec-fr1-tests: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restores_content_and_mode_after_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"original\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let ev = Evidence::new("t");
        {
            let _g = FileGuard::new(&ev, &path).unwrap();
            fs::write(&path, b"changed").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"original\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );
    }

    #[test]
    fn removes_a_file_that_did_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new");
        let ev = Evidence::new("t");
        {
            let _g = FileGuard::new(&ev, &path).unwrap();
            fs::write(&path, b"x").unwrap();
        }
        assert!(!path.exists());
    }

    #[test]
    fn restores_even_when_the_test_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        fs::write(&path, b"keep").unwrap();
        let ev = Evidence::new("t");
        let p2 = path.clone();
        let r = std::panic::catch_unwind(move || {
            let _g = FileGuard::new(&ev, &p2).unwrap();
            fs::write(&p2, b"broken").unwrap();
            panic!("test body failed");
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"keep");
    }
}
