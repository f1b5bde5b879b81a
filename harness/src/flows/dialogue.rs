//! One authentication dialogue on a terminal: answer the questions PAM (or
//! ssh) asks, in turn, and classify how the program ended it.
//!
//! `login`, `su` and `ssh` differ only in how they are started and in the
//! texts they end with ([`Ends`]); the conversation is the same, so it is
//! driven here once. The flows in [`crate::flows::login`] and [`crate::flows::ssh`] build
//! the command and read the [`Attempt`].

use crate::flows::pty::{Terminal, DEFAULT_TIMEOUT};
use crate::Evidence;
use anyhow::{bail, Result};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// The command a successful session runs: the marker proves a real shell
/// ran as the authenticated user, and cannot be confused with the typed
/// command echoed by the terminal (`$(` is not in the captured class).
pub const WHOAMI: &str = "echo FR1-$(id -un)-END";
pub(crate) const WHOAMI_OUTPUT: &str = r"FR1-([A-Za-z0-9._-]+)-END";

pub(crate) const CHANGE_REQUIRED: &str = r"(?i)(required to change your password|password has expired|password expired|current password:|\(current\) unix password:)";

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

/// As the evidence and failure messages say it: "a shell as fr1-x",
/// "refused: Login incorrect", "a forced password change".
impl std::fmt::Display for AuthOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthOutcome::Shell { user } => write!(f, "a shell as {user}"),
            AuthOutcome::Refused { message } if message.trim().is_empty() => {
                f.write_str("refused (no message)")
            }
            AuthOutcome::Refused { message } => write!(f, "refused: {}", message.trim()),
            AuthOutcome::ChangeRequired => f.write_str("a forced password change"),
        }
    }
}

/// One attempt: the outcome plus what an observer of the terminal saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub flow: String,
    pub outcome: AuthOutcome,
    /// The typed secret appeared in the terminal output (CR1.10).
    pub secret_echoed: bool,
    /// Time from sending the (last) answer to the system's decision; from
    /// the start of the program when it decided without asking.
    pub answer_after: Duration,
    /// When it happened, on the clock the system keeps its own times with.
    pub moments: Moments,
    pub transcript: String,
}

/// When an attempt happened on the wall clock, the clock pam_faillock and
/// fail2ban record their events with. Whatever the system decided in the
/// attempt (a lock check, a ban), it decided after `started` and before
/// `decided`: a check timed against such an event is judged with these
/// bounds, never with the moment the suite meant to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moments {
    /// Just before the program was started.
    pub started: SystemTime,
    /// The first answer (the password) was sent; `None` when the program
    /// decided without asking.
    pub answered: Option<SystemTime>,
    /// The decision (shell, refusal, change demand) was seen.
    pub decided: SystemTime,
}

impl Moments {
    /// From the start to the first answer: how long the flow takes to ask
    /// (for ssh: connecting, key exchange, PAM's conversation starting).
    pub fn time_to_ask(&self) -> Option<Duration> {
        self.answered
            .and_then(|a| a.duration_since(self.started).ok())
    }
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
            other => bail!("{}: expected a shell as {user}, got {other}", self.flow),
        }
    }

    /// The attempt must have been refused: no shell, no password-change dialogue.
    pub fn assert_refused(&self) -> Result<()> {
        match &self.outcome {
            AuthOutcome::Refused { .. } => Ok(()),
            other => bail!(
                "{}: expected the attempt to be refused, got {other}",
                self.flow
            ),
        }
    }

    pub fn assert_change_required(&self) -> Result<()> {
        match &self.outcome {
            AuthOutcome::ChangeRequired => Ok(()),
            other => bail!(
                "{}: expected a forced password change, got {other}",
                self.flow
            ),
        }
    }
}

/// A question on the terminal: the password, a verification code (TOTP),
/// a passcode. PAM through `login`/`su` and sshd's keyboard-interactive
/// (`(user@127.0.0.1) Password: `) and password methods
/// (`user@127.0.0.1's password: `) all end theirs with a colon.
pub(crate) const QUESTION: &str = r"(?i)(password|verification code|passcode)[^\r\n]*: ?$";
/// The prompt of a shell started by `login`.
pub(crate) const SHELL_PROMPT: &str = r"[$#] $";

/// How a flow shows that a shell runs as the authenticated user.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ShellSign {
    /// An interactive shell's prompt: type [`WHOAMI`] and read its output.
    Prompt,
    /// The output of [`WHOAMI`], which the flow runs as its command.
    Marker,
}

/// The texts a program ends an authentication dialogue with.
pub(crate) struct Ends {
    pub shell: ShellSign,
    /// The program's refusal.
    pub refused: &'static str,
    /// Errors of the program itself (a connection that failed): they are no
    /// decision of the system, so the attempt is an error, unless the line
    /// also carries the refusal (sshd disconnecting after too many failures).
    pub failure: Option<&'static str>,
}

/// How the dialogue ended, with the terminal still open.
pub(crate) struct Decision {
    pub outcome: AuthOutcome,
    /// The text that ended it (for a forced change: the demand, which may
    /// already be the current-password question).
    pub matched: String,
    /// Time from the last answer to the decision; from the start when the
    /// program decided without asking (a refusal without a question must
    /// not look infinitely fast).
    pub answer_after: Duration,
    /// At least one question was answered.
    pub asked: bool,
    /// When the first answer was sent.
    pub answered: Option<SystemTime>,
    /// When the decision was seen.
    pub decided: SystemTime,
}

impl Decision {
    /// The attempt's [`Moments`], for a program started at `started`.
    pub fn moments(&self, started: SystemTime) -> Moments {
        Moments {
            started,
            answered: self.answered,
            decided: self.decided,
        }
    }
}

/// Spawn `cmd` on a terminal, run the dialogue, close the terminal.
pub(crate) fn converse(
    ev: &Evidence,
    flow: String,
    cmd: Command,
    answers: &[&str],
    ends: &Ends,
) -> Result<Attempt> {
    converse_within(ev, flow, cmd, answers, ends, DEFAULT_TIMEOUT)
}

/// [`converse`], giving up on each wait for the program after `timeout`.
pub(crate) fn converse_within(
    ev: &Evidence,
    flow: String,
    mut cmd: Command,
    answers: &[&str],
    ends: &Ends,
    timeout: Duration,
) -> Result<Attempt> {
    for a in answers {
        ev.secret(a);
    }
    let started = SystemTime::now();
    let mut term = Terminal::spawn_with_timeout(ev, &flow, &mut cmd, timeout)?;
    let decision = decide(ev, &flow, &mut term, answers, ends)?;
    let moments = decision.moments(started);
    if !decision.asked {
        ev.note(format!("{flow}: decided without asking anything"));
    }
    Ok(finish(
        ev,
        flow,
        term,
        answers.first().copied().unwrap_or(""),
        decision.outcome,
        decision.answer_after,
        moments,
    ))
}

/// Answer each question with the next of `answers` until the program
/// decides. A question beyond the last answer ends the attempt as
/// `Refused`: the answers given were not enough.
pub(crate) fn decide(
    ev: &Evidence,
    flow: &str,
    term: &mut Terminal,
    answers: &[&str],
    ends: &Ends,
) -> Result<Decision> {
    let needles = needles(ends);
    let question = needles.len() - 1;
    let mut turns = Turns::start();
    loop {
        let m = term.expect_any(&needles)?;
        let answer_after = turns.since_last_answer();
        let seen = SystemTime::now();
        let outcome = match m.which {
            0 => AuthOutcome::Shell {
                user: shell_owner(term, ends, &m.text)?,
            },
            1 => refused(&m.text),
            2 => AuthOutcome::ChangeRequired,
            i if i == question => match answers.get(turns.answered) {
                Some(answer) => {
                    turns.answer(term, answer)?;
                    continue;
                }
                None => asked_again(answers.len(), &m.before, &m.text),
            },
            _ if regex_matches(ends.refused, &m.text) => refused(&m.text),
            _ => bail!(
                "{flow}: the program failed before the system decided: {}",
                ev.mask(m.text.trim())
            ),
        };
        return Ok(Decision {
            outcome,
            matched: m.text,
            answer_after,
            asked: turns.sent.is_some(),
            answered: turns.first_answer,
            decided: seen,
        });
    }
}

/// What the dialogue waits for, in this order: the shell, the refusal, a
/// forced change, the program's own failure (if the flow has one), and
/// last a question. Order matters: the first pattern that matches wins,
/// and "Current password:" of a forced change is also a question.
fn needles(ends: &Ends) -> Vec<&'static str> {
    let shell = match ends.shell {
        ShellSign::Prompt => SHELL_PROMPT,
        ShellSign::Marker => WHOAMI_OUTPUT,
    };
    let mut needles = vec![shell, ends.refused, CHANGE_REQUIRED];
    needles.extend(ends.failure);
    needles.push(QUESTION);
    needles
}

/// The answers sent so far, and when.
struct Turns {
    started: Instant,
    sent: Option<Instant>,
    first_answer: Option<SystemTime>,
    answered: usize,
}

impl Turns {
    fn start() -> Self {
        Turns {
            started: Instant::now(),
            sent: None,
            first_answer: None,
            answered: 0,
        }
    }

    /// Time since the last answer; since the start before the first.
    fn since_last_answer(&self) -> Duration {
        self.sent.unwrap_or(self.started).elapsed()
    }

    fn answer(&mut self, term: &mut Terminal, answer: &str) -> Result<()> {
        term.send_secret(answer)?;
        self.answered += 1;
        self.sent = Some(Instant::now());
        self.first_answer.get_or_insert_with(SystemTime::now);
        Ok(())
    }
}

/// Whose shell the flow reached: asked at the prompt, or read from the
/// marker the flow's command printed.
fn shell_owner(term: &mut Terminal, ends: &Ends, matched: &str) -> Result<String> {
    match ends.shell {
        ShellSign::Prompt => shell_user(term),
        ShellSign::Marker => {
            let _ = term.wait_exit();
            Ok(whoami_of(matched))
        }
    }
}

fn refused(matched: &str) -> AuthOutcome {
    AuthOutcome::Refused {
        message: matched.trim().to_owned(),
    }
}

/// A question after the last answer: the answers given were not enough.
fn asked_again(answers: usize, before: &str, matched: &str) -> AuthOutcome {
    // The question's line starts before the matched word.
    let line_start = before.rsplit(['\r', '\n']).next().unwrap_or("");
    AuthOutcome::Refused {
        message: format!(
            "the {answers} answer(s) given were not accepted; asked again: {}{}",
            line_start,
            matched.trim()
        ),
    }
}

fn regex_matches(regex: &str, text: &str) -> bool {
    rexpect::reader::Regex::new(regex).is_ok_and(|r| r.is_match(text))
}

/// At a shell prompt: prove whose shell it is, then leave.
pub(crate) fn shell_user(term: &mut Terminal) -> Result<String> {
    term.send_line(WHOAMI)?;
    let m = term.expect(WHOAMI_OUTPUT)?;
    term.send_line("exit")?;
    let _ = term.wait_exit();
    Ok(whoami_of(&m.text))
}

/// The user name inside a [`WHOAMI_OUTPUT`] match.
pub(crate) fn whoami_of(marker: &str) -> String {
    marker
        .trim_start_matches("FR1-")
        .trim_end_matches("-END")
        .to_owned()
}

/// Close the terminal and turn what it showed into the [`Attempt`].
pub(crate) fn finish(
    ev: &Evidence,
    flow: String,
    mut term: Terminal,
    password: &str,
    outcome: AuthOutcome,
    answer_after: Duration,
    moments: Moments,
) -> Attempt {
    let transcript = term.transcript().to_owned();
    term.close();
    // An empty password is "contained" in every transcript; it cannot be
    // seen on the screen, so it never counts as echoed.
    let secret_echoed = !password.is_empty() && transcript.contains(password);
    ev.note(format!(
        "{flow}: {outcome}, answered {:.3} s after the password was sent{}",
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
        moments,
        transcript,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSED: &str = "Permission denied|Too many authentication failures";
    const FAILURE: &str = r"(?m)^Received disconnect [^\r\n]*\r*\n";

    fn script(text: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", text]);
        cmd
    }

    fn run(text: &str, answers: &[&str]) -> Result<Attempt> {
        let ends = Ends {
            shell: ShellSign::Marker,
            refused: REFUSED,
            failure: Some(FAILURE),
        };
        converse(
            &Evidence::new("t"),
            "t".into(),
            script(text),
            answers,
            &ends,
        )
    }

    #[test]
    fn the_shell_and_the_refusal_are_looked_for_before_a_question() {
        let mut ends = Ends {
            shell: ShellSign::Prompt,
            refused: REFUSED,
            failure: None,
        };
        assert_eq!(
            needles(&ends),
            [SHELL_PROMPT, REFUSED, CHANGE_REQUIRED, QUESTION]
        );
        ends.shell = ShellSign::Marker;
        ends.failure = Some(FAILURE);
        assert_eq!(
            needles(&ends),
            [WHOAMI_OUTPUT, REFUSED, CHANGE_REQUIRED, FAILURE, QUESTION]
        );
    }

    #[test]
    fn asked_again_quotes_the_whole_question_line() {
        let outcome = asked_again(1, "Password: \r\n(u@host) ", "Verification code: ");
        assert_eq!(
            outcome,
            AuthOutcome::Refused {
                message: "the 1 answer(s) given were not accepted; asked again: (u@host) Verification code:"
                    .into()
            }
        );
    }

    #[test]
    fn answers_go_in_turn_and_the_marker_is_the_shell() {
        let a = run(
            r#"printf 'Password: '; read p; printf 'Verification code: '; read c;
               [ "$p$c" = "pw123456" ] && echo FR1-u1-END || echo 'Permission denied'"#,
            &["pw", "123456"],
        )
        .unwrap();
        assert_eq!(a.outcome, AuthOutcome::Shell { user: "u1".into() });
    }

    #[test]
    fn a_question_beyond_the_answers_is_a_refusal() {
        let a = run(
            r"printf 'Password: '; read p; printf 'Verification code: '; read c",
            &["pw"],
        )
        .unwrap();
        assert!(
            matches!(&a.outcome, AuthOutcome::Refused { message } if message.contains("asked again")),
            "{:?}",
            a.outcome
        );
    }

    #[test]
    fn a_failure_is_an_error_unless_it_carries_the_refusal() {
        let err = run("echo 'Received disconnect from 127.0.0.1: bye'", &[]).unwrap_err();
        assert!(
            err.to_string().contains("failed before the system decided"),
            "{err}"
        );
        let a = run(
            "echo 'Received disconnect from 127.0.0.1: Too many authentication failures'",
            &[],
        )
        .unwrap();
        assert!(
            matches!(a.outcome, AuthOutcome::Refused { .. }),
            "{:?}",
            a.outcome
        );
    }
}
