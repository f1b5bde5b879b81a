//! The crash-safe undo journal.
//!
//! Every change the suite makes to the system is written here, and synced
//! to disk, *before* it is made: an account about to be created, a file
//! about to be edited (with a copy of its content), a server process, a
//! private directory. When the change is undone normally, the entry is
//! marked done. Whatever is not marked done is undone by [`replay`]: on
//! SIGINT/SIGTERM at once, and after a SIGKILL or a power loss by the next
//! run (or `--cleanup`) before it does anything else.
//!
//! The journal is only active once the runner has called [`activate`];
//! the harness's own unit tests never write to /var/lib.
//!
//! This module only stores entries: it knows no resource (it imports only
//! the path-to-text conversion of [`crate::runtime::command`]).
//! How each kind of change is undone lives with the resource that makes
//! it, and the replay dispatches to them (`crate::undo`).

use crate::runtime::command::path_str;
use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the journal and file backups live: persistent storage, so a power
/// loss does not lose the record of what to undo.
pub const STATE_DIR: &str = "/var/lib/cip-iec-fr1-tests";
const JOURNAL: &str = "journal";
const BACKUPS: &str = "backup";

/// One change, described by how to undo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// A test account (generated `fr1-` name): remove it if it exists.
    RemoveAccount { name: String },
    /// A file that did not exist: remove it.
    RemoveFile { path: PathBuf },
    /// A file about to change: put back the saved copy with its mode and owner.
    RestoreFile {
        path: PathBuf,
        backup: PathBuf,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// A process the suite started (a private server): kill it and its
    /// children, if that PID still is the same process (same start time).
    KillProcess { pid: i32, start_time: u64 },
    /// A server that does not die with the suite (the private sshd, whose
    /// per-connection processes would be orphaned): kill, with their
    /// children, the processes whose command line contains `needle`, a
    /// path in the server's private directory. Recorded before the server
    /// starts, unlike [`Undo::KillProcess`], which needs the PID: a SIGKILL
    /// between the start and that entry would leave the server running.
    KillByCommandLine { needle: String },
    /// A private directory (keys, configs): remove it with its content.
    RemoveTree { path: PathBuf },
    /// A network namespace the suite created, and the addresses in it:
    /// the connections they left open on this host are ended too.
    DeleteNetns { name: String, peers: Vec<IpAddr> },
    /// An address a test case got banned by fail2ban: lift the ban.
    Unban { jail: String, address: String },
    /// The faillock directory as it was before the run: remove the empty
    /// tallies that are not in `kept`, and the directory itself if the run
    /// created it and it is empty again (see `run_scope`).
    TidyFaillock {
        dir: PathBuf,
        kept: Vec<String>,
        created: bool,
    },
}

struct Active {
    dir: PathBuf,
    file: File,
    next_id: u64,
}

enum State {
    /// No journal (the harness's unit tests, or before [`activate`]):
    /// recording records nothing.
    Inactive,
    Active(Active),
    /// The run is being undone, or is over: a change recorded now could
    /// come after the replay that should undo it, so none may start.
    Closed,
}

static STATE: Mutex<State> = Mutex::new(State::Inactive);

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

const CLOSED: &str = "the run is being undone: no further change may start";

/// A journal entry; `done` marks its change undone.
#[derive(Debug, Clone, Copy)]
pub struct Entry(Option<u64>);

impl Entry {
    /// An entry that records nothing (no journal is active).
    pub fn none() -> Self {
        Entry(None)
    }

    /// The change was undone normally: replay must not undo it again.
    pub fn done(self) {
        let Some(id) = self.0 else { return };
        if let State::Active(a) = &mut *state() {
            let _ = writeln!(a.file, "{id}\tdone").and_then(|()| a.file.sync_data());
        }
    }
}

/// Start journaling into `dir` (normally [`STATE_DIR`]). The caller has
/// replayed any previous journal first.
pub fn activate(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join(BACKUPS)).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))?;
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dir.join(JOURNAL))
        .with_context(|| format!("creating the undo journal in {}", dir.display()))?;
    *state() = State::Active(Active {
        dir: dir.to_path_buf(),
        file,
        next_id: 1,
    });
    Ok(())
}

/// Record a change before making it. Without an active journal (unit
/// tests) this records nothing; once the run is being undone it fails, so
/// the change is not made.
pub fn record(undo: &Undo) -> Result<Entry> {
    write_entry(&mut state(), undo)
}

fn write_entry(state: &mut State, undo: &Undo) -> Result<Entry> {
    let a = match state {
        State::Inactive => return Ok(Entry(None)),
        State::Closed => anyhow::bail!(CLOSED),
        State::Active(a) => a,
    };
    let id = a.next_id;
    a.next_id += 1;
    writeln!(a.file, "{id}\t{}", encode(undo)?)
        .and_then(|()| a.file.sync_data())
        .context("writing the undo journal")?;
    Ok(Entry(Some(id)))
}

/// Save `content` as a backup next to the journal (synced), for
/// [`Undo::RestoreFile`]. Without an active journal, returns None.
pub fn save_backup(content: &[u8]) -> Result<Option<PathBuf>> {
    let mut state = state();
    let a = match &mut *state {
        State::Inactive => return Ok(None),
        State::Closed => anyhow::bail!(CLOSED),
        State::Active(a) => a,
    };
    let path = a.dir.join(BACKUPS).join(format!("{}", a.next_id));
    a.next_id += 1;
    let mut f = File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content)?;
    f.sync_all()?;
    Ok(Some(path))
}

/// Is there an unfinished journal in `dir` (an interrupted run)?
pub fn pending(dir: &Path) -> Result<Vec<Undo>> {
    let text = match fs::read_to_string(dir.join(JOURNAL)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("reading the undo journal"),
    };
    Ok(parse(&text))
}

/// From now on no change may start ([`record`] fails). An active journal
/// closes; an inactive one (`--cleanup`, the recovery before a run, unit
/// tests) stays inactive.
pub fn close() {
    let mut state = state();
    if let State::Active(_) = *state {
        *state = State::Closed;
    }
}

/// End a replay of the journal in `dir`: with every change undone, the
/// journal and the backups go; the changes in `failed` (a file that could
/// not be restored, an account `userdel` refused) stay, with the backups
/// they name, as the journal a later `--cleanup` or run replays again.
pub fn finish(dir: &Path, failed: &[Undo]) -> Result<()> {
    let journal = dir.join(JOURNAL);
    if failed.is_empty() {
        let _ = fs::remove_dir_all(dir.join(BACKUPS));
        return match fs::remove_file(&journal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", journal.display()))
            }
            _ => Ok(()),
        };
    }
    let keep: Vec<&Path> = failed.iter().filter_map(Undo::backup).collect();
    for entry in fs::read_dir(dir.join(BACKUPS))
        .into_iter()
        .flatten()
        .flatten()
    {
        if !keep.contains(&entry.path().as_path()) {
            let _ = fs::remove_file(entry.path());
        }
    }
    // Written aside and renamed over: a power loss leaves the old journal
    // or the new one, never half of one.
    let text: String = failed
        .iter()
        .zip(1..)
        .map(|(undo, id)| Ok(format!("{id}\t{}\n", encode(undo)?)))
        .collect::<Result<_>>()?;
    let aside = dir.join(format!("{JOURNAL}.new"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&aside)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&aside, &journal)
    };
    write().with_context(|| format!("keeping what failed to undo in {}", journal.display()))
}

impl Undo {
    /// The saved copy an entry needs to be undone, if any.
    fn backup(&self) -> Option<&Path> {
        match self {
            Undo::RestoreFile { backup, .. } => Some(backup),
            _ => None,
        }
    }
}

/// The changes recorded and not done, in order.
fn parse(text: &str) -> Vec<Undo> {
    let mut entries: Vec<(u64, Undo)> = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut fields = line.split('\t');
        let Some(id) = fields.next().and_then(|f| f.parse::<u64>().ok()) else {
            continue;
        };
        let rest: Vec<String> = fields.map(unescape).collect();
        if rest.first().map(String::as_str) == Some("done") {
            done.insert(id);
        } else if let Some(undo) = decode(&rest) {
            entries.push((id, undo));
        }
        // A torn last line (power loss mid-write) decodes to nothing: the
        // change it announced was not started, since recording comes first.
    }
    entries
        .into_iter()
        .filter(|(id, _)| !done.contains(id))
        .map(|(_, u)| u)
        .collect()
}

/// An entry as one line of tab-separated fields. A path that is not UTF-8
/// is an error: written lossily, its undo would name another file.
fn encode(undo: &Undo) -> Result<String> {
    let fields: Vec<String> = match undo {
        Undo::RemoveAccount { name } => vec!["account".into(), name.clone()],
        Undo::RemoveFile { path } => vec!["new-file".into(), path_str(path)?],
        Undo::RestoreFile {
            path,
            backup,
            mode,
            uid,
            gid,
        } => vec![
            "file".into(),
            path_str(path)?,
            path_str(backup)?,
            format!("{mode:o}"),
            uid.to_string(),
            gid.to_string(),
        ],
        Undo::KillProcess { pid, start_time } => {
            vec!["process".into(), pid.to_string(), start_time.to_string()]
        }
        Undo::KillByCommandLine { needle } => vec!["command-line".into(), needle.clone()],
        Undo::RemoveTree { path } => vec!["tree".into(), path_str(path)?],
        Undo::DeleteNetns { name, peers } => vec![
            "netns".into(),
            name.clone(),
            peers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ],
        Undo::Unban { jail, address } => vec!["unban".into(), jail.clone(), address.clone()],
        // Tally names are account names: they never contain '/'.
        Undo::TidyFaillock { dir, kept, created } => vec![
            "faillock".into(),
            path_str(dir)?,
            kept.join("/"),
            created.to_string(),
        ],
    };
    Ok(fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("\t"))
}

fn decode(f: &[String]) -> Option<Undo> {
    let s = |i: usize| f.get(i).cloned();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(match f.first()?.as_str() {
        "account" => Undo::RemoveAccount { name: s(1)? },
        "new-file" => Undo::RemoveFile { path: s(1)?.into() },
        "file" => Undo::RestoreFile {
            path: s(1)?.into(),
            backup: s(2)?.into(),
            mode: u32::from_str_radix(f.get(3)?, 8).ok()?,
            uid: u32::try_from(n(4)?).ok()?,
            gid: u32::try_from(n(5)?).ok()?,
        },
        "process" => Undo::KillProcess {
            pid: i32::try_from(n(1)?).ok()?,
            start_time: n(2)?,
        },
        "command-line" => Undo::KillByCommandLine { needle: s(1)? },
        "tree" => Undo::RemoveTree { path: s(1)?.into() },
        "netns" => Undo::DeleteNetns {
            name: s(1)?,
            // Absent in a journal written before the addresses were kept.
            peers: s(2)
                .unwrap_or_default()
                .split(',')
                .filter_map(|a| a.parse().ok())
                .collect(),
        },
        "unban" => Undo::Unban {
            jail: s(1)?,
            address: s(2)?,
        },
        "faillock" => Undo::TidyFaillock {
            dir: s(1)?.into(),
            kept: s(2)?
                .split('/')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            created: s(3)? == "true",
        },
        _ => return None,
    })
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_done_ones_are_dropped() {
        let undos = [
            Undo::RemoveAccount {
                name: "fr1-abc123".into(),
            },
            Undo::RestoreFile {
                path: "/etc/pam.d/common auth".into(),
                backup: "/var/lib/x/backup/3".into(),
                mode: 0o644,
                uid: 0,
                gid: 42,
            },
            Undo::KillProcess {
                pid: 77,
                start_time: 123456,
            },
            Undo::RemoveTree {
                path: "/tmp/a\tb".into(),
            },
            Undo::KillByCommandLine {
                needle: "/tmp/fr1-sshd-x/sshd_config".into(),
            },
            Undo::DeleteNetns {
                name: "fr1-ns".into(),
                peers: vec![
                    "198.18.7.10".parse().unwrap(),
                    "198.18.7.11".parse().unwrap(),
                ],
            },
            Undo::DeleteNetns {
                name: "fr1-ns2".into(),
                peers: Vec::new(),
            },
            Undo::Unban {
                jail: "sshd".into(),
                address: "192.0.2.2".into(),
            },
            Undo::TidyFaillock {
                dir: "/run/faillock".into(),
                kept: vec!["root".into(), "al".into()],
                created: true,
            },
            Undo::RemoveFile {
                path: "/etc/x".into(),
            },
        ];
        let mut text = String::new();
        for (i, u) in undos.iter().enumerate() {
            text.push_str(&format!("{}\t{}\n", i + 1, encode(u).unwrap()));
        }
        text.push_str("3\tdone\n");
        text.push_str("9\tacc"); // torn by a power loss
        let pending = parse(&text);
        let expected: Vec<Undo> = undos
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, u)| u.clone())
            .collect();
        assert_eq!(pending, expected);
    }

    /// A closed journal (the run is being undone) refuses new changes; an
    /// inactive one records nothing. Works on a State of its own, not the
    /// global one, which other tests in this binary use at the same time.
    #[test]
    fn a_closed_journal_refuses_changes() {
        let undo = Undo::RemoveTree {
            path: "/tmp/fr1-x".into(),
        };
        assert!(write_entry(&mut State::Closed, &undo).is_err());
        assert!(write_entry(&mut State::Inactive, &undo)
            .unwrap()
            .0
            .is_none());
    }

    /// What failed to undo stays in the journal, with its backup, for the
    /// next replay; a replay with nothing failed leaves nothing behind.
    #[test]
    fn a_replay_keeps_what_failed_for_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(BACKUPS)).unwrap();
        let kept = dir.path().join(BACKUPS).join("1");
        let gone = dir.path().join(BACKUPS).join("2");
        fs::write(&kept, "original").unwrap();
        fs::write(&gone, "other").unwrap();
        fs::write(dir.path().join(JOURNAL), "1\taccount\tfr1-x\n").unwrap();
        let failed = [
            Undo::RestoreFile {
                path: "/etc/x".into(),
                backup: kept.clone(),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            Undo::RemoveAccount {
                name: "fr1-abc".into(),
            },
        ];
        finish(dir.path(), &failed).unwrap();
        assert_eq!(pending(dir.path()).unwrap(), failed);
        assert!(kept.exists() && !gone.exists());
        finish(dir.path(), &[]).unwrap();
        assert!(pending(dir.path()).unwrap().is_empty());
        assert!(!dir.path().join(BACKUPS).exists());
    }
}
