//! The real authentication flows, driven on a pseudo-terminal.
//!
//! - [`login`]: `/bin/login NAME`, as a console login.
//! - [`su_from`]: `su - NAME` started by *another unprivileged user*. Root's
//!   `su` never asks for a password (pam_rootok), so it proves nothing.
//!
//! Each returns an [`Attempt`]: what the system decided, and what the
//! terminal showed. A shell counts only when `id -un` inside it printed the
//! expected user, so "no error" is never taken for "logged in".

use crate::pty::Terminal;
use crate::{Evidence, TestUser};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::{Duration, Instant};

/// The command a successful session runs: the marker proves a real shell
/// ran as the authenticated user, and cannot be confused with the typed
/// command echoed by the terminal (`$(` is not in the captured class).
pub const WHOAMI: &str = "echo FR1-$(id -un)-END";
pub(crate) const WHOAMI_OUTPUT: &str = r"FR1-([A-Za-z0-9._-]+)-END";
const REFUSED: &str = r"(?i)(login incorrect|authentication failure|permission denied|account has expired|account is locked|access denied|not allowed)";
pub(crate) const CHANGE_REQUIRED: &str = r"(?i)(required to change your password|password has expired|password expired|current password:|\(current\) unix password:)";
const PASSWORD_PROMPT: &str = r"(?i)password: ?$";
const SHELL_PROMPT: &str = r"[$#] $";

/// What the system decided about one authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated: a shell ran and `id -un` printed this name.
    Shell { user: String },
    /// Refused, with the message shown.
    Refused { message: String },
    /// The password was accepted but must be changed before any session.
    ChangeRequired,
}

/// One attempt: the outcome plus what an observer of the terminal saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub flow: String,
    pub outcome: AuthOutcome,
    /// The typed secret appeared in the terminal output (CR1.10).
    pub secret_echoed: bool,
    /// Time from sending the password to the system's answer.
    pub answer_after: Duration,
    pub transcript: String,
}

impl Attempt {
    /// The attempt must have given a shell running as `user`.
    pub fn assert_shell_as(&self, user: &str) -> Result<()> {
        match &self.outcome {
            AuthOutcome::Shell { user: got } if got == user => Ok(()),
            AuthOutcome::Shell { user: got } => {
                bail!(
                    "{}: expected a shell as {user}, got a shell as {got}",
                    self.flow
                )
            }
            other => bail!("{}: expected a shell as {user}, got {other:?}", self.flow),
        }
    }

    /// The attempt must have been refused: no shell, no password-change dialogue.
    pub fn assert_refused(&self) -> Result<()> {
        match &self.outcome {
            AuthOutcome::Refused { .. } => Ok(()),
            other => bail!(
                "{}: expected the attempt to be refused, got {other:?}",
                self.flow
            ),
        }
    }

    pub fn assert_change_required(&self) -> Result<()> {
        match &self.outcome {
            AuthOutcome::ChangeRequired => Ok(()),
            other => bail!(
                "{}: expected a forced password change, got {other:?}",
                self.flow
            ),
        }
    }
}

/// An environment like a console's, with messages in English so the
/// refusal texts can be recognised.
pub(crate) fn console_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
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
    let flow = format!("login {name}");
    ev.secret(password);
    let mut cmd = console_command("login");
    cmd.arg(name);
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    term.expect(PASSWORD_PROMPT)?;
    term.send_secret(password)?;
    let sent = Instant::now();
    let answer = term.expect_any(&[SHELL_PROMPT, REFUSED, CHANGE_REQUIRED])?;
    let answer_after = sent.elapsed();
    let outcome = match answer.which {
        0 => {
            term.send_line(WHOAMI)?;
            let m = term.expect(WHOAMI_OUTPUT)?;
            let user = whoami_of(&m.text);
            term.send_line("exit")?;
            let _ = term.wait_exit();
            AuthOutcome::Shell { user }
        }
        1 => AuthOutcome::Refused {
            message: answer.text.clone(),
        },
        _ => AuthOutcome::ChangeRequired,
    };
    Ok(finish(ev, flow, term, password, outcome, answer_after))
}

/// `su - TARGET -c WHOAMI` started by `caller` (an unprivileged test user)
/// on a PTY, answering the password prompt with `password`.
pub fn su_from(ev: &Evidence, caller: &TestUser, target: &str, password: &str) -> Result<Attempt> {
    let flow = format!("su - {target} (run by {})", caller.name());
    ev.secret(password);
    let mut cmd = console_command("setpriv");
    cmd.args([
        "--reuid",
        &caller.uid().to_string(),
        "--regid",
        &caller.gid().to_string(),
        "--clear-groups",
        "--",
        "su",
        "-",
        target,
        "-c",
        WHOAMI,
    ]);
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    term.expect(PASSWORD_PROMPT)?;
    term.send_secret(password)?;
    let sent = Instant::now();
    let answer = term.expect_any(&[WHOAMI_OUTPUT, REFUSED, CHANGE_REQUIRED])?;
    let answer_after = sent.elapsed();
    let outcome = match answer.which {
        0 => AuthOutcome::Shell {
            user: whoami_of(&answer.text),
        },
        1 => AuthOutcome::Refused {
            message: answer.text.clone(),
        },
        _ => AuthOutcome::ChangeRequired,
    };
    Ok(finish(ev, flow, term, password, outcome, answer_after))
}

/// A question from PAM on the terminal: the password, a verification code.
const PROMPT: &str = r"(?i)(password|verification code|passcode)[^\r\n]*: ?$";

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
    let mut cmd = console_command("setpriv");
    cmd.args([
        "--reuid",
        &caller.uid().to_string(),
        "--regid",
        &caller.gid().to_string(),
        "--clear-groups",
        "--",
        "su",
        "-",
        target,
        "-c",
        WHOAMI,
    ]);
    converse(ev, flow, cmd, answers, ShellSign::Marker)
}

/// `login NAME` on a PTY, answering PAM's questions with `answers` in turn
/// (see [`su_prompts`]).
pub fn login_prompts(ev: &Evidence, name: &str, answers: &[&str]) -> Result<Attempt> {
    let flow = format!("login {name}");
    let mut cmd = console_command("login");
    cmd.arg(name);
    converse(ev, flow, cmd, answers, ShellSign::Prompt)
}

/// How a flow shows that a shell runs.
enum ShellSign {
    /// A shell prompt: type WHOAMI and read its output.
    Prompt,
    /// The WHOAMI output of the command the flow runs.
    Marker,
}

fn converse(
    ev: &Evidence,
    flow: String,
    cmd: Command,
    answers: &[&str],
    shell: ShellSign,
) -> Result<Attempt> {
    for a in answers {
        ev.secret(a);
    }
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    let started = Instant::now();
    let mut answered = 0;
    let mut sent: Option<Instant> = None;
    let mut answer_after;
    let shell_needle = match shell {
        ShellSign::Prompt => SHELL_PROMPT,
        ShellSign::Marker => WHOAMI_OUTPUT,
    };
    let outcome = loop {
        // Order matters: the first pattern that matches wins, and
        // "Current password:" of a forced change is also a question.
        let m = term.expect_any(&[shell_needle, REFUSED, CHANGE_REQUIRED, PROMPT])?;
        // Without any question, the decision time counts from the start.
        answer_after = sent.unwrap_or(started).elapsed();
        match m.which {
            0 => {
                let user = match shell {
                    ShellSign::Marker => whoami_of(&m.text),
                    ShellSign::Prompt => {
                        term.send_line(WHOAMI)?;
                        let out = term.expect(WHOAMI_OUTPUT)?;
                        term.send_line("exit")?;
                        let _ = term.wait_exit();
                        whoami_of(&out.text)
                    }
                };
                break AuthOutcome::Shell { user };
            }
            1 => {
                break AuthOutcome::Refused {
                    message: m.text.clone(),
                }
            }
            2 => break AuthOutcome::ChangeRequired,
            _ => match answers.get(answered) {
                Some(answer) => {
                    term.send_secret(answer)?;
                    answered += 1;
                    sent = Some(Instant::now());
                }
                None => {
                    let line_start = m.before.rsplit(['\r', '\n']).next().unwrap_or("");
                    break AuthOutcome::Refused {
                        message: format!(
                            "the {} answer(s) given were not accepted; asked again: {}{}",
                            answers.len(),
                            line_start,
                            m.text.trim()
                        ),
                    };
                }
            },
        }
    };
    if sent.is_none() {
        ev.note(format!("{flow}: decided without asking anything"));
    }
    Ok(finish(
        ev,
        flow,
        term,
        answers.first().copied().unwrap_or(""),
        outcome,
        answer_after,
    ))
}

pub(crate) fn whoami_of(marker: &str) -> String {
    marker
        .trim_start_matches("FR1-")
        .trim_end_matches("-END")
        .to_owned()
}

pub(crate) fn finish(
    ev: &Evidence,
    flow: String,
    mut term: Terminal,
    password: &str,
    outcome: AuthOutcome,
    answer_after: Duration,
) -> Attempt {
    let transcript = term.transcript().to_owned();
    term.close();
    // An empty password is "contained" in every transcript; it cannot be
    // seen on the screen, so it never counts as echoed.
    let secret_echoed = !password.is_empty() && transcript.contains(password);
    ev.note(format!(
        "{flow}: {outcome:?}, answered {:.3} s after the password was sent{}",
        answer_after.as_secs_f64(),
        if secret_echoed {
            "; THE PASSWORD WAS ECHOED"
        } else {
            ""
        }
    ));
    Attempt {
        flow,
        outcome,
        secret_echoed,
        answer_after,
        transcript,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rexpect::reader::Regex;

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
