//! Every interactive entry point the image offers, for the cases about an
//! account's state (disabled, expired, locked): the console's `login`, `su`
//! from another unprivileged account, and the device's own sshd from a test
//! address. Each PAM service has its own stack, so a state enforced through
//! one of them only (an sshd stack that skips the account phase, say) is a
//! hole in the requirement: a case tries them all.

use crate::actors::sshd_match::SSHD;
use crate::flows::device_sshd::RemoteLogins;
use crate::flows::dialogue::Attempt;
use crate::flows::login::{login, login_prompts, su_from, su_prompts};
use crate::{Evidence, TestUser};
use anyhow::{Context, Result};
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPoint {
    /// `login` on a PTY, as on the console.
    Login,
    /// `su` run by another unprivileged account (root's `su` asks nothing).
    Su,
    /// ssh to the device's own sshd from a test address.
    Ssh,
}

impl EntryPoint {
    /// The PAM service whose stacks decide a login here.
    pub fn pam_service(self) -> &'static str {
        match self {
            EntryPoint::Login => "login",
            EntryPoint::Su => "su",
            EntryPoint::Ssh => "sshd",
        }
    }
}

impl fmt::Display for EntryPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryPoint::Login => "console login",
            EntryPoint::Su => "su",
            EntryPoint::Ssh => "ssh to the device's sshd",
        })
    }
}

/// An entry point ready to be driven: `su` with the account it is run
/// from, ssh with the device's sshd. The one place that knows which
/// program each entry point is.
pub enum Flow<'a> {
    Login,
    Su { caller: &'a TestUser },
    Ssh(&'a RemoteLogins),
}

impl<'a> Flow<'a> {
    /// `entry` with what it needs; an error for ssh when the image offers
    /// no sshd (`ssh` is `None`).
    pub fn at(
        entry: EntryPoint,
        caller: &'a TestUser,
        ssh: Option<&'a RemoteLogins>,
    ) -> Result<Self> {
        Ok(match (entry, ssh) {
            (EntryPoint::Login, _) => Flow::Login,
            (EntryPoint::Su, _) => Flow::Su { caller },
            (EntryPoint::Ssh, Some(ssh)) => Flow::Ssh(ssh),
            (EntryPoint::Ssh, None) => anyhow::bail!("the image offers no ssh entry point"),
        })
    }

    /// `user` logs in with `password`.
    pub fn password(&self, ev: &Evidence, user: &str, password: &str) -> Result<Attempt> {
        match self {
            Flow::Login => login(ev, user, password),
            Flow::Su { caller } => su_from(ev, caller, user, password),
            Flow::Ssh(ssh) => ssh.password(ev, user, password),
        }
    }

    /// `user` logs in, answering PAM's questions with `answers` in turn.
    pub fn prompts(&self, ev: &Evidence, user: &str, answers: &[&str]) -> Result<Attempt> {
        match self {
            Flow::Login => login_prompts(ev, user, answers),
            Flow::Su { caller } => su_prompts(ev, caller, user, answers),
            Flow::Ssh(ssh) => ssh.prompts(ev, user, answers),
        }
    }
}

pub struct EntryPoints {
    caller: TestUser,
    ssh: Option<RemoteLogins>,
}

impl EntryPoints {
    /// The entry points of this image: `login` and `su` always, ssh where
    /// openssh-server is installed (then the device's sshd must be reachable,
    /// or the case is not demonstrated).
    pub fn open(ev: &Evidence) -> Result<Self> {
        let caller = TestUser::create(ev).context("the account su is run from")?;
        let ssh = if Path::new(SSHD).is_file() {
            Some(RemoteLogins::open(ev)?)
        } else {
            ev.note("openssh-server is not installed: the image offers no remote entry point");
            None
        };
        let points = EntryPoints { caller, ssh };
        ev.note(format!(
            "entry points tried: {}",
            points
                .all()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(points)
    }

    pub fn all(&self) -> Vec<EntryPoint> {
        let mut all = vec![EntryPoint::Login, EntryPoint::Su];
        if self.ssh.is_some() {
            all.push(EntryPoint::Ssh);
        }
        all
    }

    /// The PAM services of [`EntryPoints::all`], in the same order.
    pub fn pam_services(&self) -> Vec<&'static str> {
        self.all()
            .into_iter()
            .map(EntryPoint::pam_service)
            .collect()
    }

    /// The entry point whose logins PAM service `service` decides.
    pub fn of_service(&self, service: &str) -> Option<EntryPoint> {
        self.all().into_iter().find(|e| e.pam_service() == service)
    }

    fn flow(&self, entry: EntryPoint) -> Result<Flow<'_>> {
        Flow::at(entry, &self.caller, self.ssh.as_ref())
    }

    /// `user` logs in at `entry`, answering PAM's questions with `answers`
    /// in turn (password, then e.g. a verification code).
    pub fn prompts(
        &self,
        ev: &Evidence,
        entry: EntryPoint,
        user: &str,
        answers: &[&str],
    ) -> Result<Attempt> {
        self.flow(entry)?.prompts(ev, user, answers)
    }

    /// `user` logs in with `password` at `entry`.
    pub fn password(
        &self,
        ev: &Evidence,
        entry: EntryPoint,
        user: &str,
        password: &str,
    ) -> Result<Attempt> {
        self.flow(entry)?.password(ev, user, password)
    }

    /// `user` logs in with `password` at every entry point, and `check`
    /// holds for each attempt; a failure names the entry point.
    pub fn each(
        &self,
        ev: &Evidence,
        user: &str,
        password: &str,
        check: impl Fn(&Attempt) -> Result<()>,
    ) -> Result<()> {
        for entry in self.all() {
            let attempt = self.password(ev, entry, user, password)?;
            check(&attempt).with_context(|| format!("{entry}"))?;
        }
        Ok(())
    }
}
