//! Throw-away accounts.
//!
//! A [`TestUser`] has a generated name that no real account has (`fr1-` and
//! six random characters, checked against the account database), a random
//! password that satisfies any sane quality policy, and is removed when
//! dropped: processes, account, group, home, mail spool and faillock record.
//! The harness never touches an account it did not create.

use crate::facts::faillock_policy::every_records_dir;
use crate::runtime::command::{command_line, run, run_ok, succeeds_quietly, Groups, Setpriv};
use crate::runtime::journal::{self, Undo};
use crate::runtime::password::{random_token, strong_password};
use crate::runtime::process::kill_all_of_uid;
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Group, Uid, User};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every account the harness creates starts with this, so an operator can
/// recognise (and `--cleanup` can find) leftovers. Defined with the
/// account database, which must tell these accounts from the image's own.
pub use crate::facts::accounts::NAME_PREFIX;

/// How the account is created: the CIP document names `adduser`, the
/// catalog accepts `useradd`; both are real account-management flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    Useradd,
    Adduser,
}

/// The program's name, as the evidence says it.
impl std::fmt::Display for Creator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Creator::Useradd => "useradd",
            Creator::Adduser => "adduser",
        })
    }
}

pub struct TestUser {
    name: String,
    uid: Uid,
    gid: Gid,
    home: PathBuf,
    password: String,
    ev: Evidence,
    removed: bool,
    /// Undo-journal entries for every name this account has had.
    journal: Vec<journal::Entry>,
}

/// A fresh account name that resolves to nothing, neither as user nor group.
pub fn unused_name() -> Result<String> {
    for _ in 0..16 {
        let name = format!("{NAME_PREFIX}{}", random_token(6)?);
        if User::from_name(&name)?.is_none() && Group::from_name(&name)?.is_none() {
            return Ok(name);
        }
    }
    bail!("could not find an unused account name after 16 tries")
}

/// Run an account tool that must refuse (non-zero exit), and make sure it
/// left nothing behind: if the account `must_not_exist` appeared anyway it
/// is removed (it carries a generated name, so it is ours) and the refusal
/// is reported as missing.
pub fn expect_refusal(
    ev: &Evidence,
    cmd: &mut Command,
    must_not_exist: Option<&str>,
) -> Result<()> {
    let line = command_line(cmd);
    let ran = run(ev, cmd, None)?;
    let leaked = match must_not_exist {
        Some(name) if User::from_name(name)?.is_some() => {
            let _ = run(
                ev,
                Command::new("userdel").args(["--remove", "--force", name]),
                None,
            );
            Some(name)
        }
        _ => None,
    };
    if ran.success || leaked.is_some() {
        bail!(
            "`{line}` was accepted (exit status {}){}: it must be refused",
            crate::runtime::evidence::or_none(ran.code),
            leaked.map_or(String::new(), |n| format!(" and created {n}"))
        );
    }
    ev.ok(format!(
        "refused as required: `{line}` -> {}",
        ran.all_output().trim()
    ));
    Ok(())
}

impl TestUser {
    /// Create an account with `useradd`, a home and a strong password.
    pub fn create(ev: &Evidence) -> Result<Self> {
        Self::create_with(ev, Creator::Useradd)
    }

    pub fn create_with(ev: &Evidence, creator: Creator) -> Result<Self> {
        let name = unused_name()?;
        let mut cmd = match creator {
            Creator::Useradd => {
                let mut c = Command::new("useradd");
                c.args(["--create-home", "--user-group", "--shell", "/bin/sh"]);
                // No subordinate UID/GID ranges: FR-1 does not need them, and
                // `usermod -l` leaves them under the old name, where `userdel`
                // of the new name would not remove them.
                c.args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
                c
            }
            Creator::Adduser => {
                let mut c = Command::new("adduser");
                c.args(["--disabled-password", "--gecos", "", "--shell", "/bin/sh"]);
                c
            }
        };
        cmd.arg(&name);
        let entry = journal::record(&Undo::RemoveAccount { name: name.clone() })?;
        if let Err(e) = run_ok(ev, &mut cmd, None) {
            // A refused useradd may still have written part of the account.
            let _ = run(
                ev,
                Command::new("userdel").args(["--remove", "--force", &name]),
                None,
            );
            return Err(e.context("creating a test account"));
        }
        let user = User::from_name(&name)?
            .with_context(|| format!("{name} was created but does not resolve"))?;
        let password = strong_password()?;
        ev.secret(&password);
        let mut created = TestUser {
            name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
            password: String::new(),
            ev: ev.clone(),
            removed: false,
            journal: vec![entry],
        };
        // From here on `created` is dropped (and the account removed) on any error.
        created.set_password(&password)?;
        ev.note(format!(
            "test account {} (uid {}, gid {}) created with a random 16-character password",
            created.name, created.uid, created.gid
        ));
        Ok(created)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn uid(&self) -> Uid {
        self.uid
    }
    pub fn gid(&self) -> Gid {
        self.gid
    }
    pub fn home(&self) -> &Path {
        &self.home
    }
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `program` run as this user: real and effective UID/GID and the
    /// user's groups (`setpriv --init-groups`, as a login would give them),
    /// with a login-like environment and the home directory as working
    /// directory. For "tried as that user" checks and for files that the
    /// user must create itself.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = self.setpriv(Groups::OfAccount).command(program);
        cmd.current_dir(&self.home)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("LANG", "C")
            .env("LC_ALL", "C");
        cmd
    }

    /// This user's IDs, with the account's groups or none, to run a
    /// program with an environment of the caller's choosing.
    pub fn setpriv(&self, groups: Groups) -> Setpriv {
        Setpriv::new(self.uid.as_raw(), self.gid.as_raw(), groups)
    }

    /// Try to read `path` as this user (a directory: list it), the data
    /// going to /dev/null, so that a secret that turns out readable never
    /// reaches the evidence. A refusal is data: check `success` and
    /// `stderr` ("Permission denied").
    pub fn try_read(&self, path: &Path) -> Result<crate::runtime::command::Ran> {
        let mut cmd = if path.is_dir() {
            let mut c = self.command("ls");
            c.arg(path);
            c
        } else {
            let mut c = self.command("dd");
            c.arg(format!("if={}", path.display())).args([
                "of=/dev/null",
                "count=1",
                "status=none",
            ]);
            c
        };
        run(&self.ev, &mut cmd, None)
    }

    /// Write `content` to `relative` under the home directory, owned by the
    /// user with `mode`; missing directories on the way are created owned
    /// by the user, mode 0700 (what sshd's StrictModes accepts, e.g. for
    /// `.ssh/authorized_keys`). Removed with the home directory.
    pub fn write_home_file(&self, relative: &str, content: &str, mode: u32) -> Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let path = self.home.join(relative);
        anyhow::ensure!(
            Path::new(relative).is_relative() && !relative.split('/').any(|c| c == ".."),
            "{relative} is not a path inside the home directory"
        );
        let mut dir = self.home.clone();
        for part in Path::new(relative)
            .parent()
            .into_iter()
            .flat_map(|p| p.components())
        {
            dir.push(part);
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                nix::unistd::chown(&dir, Some(self.uid), Some(self.gid))?;
            }
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        nix::unistd::chown(&path, Some(self.uid), Some(self.gid))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        self.ev.note(format!(
            "wrote {} ({} line(s), owner {}, mode {mode:o})",
            path.display(),
            content.lines().count(),
            self.name
        ));
        Ok(path)
    }

    /// Set the password as root through `chpasswd` (which runs the image's
    /// PAM password stack, so the policy still applies).
    pub fn set_password(&mut self, password: &str) -> Result<()> {
        self.ev.secret(password);
        run_ok(
            &self.ev,
            &mut Command::new("chpasswd"),
            Some(&format!("{}:{password}\n", self.name)),
        )
        .with_context(|| format!("setting the password of {}", self.name))?;
        self.password = password.to_owned();
        Ok(())
    }

    /// Empty the password field (`passwd --delete`): with Debian's
    /// pam_unix `nullok`, PAM then asks for no password at all.
    pub fn delete_password(&mut self) -> Result<()> {
        run_ok(
            &self.ev,
            Command::new("passwd").args(["--delete", &self.name]),
            None,
        )
        .with_context(|| format!("emptying the password of {}", self.name))?;
        self.password.clear();
        Ok(())
    }

    /// Record a password change made through a real flow (e.g. `passwd` on
    /// a PTY), so later logins use it.
    pub fn password_changed_to(&mut self, password: &str) {
        self.ev.secret(password);
        self.password = password.to_owned();
    }

    /// Rename the account with `usermod -l`. The test user follows the
    /// account, so it is still removed under its new name.
    pub fn rename(&mut self, new_name: &str) -> Result<()> {
        self.journal.push(journal::record(&Undo::RemoveAccount {
            name: new_name.to_owned(),
        })?);
        run_ok(
            &self.ev,
            Command::new("usermod").args(["-l", new_name, &self.name]),
            None,
        )?;
        self.name = new_name.to_owned();
        Ok(())
    }

    /// Add the account to an existing group (`usermod --append --groups`).
    /// Removing the account (`userdel`, also in a journal replay) takes it
    /// out of the group's member lists again.
    pub fn join_group(&self, group: &str) -> Result<()> {
        run_ok(
            &self.ev,
            Command::new("usermod").args(["--append", "--groups", group, &self.name]),
            None,
        )
        .with_context(|| format!("adding {} to group {group}", self.name))?;
        Ok(())
    }

    /// Empty the account's faillock tally (`faillock --reset`), so failures
    /// a case caused on purpose do not lock it for the next step.
    pub fn clear_failures(&self) -> Result<()> {
        if crate::runtime::command::find_program("faillock").is_some() {
            run_ok(
                &self.ev,
                Command::new("faillock").args(["--user", &self.name, "--reset"]),
                None,
            )
            .with_context(|| format!("clearing the faillock tally of {}", self.name))?;
        }
        Ok(())
    }

    /// Remove the account now (the CR1.3/CR1.4 flows delete accounts on purpose).
    pub fn delete(mut self) -> Result<()> {
        self.remove()
    }

    fn journal_done(&mut self) {
        for entry in self.journal.drain(..) {
            entry.done();
        }
    }

    fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        // Never remove an account that is not the one we created: the name
        // must still resolve to our UID, and that UID is never a system one.
        let current = User::from_name(&self.name)?;
        match current {
            Some(u) if u.uid == self.uid && self.uid.as_raw() >= 1000 => {}
            Some(u) => bail!(
                "refusing to remove {}: it now has uid {} (created with {})",
                self.name,
                u.uid,
                self.uid
            ),
            None => {
                self.ev
                    .cleanup(format!("{} no longer exists; nothing to remove", self.name));
                self.journal_done();
                return Ok(());
            }
        }
        let ev = self.ev.clone();
        let removed = remove_account(&self.name, self.uid, Some(self.gid), &mut |cmd| {
            run_ok(&ev, cmd, None).map(drop)
        })?;
        if removed.killed > 0 {
            self.ev.cleanup(format!(
                "killed {} leftover process(es) of {}",
                removed.killed, self.name
            ));
        }
        if self.home.starts_with("/home") && self.home.exists() {
            std::fs::remove_dir_all(&self.home)
                .with_context(|| format!("removing {}", self.home.display()))?;
        }
        self.ev
            .cleanup(format!("removed test account {}", self.name));
        self.journal_done();
        Ok(())
    }
}

/// What [`remove_account`] did.
pub(crate) struct Removed {
    /// Processes of the account that were still running.
    pub killed: usize,
    /// The account's own group, when it outlived the account.
    pub group: Option<String>,
}

/// The steps that remove an account the suite created, shared by a
/// [`TestUser`]'s removal and the replay of a killed run's journal: the
/// account's processes, its faillock record (`userdel` does not know about
/// it), the account with its home and mail spool, and its group when that
/// outlived it (with `USERGROUPS_ENAB no`, or after a rename, which keeps
/// the group's old name). `run` runs one account tool and fails when it
/// does: into the case's evidence for a test, quietly for a replay, which
/// already holds the account-database lock the evidence's runner takes.
/// The caller has checked that the account is one the suite created.
pub(crate) fn remove_account(
    name: &str,
    uid: Uid,
    gid: Option<Gid>,
    run: &mut dyn FnMut(&mut Command) -> Result<()>,
) -> Result<Removed> {
    let killed = kill_all_of_uid(uid);
    if crate::runtime::command::find_program("faillock").is_some() {
        let _ = run(Command::new("faillock").args(["--user", name, "--reset"]));
    }
    for dir in every_records_dir() {
        let record = dir.join(name);
        if record.exists() {
            let _ = std::fs::remove_file(&record);
        }
    }
    run(Command::new("userdel").args(["--remove", "--force", name]))?;
    let by_gid = gid.map(Group::from_gid).transpose()?.flatten();
    let group = match by_gid {
        Some(g) if g.name.starts_with(NAME_PREFIX) => Some(g),
        _ => Group::from_name(name)?,
    };
    let mut removed = Removed {
        killed,
        group: None,
    };
    if let Some(g) = group {
        run(Command::new("groupdel").arg(&g.name))?;
        removed.group = Some(g.name);
    }
    Ok(removed)
}

/// The journal's undo of [`Undo::RemoveAccount`] after a killed run: the
/// account, if it still exists and is one the suite made (a generated
/// name, not a system UID). Says what it did.
pub(crate) fn remove_leftover_account(name: &str) -> Result<Option<String>> {
    // Only names the suite generates; anything else is not ours.
    if !name.starts_with(NAME_PREFIX) {
        return Ok(Some(format!("left account {name} alone: not a suite name")));
    }
    let mut quiet = |cmd: &mut Command| -> Result<()> {
        anyhow::ensure!(succeeds_quietly(cmd), "`{}` failed", command_line(cmd));
        Ok(())
    };
    let mut did = Vec::new();
    match User::from_name(name)? {
        Some(user) if user.uid.as_raw() < 1000 => {
            return Ok(Some(format!(
                "left account {name} alone: system UID {}",
                user.uid
            )));
        }
        Some(user) => {
            let removed = remove_account(name, user.uid, Some(user.gid), &mut quiet)?;
            did.push(format!("removed account {name}"));
            did.extend(removed.group.map(|g| format!("removed group {g}")));
        }
        // The group outlives the user after a rename (it keeps the old name).
        None => {
            if Group::from_name(name)?.is_some() {
                quiet(Command::new("groupdel").arg(name))?;
                did.push(format!("removed group {name}"));
            }
        }
    }
    Ok((!did.is_empty()).then(|| did.join(", ")))
}

impl Drop for TestUser {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            self.ev.cleanup(format!(
                "FAILED to remove test account {}: {e:#}",
                self.name
            ));
            eprintln!(
                "cip-iec-fr1-tests: failed to remove test account {}: {e:#}",
                self.name
            );
        }
    }
}
