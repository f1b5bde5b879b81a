//! One authentication dialogue on a terminal: answer the questions PAM (or
//! ssh) asks, in turn, and classify how the program ended it.
//!
//! `login`, `su` and `ssh` differ only in how they are started and in the
//! texts they end with ([`Ends`]); the conversation is the same, so it is
//! driven here once. The flows in [`crate::login`] and [`crate::ssh`] build
//! the command and read the [`Attempt`].

use crate::login::{Attempt, AuthOutcome, Moments, CHANGE_REQUIRED, WHOAMI, WHOAMI_OUTPUT};
use crate::pty::{Terminal, DEFAULT_TIMEOUT};
use crate::Evidence;
use anyhow::{bail, Result};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

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
    let started = Instant::now();
    let mut sent: Option<Instant> = None;
    let mut first_answer: Option<SystemTime> = None;
    let mut answered = 0;
    let shell = match ends.shell {
        ShellSign::Prompt => SHELL_PROMPT,
        ShellSign::Marker => WHOAMI_OUTPUT,
    };
    // Order matters: the first pattern that matches wins, and "Current
    // password:" of a forced change is also a question.
    let mut needles = vec![shell, ends.refused, CHANGE_REQUIRED];
    needles.extend(ends.failure);
    needles.push(QUESTION);
    let question = needles.len() - 1;
    loop {
        let m = term.expect_any(&needles)?;
        let answer_after = sent.unwrap_or(started).elapsed();
        let seen = SystemTime::now();
        let decided = |outcome| Decision {
            outcome,
            matched: m.text.clone(),
            answer_after,
            asked: sent.is_some(),
            answered: first_answer,
            decided: seen,
        };
        match m.which {
            0 => {
                let user = match ends.shell {
                    ShellSign::Prompt => shell_user(term)?,
                    ShellSign::Marker => {
                        let _ = term.wait_exit();
                        whoami_of(&m.text)
                    }
                };
                return Ok(decided(AuthOutcome::Shell { user }));
            }
            1 => {
                return Ok(decided(AuthOutcome::Refused {
                    message: m.text.trim().to_owned(),
                }))
            }
            2 => return Ok(decided(AuthOutcome::ChangeRequired)),
            i if i == question => match answers.get(answered) {
                Some(answer) => {
                    term.send_secret(answer)?;
                    answered += 1;
                    sent = Some(Instant::now());
                    first_answer.get_or_insert_with(SystemTime::now);
                }
                None => {
                    // The question's line starts before the matched word.
                    let line_start = m.before.rsplit(['\r', '\n']).next().unwrap_or("");
                    return Ok(decided(AuthOutcome::Refused {
                        message: format!(
                            "the {} answer(s) given were not accepted; asked again: {}{}",
                            answers.len(),
                            line_start,
                            m.text.trim()
                        ),
                    }));
                }
            },
            _ if regex_matches(ends.refused, &m.text) => {
                return Ok(decided(AuthOutcome::Refused {
                    message: m.text.trim().to_owned(),
                }))
            }
            _ => bail!(
                "{flow}: the program failed before the system decided: {}",
                ev.mask(m.text.trim())
            ),
        }
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
