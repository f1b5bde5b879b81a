//! The real authentication flows, driven on a pseudo-terminal.
//!
//! - [`login`]: `/bin/login NAME`, as a console login.
//! - [`su_from`]: `su - NAME` started by *another unprivileged user*. Root's
//!   `su` never asks for a password (pam_rootok), so it proves nothing.
//!
//! Each returns an [`Attempt`]: what the system decided, and what the
//! terminal showed. A shell counts only when `id -un` inside it printed the
//! expected user, so "no error" is never taken for "logged in".
//!
//! [`login_changing`] and [`su_changing`] are the same flows for a password
//! that has expired: they carry the forced change through on the same
//! terminal (current password, new, retype) and then prove the shell.

use crate::flows::dialogue::{
    converse, decide, finish, shell_user, whoami_of, Attempt, AuthOutcome, Ends, ShellSign,
    SHELL_PROMPT, WHOAMI, WHOAMI_OUTPUT,
};
use crate::flows::passwd::{change_dialogue, check_against_shadow, DialogueEnd, PasswordChange};
use crate::flows::pty::Terminal;
use crate::runtime::command::Groups;
use crate::{facts::shadow, Evidence, TestUser};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::SystemTime;

const REFUSED: &str = r"(?i)(login incorrect|authentication failure|permission denied|account has expired|account is locked|access denied|not allowed)";

/// How `login` ends a dialogue: an interactive shell, or its refusal.
const LOGIN: Ends = Ends {
    shell: ShellSign::Prompt,
    refused: REFUSED,
    failure: None,
};
/// How `su - NAME -c WHOAMI` ends one: the command's output, or a refusal.
const SU: Ends = Ends {
    shell: ShellSign::Marker,
    refused: REFUSED,
    failure: None,
};

/// A login with an expired password, carried through the forced change on
/// the same terminal.
#[derive(Debug, Clone)]
pub struct ForcedChange {
    /// The system's decision on the old password: `ChangeRequired` when it
    /// demanded the change (the transcript holds the whole dialogue).
    pub attempt: Attempt,
    /// How the change went; `None` when none was demanded.
    pub change: Option<PasswordChange>,
    /// The user whose shell ran after the change, if one did.
    pub shell_after: Option<String>,
    /// The new password appeared in the terminal output.
    pub new_password_echoed: bool,
}

impl ForcedChange {
    /// The old password led to the change dialogue, the change went
    /// through, and then a shell ran as `user`.
    pub fn assert_changed_then_shell_as(&self, user: &str) -> Result<()> {
        self.attempt.assert_change_required()?;
        let flow = &self.attempt.flow;
        match &self.change {
            Some(PasswordChange::Changed) => {}
            Some(PasswordChange::Rejected { message }) => {
                bail!("{flow}: the forced change was refused: {message}")
            }
            None => bail!("{flow}: no change dialogue followed"),
        }
        match &self.shell_after {
            Some(u) if u == user => Ok(()),
            Some(other) => {
                bail!(
                    "{flow}: after the change, expected a shell as {user}, got a shell as {other}"
                )
            }
            None => bail!("{flow}: after the change, expected a shell as {user}, got no shell"),
        }
    }
}

/// An environment like a console's, with messages in English so the
/// refusal texts can be recognised.
pub(crate) fn console_command(program: &str) -> Command {
    console_env(Command::new(program))
}

/// `cmd` with the console's environment only (see [`console_command`]).
fn console_env(mut cmd: Command) -> Command {
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("TERM", "dumb")
        .env("LANG", "C")
        .env("LC_ALL", "C");
    cmd
}

/// `login NAME` on a PTY, answering the password prompt with `password`.
pub fn login(ev: &Evidence, name: &str, password: &str) -> Result<Attempt> {
    Ok(login_flow(ev, name, password, None)?.attempt)
}

/// `login NAME` for a test user whose password has expired: the right
/// password, then the forced change to `new_password` on the same
/// terminal, then the shell. The user's password follows a change.
pub fn login_changing(
    ev: &Evidence,
    user: &mut TestUser,
    new_password: &str,
) -> Result<ForcedChange> {
    let before = shadow::entry(user.name())?.hash;
    let forced = login_flow(ev, user.name(), user.password(), Some(new_password))?;
    settle(ev, user, new_password, &before, forced)
}

fn login_flow(
    ev: &Evidence,
    name: &str,
    password: &str,
    new_password: Option<&str>,
) -> Result<ForcedChange> {
    let mut cmd = console_command("login");
    cmd.arg(name);
    password_flow(
        ev,
        format!("login {name}"),
        cmd,
        &LOGIN,
        password,
        new_password,
    )
}

/// Answer the password question; when the system demands a change and
/// `new_password` is given, carry the change through on the same terminal
/// and prove the shell that follows.
fn password_flow(
    ev: &Evidence,
    flow: String,
    cmd: Command,
    ends: &Ends,
    password: &str,
    new_password: Option<&str>,
) -> Result<ForcedChange> {
    ev.secret(password);
    let started = SystemTime::now();
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    let decision = decide(ev, &flow, &mut term, &[password], ends)?;
    let moments = decision.moments(started);
    if !decision.asked {
        ev.note(format!("{flow}: decided without asking for the password"));
    }
    let mut after = AfterChange::default();
    if let (AuthOutcome::ChangeRequired, Some(new)) = (&decision.outcome, new_password) {
        let went_on = match ends.shell {
            ShellSign::Prompt => SHELL_PROMPT,
            ShellSign::Marker => WHOAMI_OUTPUT,
        };
        after = complete_change(&mut term, &decision.matched, password, new, went_on)?;
        if after.change == Some(PasswordChange::Changed) {
            after.shell_after = Some(match ends.shell {
                ShellSign::Prompt => shell_user(&mut term)?,
                ShellSign::Marker => whoami_of(after.went_on.as_deref().unwrap_or_default()),
            });
        }
    }
    let attempt = finish(
        ev,
        flow,
        term,
        password,
        decision.outcome,
        decision.answer_after,
        moments,
    );
    Ok(after.into_forced_change(ev, attempt, new_password))
}

/// What followed the system's demand for a new password.
#[derive(Default)]
struct AfterChange {
    change: Option<PasswordChange>,
    shell_after: Option<String>,
    /// What the program showed once the change went through.
    went_on: Option<String>,
}

/// Answer the change dialogue that `demand` (the matched "change required"
/// text) started; `went_on` is what the program shows after a change.
fn complete_change(
    term: &mut Terminal,
    demand: &str,
    password: &str,
    new_password: &str,
    went_on: &str,
) -> Result<AfterChange> {
    // The match may already have taken the current-password prompt,
    // rather than only the "required to change" notice before it.
    let current_asked = demand.trim_end().ends_with(':');
    Ok(
        match change_dialogue(term, password, new_password, current_asked, &[went_on])? {
            DialogueEnd::WentOn { matched } => AfterChange {
                change: Some(PasswordChange::Changed),
                shell_after: None,
                went_on: Some(matched.text),
            },
            DialogueEnd::Rejected { message } => AfterChange {
                change: Some(PasswordChange::Rejected { message }),
                ..AfterChange::default()
            },
        },
    )
}

impl AfterChange {
    fn into_forced_change(
        self,
        ev: &Evidence,
        attempt: Attempt,
        new_password: Option<&str>,
    ) -> ForcedChange {
        let new_password_echoed =
            new_password.is_some_and(|p| !p.is_empty() && attempt.transcript.contains(p));
        if let Some(c) = &self.change {
            ev.note(format!(
                "{}: forced change {c}, then {}",
                attempt.flow,
                self.shell_after
                    .as_deref()
                    .map_or("no shell".to_owned(), |u| format!("a shell as {u}"))
            ));
        }
        ForcedChange {
            attempt,
            change: self.change,
            shell_after: self.shell_after,
            new_password_echoed,
        }
    }
}

/// Check a forced change against /etc/shadow and let the test user follow it.
fn settle(
    ev: &Evidence,
    user: &mut TestUser,
    new_password: &str,
    before: &str,
    forced: ForcedChange,
) -> Result<ForcedChange> {
    let outcome = forced.change.clone().unwrap_or(PasswordChange::Rejected {
        message: "no change was asked for".to_owned(),
    });
    check_against_shadow(ev, &forced.attempt.flow, user.name(), &outcome, before)?;
    if outcome == PasswordChange::Changed {
        user.password_changed_to(new_password);
    }
    Ok(forced)
}

/// `su - TARGET -c WHOAMI` started by `caller` (an unprivileged test user)
/// on a PTY, answering the password prompt with `password`.
pub fn su_from(ev: &Evidence, caller: &TestUser, target: &str, password: &str) -> Result<Attempt> {
    Ok(su_flow(ev, caller, target, password, None)?.attempt)
}

/// `su - USER` started by `caller` for a test user whose password has
/// expired: the right password, the forced change to `new_password` on
/// the same terminal, then the command runs as the user.
pub fn su_changing(
    ev: &Evidence,
    caller: &TestUser,
    user: &mut TestUser,
    new_password: &str,
) -> Result<ForcedChange> {
    let before = shadow::entry(user.name())?.hash;
    let forced = su_flow(ev, caller, user.name(), user.password(), Some(new_password))?;
    settle(ev, user, new_password, &before, forced)
}

fn su_flow(
    ev: &Evidence,
    caller: &TestUser,
    target: &str,
    password: &str,
    new_password: Option<&str>,
) -> Result<ForcedChange> {
    let flow = format!("su - {target} (run by {})", caller.name());
    password_flow(
        ev,
        flow,
        su_command(caller, target),
        &SU,
        password,
        new_password,
    )
}

/// `su - TARGET -c WHOAMI` as `caller`: root's own `su` never asks.
fn su_command(caller: &TestUser, target: &str) -> Command {
    let mut cmd = console_env(caller.setpriv(Groups::None).command("su"));
    cmd.args(["-", target, "-c", WHOAMI]);
    cmd
}

/// `su - TARGET -c WHOAMI` started by `caller`, answering PAM's questions
/// with `answers` in turn (password, then e.g. a TOTP code). A question
/// beyond the last answer ends the attempt as `Refused`: the answers given
/// were not enough. A decision without any question is recorded as such.
pub fn su_prompts(
    ev: &Evidence,
    caller: &TestUser,
    target: &str,
    answers: &[&str],
) -> Result<Attempt> {
    let flow = format!("su - {target} (run by {})", caller.name());
    converse(ev, flow, su_command(caller, target), answers, &SU)
}

/// `login NAME` on a PTY, answering PAM's questions with `answers` in turn
/// (see [`su_prompts`]).
pub fn login_prompts(ev: &Evidence, name: &str, answers: &[&str]) -> Result<Attempt> {
    let mut cmd = console_command("login");
    cmd.arg(name);
    converse(ev, format!("login {name}"), cmd, answers, &LOGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::dialogue::CHANGE_REQUIRED;
    use rexpect::reader::Regex;

    #[test]
    fn outcomes_read_as_prose_in_the_evidence() {
        let shell = AuthOutcome::Shell {
            user: "fr1-x".into(),
        };
        assert_eq!(shell.to_string(), "a shell as fr1-x");
        let refused = AuthOutcome::Refused {
            message: " Login incorrect\n".into(),
        };
        assert_eq!(refused.to_string(), "refused: Login incorrect");
        let silent = AuthOutcome::Refused {
            message: String::new(),
        };
        assert_eq!(silent.to_string(), "refused (no message)");
        assert_eq!(
            AuthOutcome::ChangeRequired.to_string(),
            "a forced password change"
        );
        let rejected = PasswordChange::Rejected {
            message: "BAD PASSWORD: too short".into(),
        };
        assert_eq!(rejected.to_string(), "rejected: BAD PASSWORD: too short");
        assert_eq!(PasswordChange::Changed.to_string(), "changed");
    }

    #[test]
    fn the_echoed_command_is_not_taken_for_its_output() {
        let re = Regex::new(WHOAMI_OUTPUT).unwrap();
        assert!(!re.is_match(WHOAMI));
        let m = re
            .find("$ echo FR1-$(id -un)-END\r\nFR1-fr1-ab12cd-END\r\n")
            .unwrap();
        assert_eq!(whoami_of(m.as_str()), "fr1-ab12cd");
    }

    #[test]
    fn refusal_and_change_messages_are_recognised() {
        let refused = Regex::new(REFUSED).unwrap();
        for msg in [
            "Login incorrect",
            "su: Authentication failure",
            "Your account has expired; please contact",
        ] {
            assert!(refused.is_match(msg), "{msg}");
        }
        let change = Regex::new(CHANGE_REQUIRED).unwrap();
        assert!(change.is_match(
            "You are required to change your password immediately (administrator enforced)"
        ));
    }
}
