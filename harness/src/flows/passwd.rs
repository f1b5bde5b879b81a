//! Changing a password through the real programs, and checking that it
//! really changed.
//!
//! - [`passwd_own`]: `passwd` run by the user on a PTY, answering "Current
//!   password:", "New password:" and "Retype new password:" as a person
//!   would;
//! - [`passwd_for`]: `passwd OTHER` run by an unprivileged user (which must
//!   be refused);
//! - [`chpasswd`]: root's batch tool, which runs the `chpasswd` PAM stack;
//! - [`change_dialogue`]: the same dialogue when `login` or `su` force a
//!   change of an expired password (see [`crate::flows::login::login_changing`]).
//!
//! The outcome is what the dialogue showed, checked against /etc/shadow: a
//! change must have replaced the stored hash, a refusal must have left it
//! as it was; a disagreement is an error, never a pass. Quality modules ask
//! again after a refusal (`retry=`): that second prompt *is* the refusal,
//! and the dialogue stops there.

use crate::flows::pty::{Matched, Terminal};
use crate::runtime::command::run;
use crate::{facts::shadow, Evidence, TestUser};
use anyhow::{bail, Result};
use std::process::Command;

/// pam_unix asking for the password being replaced ("Current password: ",
/// older releases "(current) UNIX password: ").
pub(crate) const CURRENT_PROMPT: &str = r"(?i)(current|old)[^\r\n]*password[^\r\n]*: ?$";
/// The confirmation ("Retype new password: " from pam_unix and
/// pam_pwquality, "Re-type new password: " from pam_passwdqc).
pub(crate) const RETYPE_PROMPT: &str = r"(?i)re-?(type|enter)[^\r\n]*password[^\r\n]*: ?$";
/// The new password ("New password: ", "Enter new password: ").
pub(crate) const NEW_PROMPT: &str = r"(?i)new[^\r\n]*password[^\r\n]*: ?$";
/// `passwd`'s own report of a change.
const PASSWD_DONE: &str =
    r"(?i)(password updated successfully|all authentication tokens updated successfully)";
/// Messages after which no change can follow: a wrong current password,
/// the minimum age, another user's password, retries used up.
/// Whole lines where the reason follows the words matched.
const CHANGE_FAILED: &str = r"(?i)(authentication token manipulation error|password unchanged|permission denied|(you must wait longer|may not view or modify password information|have exhausted maximum number of retries)[^\r\n]*\r?\n)";

/// What became of one password change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// The stored password was replaced.
    Changed,
    /// Refused, with what the program said.
    Rejected { message: String },
}

/// As the evidence says it: "changed", "rejected: BAD PASSWORD: …".
impl std::fmt::Display for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordChange::Changed => f.write_str("changed"),
            PasswordChange::Rejected { message } => write!(f, "rejected: {}", message.trim()),
        }
    }
}

/// One change attempt: the outcome plus what the terminal showed.
#[derive(Debug, Clone)]
pub struct ChangeAttempt {
    pub flow: String,
    pub outcome: PasswordChange,
    /// A typed password appeared in the terminal output (CR1.10).
    pub secret_echoed: bool,
    pub transcript: String,
}

impl ChangeAttempt {
    pub fn assert_changed(&self) -> Result<()> {
        match &self.outcome {
            PasswordChange::Changed => Ok(()),
            PasswordChange::Rejected { message } => bail!(
                "{}: expected the password to be changed, but it was refused: {message}",
                self.flow
            ),
        }
    }

    /// The change must have been refused; returns the program's message.
    pub fn assert_rejected(&self) -> Result<&str> {
        match &self.outcome {
            PasswordChange::Rejected { message } => Ok(message),
            PasswordChange::Changed => bail!(
                "{}: expected the change to be refused, but the password was changed",
                self.flow
            ),
        }
    }
}

/// How a change dialogue ended.
pub(crate) enum DialogueEnd {
    /// The program went on as after a successful change: one of the
    /// caller's patterns matched.
    WentOn { matched: Matched },
    /// Refused: the module asked again, the program said so, or it ended.
    Rejected { message: String },
}

/// Answer a password-change dialogue on `term` until it ends: the current
/// password when asked (already asked when `current_asked`), then `new`
/// and its confirmation. `went_on` are what the program shows once the
/// change went through (passwd's message, a shell prompt).
pub(crate) fn change_dialogue(
    term: &mut Terminal,
    current: &str,
    new: &str,
    current_asked: bool,
    went_on: &[&str],
) -> Result<DialogueEnd> {
    let mut patterns = went_on.to_vec();
    let first = patterns.len();
    patterns.extend([CHANGE_FAILED, CURRENT_PROMPT, RETYPE_PROMPT, NEW_PROMPT]);
    let (failed, current_prompt, retype_prompt, new_prompt, ended) =
        (first, first + 1, first + 2, first + 3, first + 4);

    let mut sent_current = false;
    let mut sent_new = false;
    // What the program said since the last answer that matters.
    let mut said = String::new();
    if current_asked {
        term.send_secret(current)?;
        sent_current = true;
    }
    loop {
        let m = term.expect_any_or_end(&patterns)?;
        said.push_str(&m.before);
        match m.which {
            w if w < first => return Ok(DialogueEnd::WentOn { matched: m }),
            w if w == failed => {
                said.push_str(&m.text);
                return Ok(DialogueEnd::Rejected {
                    message: gist(&said),
                });
            }
            w if w == current_prompt => {
                if sent_current {
                    return Ok(DialogueEnd::Rejected {
                        message: format!("asked for the current password again: {}", gist(&said)),
                    });
                }
                term.send_secret(current)?;
                sent_current = true;
                said.clear();
            }
            w if w == retype_prompt => {
                if !sent_new {
                    bail!("asked to retype a new password before asking for one");
                }
                term.send_secret(new)?;
            }
            w if w == new_prompt => {
                if sent_new {
                    // The module refused the password and asks for another
                    // one (retry=): that is the refusal.
                    return Ok(DialogueEnd::Rejected {
                        message: gist(&said),
                    });
                }
                term.send_secret(new)?;
                sent_new = true;
                said.clear();
            }
            w if w == ended => {
                return Ok(DialogueEnd::Rejected {
                    message: match gist(&said) {
                        s if s.is_empty() => "the program ended without a change".to_owned(),
                        s => s,
                    },
                })
            }
            _ => unreachable!("expect_any_or_end returns a pattern index or the end"),
        }
    }
}

/// The first two different non-empty lines of what a program said: the
/// reason, without the policy text that follows (or its repetitions, when
/// a batch tool answers each retry with the same password).
fn gist(text: &str) -> String {
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.dedup();
    lines.truncate(2);
    lines.join(" / ")
}

/// `passwd` run by `user` for their own password, on a PTY. On a change,
/// the user's password is updated.
pub fn passwd_own(ev: &Evidence, user: &mut TestUser, new: &str) -> Result<ChangeAttempt> {
    let attempt = passwd_as(ev, user, None, user.password(), new)?;
    if attempt.outcome == PasswordChange::Changed {
        user.password_changed_to(new);
    }
    Ok(attempt)
}

/// `passwd TARGET` run by `caller`, an unprivileged user, answering
/// `current` if asked for the current password.
pub fn passwd_for(
    ev: &Evidence,
    caller: &TestUser,
    target: &str,
    current: &str,
    new: &str,
) -> Result<ChangeAttempt> {
    passwd_as(ev, caller, Some(target), current, new)
}

fn passwd_as(
    ev: &Evidence,
    caller: &TestUser,
    target: Option<&str>,
    current: &str,
    new: &str,
) -> Result<ChangeAttempt> {
    ev.secret(current);
    ev.secret(new);
    let owner = target.unwrap_or(caller.name());
    let flow = match target {
        Some(t) => format!("passwd {t} (run by {})", caller.name()),
        None => format!("passwd (run by {})", caller.name()),
    };
    let before = shadow::entry(owner)?.hash;
    let mut cmd = caller.command("passwd");
    if let Some(t) = target {
        cmd.arg(t);
    }
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    let outcome = match change_dialogue(&mut term, current, new, false, &[PASSWD_DONE])? {
        DialogueEnd::WentOn { .. } => match term.wait_exit()? {
            Some(0) => PasswordChange::Changed,
            code => bail!("{flow}: reported success but exited with {code:?}"),
        },
        DialogueEnd::Rejected { message } => PasswordChange::Rejected { message },
    };
    let transcript = term.transcript().to_owned();
    term.close();
    let secret_echoed = transcript.contains(new) || transcript.contains(current);
    check_against_shadow(ev, &flow, owner, &outcome, &before)?;
    Ok(ChangeAttempt {
        flow,
        outcome,
        secret_echoed,
        transcript,
    })
}

/// `chpasswd` run by root for `user` (`NAME:PASSWORD` on its input). It
/// runs the `chpasswd` PAM service's password stack; whether the quality
/// module applies to root depends on its configuration (passwdqc
/// `enforce=everyone`, pwquality `enforce_for_root`).
pub fn chpasswd(ev: &Evidence, user: &mut TestUser, new: &str) -> Result<ChangeAttempt> {
    ev.secret(new);
    let flow = format!("chpasswd for {} (run by root)", user.name());
    let before = shadow::entry(user.name())?.hash;
    let mut cmd = Command::new("chpasswd");
    cmd.env("LC_ALL", "C").env("LANG", "C");
    let ran = run(ev, &mut cmd, Some(&format!("{}:{new}\n", user.name())))?;
    let outcome = if ran.success {
        PasswordChange::Changed
    } else {
        PasswordChange::Rejected {
            message: gist(&ran.stderr),
        }
    };
    check_against_shadow(ev, &flow, user.name(), &outcome, &before)?;
    if outcome == PasswordChange::Changed {
        user.password_changed_to(new);
    }
    Ok(ChangeAttempt {
        flow,
        outcome,
        secret_echoed: false,
        transcript: ran.all_output(),
    })
}

/// The stored hash of `name` must have changed exactly when the flow says
/// the password changed.
pub(crate) fn check_against_shadow(
    ev: &Evidence,
    flow: &str,
    name: &str,
    outcome: &PasswordChange,
    before: &str,
) -> Result<()> {
    let after = shadow::entry(name)?;
    let changed = after.hash != before;
    match (outcome, changed) {
        (PasswordChange::Changed, false) => bail!(
            "{flow}: reported a change, but the stored hash of {name} in /etc/shadow is unchanged"
        ),
        (PasswordChange::Rejected { message }, true) => bail!(
            "{flow}: refused ({message}), yet the stored hash of {name} in /etc/shadow changed"
        ),
        _ => {}
    }
    ev.note(format!(
        "{flow}: {outcome}; stored hash of {name} {} ({})",
        if changed { "replaced" } else { "unchanged" },
        after.hash_method()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rexpect::reader::Regex;

    #[test]
    fn prompts_of_every_module_are_told_apart() {
        let current = Regex::new(CURRENT_PROMPT).unwrap();
        let retype = Regex::new(RETYPE_PROMPT).unwrap();
        let new = Regex::new(NEW_PROMPT).unwrap();
        for p in ["Current password: ", "(current) UNIX password: "] {
            assert!(current.is_match(p) && !new.is_match(p), "{p}");
        }
        for p in [
            "Enter new password: ",
            "New password: ",
            "New UNIX password: ",
        ] {
            assert!(
                new.is_match(p) && !retype.is_match(p) && !current.is_match(p),
                "{p}"
            );
        }
        for p in [
            "Re-type new password: ",
            "Retype new password: ",
            "Retype new UNIX password: ",
        ] {
            assert!(retype.is_match(p), "{p}");
        }
        // passwdqc's explanation mentions the new password, but is no prompt.
        assert!(!new.is_match("You can now choose the new password.\r\n\r\n"));
        let failed = Regex::new(CHANGE_FAILED).unwrap();
        for m in [
            "You must wait longer to change your password.\r\n",
            "passwd: You may not view or modify password information for fr1-ab.\r\n",
            "passwd: Authentication token manipulation error",
        ] {
            assert!(failed.is_match(m), "{m}");
        }
        assert!(!failed.is_match("Weak password: too short."));
    }

    #[test]
    fn the_gist_is_the_reason_not_the_policy_text() {
        let said = "\r\nWeak password: not enough different characters or classes.\r\nTry again.\r\n\r\nYou can now choose the new password.\r\n";
        assert_eq!(
            gist(said),
            "Weak password: not enough different characters or classes. / Try again."
        );
        let chpasswd = "Weak password: too short.\nWeak password: too short.\nWeak password: too short.\nchpasswd: (user fr1-ab) pam_chauthtok() failed, error:\n";
        assert_eq!(
            gist(chpasswd),
            "Weak password: too short. / chpasswd: (user fr1-ab) pam_chauthtok() failed, error:"
        );
    }

    /// A module that refuses and asks again: the second prompt ends the
    /// dialogue as a refusal (found with passwdqc's retry=3).
    #[test]
    fn a_second_new_password_prompt_is_a_refusal() {
        let ev = Evidence::new("t");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "stty -echo; printf 'Current password: '; read a; printf '\\nEnter new password: '; read b; \
             printf '\\nWeak password: too short.\\nTry again.\\n\\nEnter new password: '; read c",
        ]);
        let mut term = Terminal::spawn(&ev, "fake passwd", cmd).unwrap();
        match change_dialogue(&mut term, "old", "new", false, &[PASSWD_DONE]).unwrap() {
            DialogueEnd::Rejected { message } => {
                assert_eq!(message, "Weak password: too short. / Try again.")
            }
            DialogueEnd::WentOn { .. } => panic!("taken for a change"),
        }
    }

    #[test]
    fn a_program_that_gives_up_is_a_refusal_with_its_message() {
        let ev = Evidence::new("t");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "stty -echo; printf 'Current password: '; read a; printf '\\nYou must wait longer to change your password.\\n'; exit 10",
        ]);
        let mut term = Terminal::spawn(&ev, "fake passwd", cmd).unwrap();
        match change_dialogue(&mut term, "old", "new", false, &[PASSWD_DONE]).unwrap() {
            DialogueEnd::Rejected { message } => {
                assert_eq!(message, "You must wait longer to change your password.")
            }
            DialogueEnd::WentOn { .. } => panic!("taken for a change"),
        }
    }
}
