//! The replay of the undo journal: every change a run recorded and did not
//! undo itself (it was killed, or a case ran out of time) is undone here,
//! each kind by the resource that makes it. The one place that knows every
//! kind, above all the layers; the journal itself only stores entries.

use crate::actors::{file_guard, netns, private_dir, user};
use crate::flows::fail2ban;
use crate::runtime::command::account_db_lock;
use crate::runtime::journal::{self, Undo};
use crate::runtime::{process, run_scope};
use anyhow::Result;
use std::path::Path;

/// The account-database lock ([`account_db_lock`]), held by a replay.
pub type AccountDbGuard = std::sync::MutexGuard<'static, ()>;

/// Undo every change of the journal in `dir` that was not marked done,
/// newest first. Returns one line per undone change, and one per change
/// that failed to undo: those stay in the journal, so `--cleanup` (or the
/// next run) tries them again. Holds the account-database lock throughout,
/// so no test thread can create an account while the run is being undone.
pub fn replay(dir: &Path) -> Result<Vec<String>> {
    replay_holding(dir, &account_db_lock())
}

/// [`replay`] for a caller that already holds the account-database lock:
/// the undo on a signal keeps it until the process exits, since a test
/// thread waiting for it would otherwise start `useradd` (journaled before
/// the replay) just after the replay, and the account would outlive the run.
pub fn replay_holding(dir: &Path, _accounts: &AccountDbGuard) -> Result<Vec<String>> {
    // Undoing must not journal again, and nothing may change after it.
    journal::close();
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for undo in undo_order(journal::pending(dir)?) {
        match undo_one(&undo) {
            Ok(Some(line)) => report.push(line),
            Ok(None) => {}
            Err(e) => {
                report.push(format!(
                    "FAILED to undo {undo:?}: {e:#} (kept in the journal: `cip-iec-fr1-tests --cleanup` tries again)"
                ));
                failed.push(undo);
            }
        }
    }
    journal::finish(dir, &failed)?;
    Ok(report)
}

/// Newest first, bans last. Bans are lifted last: fail2ban bans from its
/// log, a little after the failures were logged, so a ban may still come
/// from the failures of an interrupted case. Once everything else is
/// undone (its servers and sessions killed) no new failure can come, and
/// lifting waits for a ban that is still due ([`fail2ban::LATE_BAN`]).
fn undo_order(pending: Vec<Undo>) -> Vec<Undo> {
    let (bans, others): (Vec<Undo>, Vec<Undo>) = pending
        .into_iter()
        .rev()
        .partition(|u| matches!(u, Undo::Unban { .. }));
    others.into_iter().chain(bans).collect()
}

/// Undo one change now, through the resource that made it; says what it
/// did (None: nothing was left to undo).
fn undo_one(undo: &Undo) -> Result<Option<String>> {
    match undo {
        Undo::RemoveAccount { name } => user::remove_leftover_account(name),
        Undo::RemoveFile { path } => file_guard::remove_created_file(path),
        Undo::RestoreFile {
            path,
            backup,
            mode,
            uid,
            gid,
        } => file_guard::restore_from_backup(path, backup, *mode, *uid, *gid),
        Undo::KillProcess { pid, start_time } => process::kill_if_same(*pid, *start_time),
        Undo::KillByCommandLine { needle } => process::kill_by_command_line(needle),
        Undo::RemoveTree { path } => private_dir::remove_leftover(path),
        Undo::TidyFaillock { dir, kept, created } => run_scope::tidy_faillock(dir, kept, *created),
        Undo::DeleteNetns { name, peers } => netns::delete_leftover(name, peers),
        Undo::Unban { jail, address } => fail2ban::lift_leftover_ban(jail, address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

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
