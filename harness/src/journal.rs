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

use crate::process::kill_tree;
use anyhow::{Context, Result};
use nix::unistd::{chown, Gid, Pid, Uid, User};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The account-database lock ([`crate::command::account_db_lock`]).
pub type AccountDbGuard = std::sync::MutexGuard<'static, ()>;

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
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
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
    writeln!(a.file, "{id}\t{}", encode(undo))
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

/// Undo every change of the journal in `dir` that was not marked done,
/// newest first, then remove the journal and the backups. Returns one line
/// per undone change. Holds the account-database lock throughout, so no
/// test thread can create an account while the run is being undone.
pub fn replay(dir: &Path) -> Result<Vec<String>> {
    replay_holding(dir, &crate::command::account_db_lock())
}

/// [`replay`] for a caller that already holds the account-database lock:
/// the undo on a signal keeps it until the process exits, since a test
/// thread waiting for it would otherwise start `useradd` (journaled before
/// the replay) just after the replay, and the account would outlive the run.
pub fn replay_holding(dir: &Path, _accounts: &AccountDbGuard) -> Result<Vec<String>> {
    // Undoing must not journal again, and nothing may change after it.
    close();
    let mut report = Vec::new();
    // Bans are lifted last: fail2ban bans from its log, a little after the
    // failures were logged, so a ban may still come from the failures of
    // an interrupted case. Once everything else is undone (its servers and
    // sessions killed) no new failure can come, and lifting waits for a
    // ban that is still due (fail2ban::LATE_BAN).
    for undo in undo_order(pending(dir)?) {
        match undo_one(&undo) {
            Ok(Some(line)) => report.push(line),
            Ok(None) => {}
            Err(e) => report.push(format!("FAILED to undo {undo:?}: {e:#}")),
        }
    }
    let _ = fs::remove_dir_all(dir.join(BACKUPS));
    let _ = fs::remove_file(dir.join(JOURNAL));
    Ok(report)
}

/// Newest first, bans last (see [`replay`]).
fn undo_order(pending: Vec<Undo>) -> Vec<Undo> {
    let (bans, others): (Vec<Undo>, Vec<Undo>) = pending
        .into_iter()
        .rev()
        .partition(|u| matches!(u, Undo::Unban { .. }));
    others.into_iter().chain(bans).collect()
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

fn encode(undo: &Undo) -> String {
    let fields: Vec<String> = match undo {
        Undo::RemoveAccount { name } => vec!["account".into(), name.clone()],
        Undo::RemoveFile { path } => vec!["new-file".into(), path_str(path)],
        Undo::RestoreFile {
            path,
            backup,
            mode,
            uid,
            gid,
        } => vec![
            "file".into(),
            path_str(path),
            path_str(backup),
            format!("{mode:o}"),
            uid.to_string(),
            gid.to_string(),
        ],
        Undo::KillProcess { pid, start_time } => {
            vec!["process".into(), pid.to_string(), start_time.to_string()]
        }
        Undo::KillByCommandLine { needle } => vec!["command-line".into(), needle.clone()],
        Undo::RemoveTree { path } => vec!["tree".into(), path_str(path)],
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
            path_str(dir),
            kept.join("/"),
            created.to_string(),
        ],
    };
    fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join("\t")
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

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
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

/// The start time of a process (field 22 of /proc/PID/stat), which tells
/// a process from a later one that reuses its PID.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

fn quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Undo one change now; says what it did (None: nothing was left to undo).
pub fn undo_one(undo: &Undo) -> Result<Option<String>> {
    match undo {
        Undo::RemoveAccount { name } => {
            // Only names the suite generates; anything else is not ours.
            if !name.starts_with(crate::user::NAME_PREFIX) {
                return Ok(Some(format!("left account {name} alone: not a suite name")));
            }
            let mut did = Vec::new();
            if let Some(user) = User::from_name(name)? {
                if user.uid.as_raw() < 1000 {
                    return Ok(Some(format!(
                        "left account {name} alone: system UID {}",
                        user.uid
                    )));
                }
                crate::process::kill_all_of_uid(user.uid);
                quiet("faillock", &["--user", name, "--reset"]);
                quiet("userdel", &["--remove", "--force", name]);
                did.push(format!("removed account {name}"));
            }
            // The group outlives the user after a rename (it keeps the old name).
            if nix::unistd::Group::from_name(name)?.is_some() && quiet("groupdel", &[name]) {
                did.push(format!("removed group {name}"));
            }
            let tally = crate::run_scope::faillock_dir().join(name);
            if tally.exists() {
                let _ = fs::remove_file(&tally);
            }
            Ok((!did.is_empty()).then(|| did.join(", ")))
        }
        Undo::RemoveFile { path } => match fs::remove_file(path) {
            Ok(()) => Ok(Some(format!("removed {}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        },
        Undo::RestoreFile {
            path,
            backup,
            mode,
            uid,
            gid,
        } => {
            let content =
                fs::read(backup).with_context(|| format!("reading {}", backup.display()))?;
            if fs::read(path).ok().as_deref() == Some(content.as_slice()) {
                let meta_ok =
                    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == *mode);
                if meta_ok {
                    return Ok(None);
                }
            }
            let tmp = path.with_extension("fr1-restore");
            fs::write(&tmp, &content)?;
            chown(&tmp, Some(Uid::from_raw(*uid)), Some(Gid::from_raw(*gid)))?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(*mode))?;
            File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, path)?;
            Ok(Some(format!("restored {}", path.display())))
        }
        Undo::KillProcess {
            pid,
            start_time: started,
        } => {
            if start_time(*pid) == Some(*started) {
                let killed = kill_tree(Pid::from_raw(*pid));
                Ok(Some(format!(
                    "killed process {pid} ({killed} with its children)"
                )))
            } else {
                Ok(None)
            }
        }
        Undo::KillByCommandLine { needle } => {
            // Only the suite's own private paths: a damaged journal must
            // never make this kill anything else.
            if !needle.contains("/fr1-") {
                return Ok(Some(format!(
                    "left processes matching {needle:?} alone: not a suite path"
                )));
            }
            let found = crate::process::pids_with_command_line(needle);
            if found.is_empty() {
                return Ok(None);
            }
            let killed: usize = found.into_iter().map(kill_tree).sum();
            Ok(Some(format!(
                "killed {killed} process(es) started with {needle} (with their children)"
            )))
        }
        Undo::RemoveTree { path } => {
            if path.exists() {
                fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
                Ok(Some(format!("removed {}", path.display())))
            } else {
                Ok(None)
            }
        }
        Undo::TidyFaillock { dir, kept, created } => {
            let mut did = Vec::new();
            for entry in fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                let empty = entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
                // A tally with failures in it is never removed.
                if empty && !kept.contains(&name) && fs::remove_file(entry.path()).is_ok() {
                    did.push(format!("removed empty tally {name}"));
                }
            }
            if *created && fs::remove_dir(dir).is_ok() {
                did.push(format!("removed {}", dir.display()));
            }
            Ok((!did.is_empty()).then(|| did.join(", ")))
        }
        Undo::DeleteNetns { name, peers } => {
            let mut did = Vec::new();
            if Path::new("/run/netns").join(name).exists()
                && quiet("ip", &["netns", "delete", name])
            {
                did.push(format!("deleted network namespace {name}"));
            }
            // A process of the killed run (an ssh client) may still hold
            // the namespace, and with it the pair: delete this host's end.
            let link = crate::netns::host_link_of(name);
            if Path::new("/sys/class/net").join(&link).exists()
                && quiet("ip", &["link", "delete", &link])
            {
                did.push(format!("deleted veth {link}"));
            }
            for ended in crate::process::end_connections_from(peers) {
                did.push(format!("ended {ended}, which served a connection from it"));
            }
            Ok((!did.is_empty()).then(|| did.join(", ")))
        }
        Undo::Unban { jail, address } => {
            let banned = crate::fail2ban::banned_within(jail, address, crate::fail2ban::LATE_BAN);
            if banned && quiet("fail2ban-client", &["set", jail, "unbanip", address]) {
                Ok(Some(format!(
                    "lifted the ban of {address} in fail2ban jail {jail}"
                )))
            } else {
                Ok(None)
            }
        }
    }
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
            text.push_str(&format!("{}\t{}\n", i + 1, encode(u)));
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

    #[test]
    fn a_restore_puts_back_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf");
        let backup = dir.path().join("backup");
        fs::write(&path, "broken").unwrap();
        fs::write(&backup, "original").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let group = nix::unistd::getegid().as_raw();
        let undo = Undo::RestoreFile {
            path: path.clone(),
            backup,
            mode: 0o600,
            uid: me,
            gid: group,
        };
        assert!(undo_one(&undo).unwrap().is_some());
        assert_eq!(fs::read_to_string(&path).unwrap(), "original");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert!(
            undo_one(&undo).unwrap().is_none(),
            "a second replay finds nothing to do"
        );
    }

    #[test]
    fn bans_are_lifted_after_everything_else() {
        let ns = |n: &str| Undo::DeleteNetns {
            name: n.into(),
            peers: Vec::new(),
        };
        let ban = Undo::Unban {
            jail: "sshd".into(),
            address: "192.0.2.2".into(),
        };
        let order = undo_order(vec![ns("old"), ban.clone(), ns("new")]);
        assert_eq!(order, [ns("new"), ns("old"), ban]);
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

    /// A process is found by its command line and killed with its child;
    /// a needle outside the suite's paths kills nothing.
    #[test]
    fn servers_are_killed_by_their_command_line() {
        let dir = tempfile::Builder::new().prefix("fr1-").tempdir().unwrap();
        let needle = dir.path().join("marker").to_string_lossy().into_owned();
        // sh waits for its child sleep: both must go.
        let mut server = Command::new("sh")
            .args(["-c", "sleep 30; : \"$0\"", &needle])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let foreign = Undo::KillByCommandLine {
            needle: "sleep 30".into(),
        };
        assert!(undo_one(&foreign).unwrap().unwrap().contains("alone"));
        assert!(server.try_wait().unwrap().is_none());
        let undo = Undo::KillByCommandLine { needle };
        let said = undo_one(&undo).unwrap().unwrap();
        assert!(said.starts_with("killed 2 process(es)"), "{said}");
        assert!(server.wait().is_ok());
        assert!(undo_one(&undo).unwrap().is_none());
    }

    #[test]
    fn foreign_accounts_are_never_removed() {
        let undo = Undo::RemoveAccount {
            name: "root".into(),
        };
        assert!(undo_one(&undo)
            .unwrap()
            .unwrap()
            .contains("not a suite name"));
    }
}
