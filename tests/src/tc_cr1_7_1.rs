//! TC_CR1.7_1 — CR1.7 strength of password-based authentication.
//!
//! Proves: the quality module configured in the password stack (pam_passwdqc,
//! pam_pwquality or pam_cracklib, found by following the includes of
//! /etc/pam.d/passwd) enforces each minimum it is configured with, and the
//! catalog's floor. Per class count (1 to 4) and for passphrases (passwdqc's
//! `min=` N2 with `passphrase=` words): with a configured minimum of n
//! characters, one of n - 1 is refused and one of n accepted; a kind that is
//! never accepted (`disabled`) is refused at a comfortable length.
//! The catalog's floor, whatever the configuration: passwords with 1, 2 or 3
//! classes, and passphrases, are refused at the reference length (the
//! 4-class minimum, never below 8), and a 4-class password one character
//! shorter than the reference is refused; fewer classes may be accepted only
//! when longer, as the configured per-class minima say.
//! Tried through `passwd` run by the user on a PTY, and the refusals again
//! through `chpasswd` run by root. Every outcome is checked in /etc/shadow
//! (a refusal leaves the stored hash alone) and an accepted password then
//! logs in (`su`).
//! Negative controls: profiles `passwdqc-removed` (no quality module in
//! common-password), `passwdqc-relaxed` (`min=6,6,6,6,6`: a 1-class
//! password of 8 characters is accepted) and `passwdqc-short-passphrase`
//! (passphrases of 2 words from 8 characters: one is accepted).

use harness::facts::password_policy::{catalog_floor_plan, detect, Expect, QualityPolicy, Try};
use harness::flows::login::su_from;
use harness::flows::passwd::{chpasswd, passwd_own, PasswordChange};
use harness::runtime::case::Findings;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.7_1",
    "CR1.7",
    "Strength of password-based authentication",
    "the configured quality module enforces its minimum for each class count and for passphrases, and the catalog's floor (1-3 classes and passphrases refused at the reference length, 4 classes refused one below it), through passwd (as the user) and chpasswd",
    run,
)
.fails_under(&[
    Control::Profile("passwdqc-removed"),
    Control::Profile("passwdqc-relaxed"),
    Control::Profile("passwdqc-short-passphrase"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut findings = Findings::default();

    ev.step("find the quality module in the password stack of passwd");
    let plan = match quality_policy(ev, "passwd")? {
        Some(policy) => policy.plan()?,
        None => {
            findings.violation(no_module("passwd"));
            ev.note("no quality module: trying the catalog's floor only, to show what is accepted");
            catalog_floor_plan()?
        }
    };
    for note in &plan.notes {
        ev.note(note);
    }

    // Without a working password stack even the throw-away accounts cannot
    // get their passwords: that must not hide what was found above.
    let accounts = TestUser::create(ev).and_then(|user| Ok((user, TestUser::create(ev)?)));
    let (mut user, caller) = match accounts {
        Ok(accounts) => accounts,
        Err(e) => {
            findings.step(Err(e.context("creating the test accounts")));
            return findings.verdict(VERDICT);
        }
    };

    ev.step("passwd on a PTY, run by the user: below and at each minimum");
    for attempt in &plan.tries {
        findings.step(passwd_try(ev, &mut user, &caller, attempt));
    }

    ev.step("chpasswd, run by root: the refusals again, then a strong password");
    findings.step(chpasswd_tries(ev, &mut user, &caller));

    findings.verdict(VERDICT)
}

/// The head of the failure message.
const VERDICT: &str = "the password-strength policy is not enforced as CR1.7 requires";

/// One try through `passwd`: the violation it shows, if any.
fn passwd_try(
    ev: &Evidence,
    user: &mut TestUser,
    caller: &TestUser,
    attempt: &Try,
) -> anyhow::Result<Vec<String>> {
    ev.note(format!(
        "trying {} ({}): must be {}",
        attempt.label,
        attempt.why,
        match attempt.expect {
            Expect::Refused => "refused",
            Expect::Accepted => "accepted",
        }
    ));
    let change = passwd_own(ev, user, &attempt.text)?;
    let violation = match (&change.outcome, attempt.expect) {
        (PasswordChange::Rejected { message }, Expect::Refused) => {
            ev.ok(format!("passwd refused {}: {message}", attempt.label));
            None
        }
        (PasswordChange::Rejected { message }, Expect::Accepted) => Some(format!(
            "passwd refused {} although {}: {message}",
            attempt.label, attempt.why
        )),
        (PasswordChange::Changed, expect) => {
            su_from(ev, caller, user.name(), user.password())?.assert_shell_as(user.name())?;
            let verdict = if expect == Expect::Accepted {
                ev.ok(format!(
                    "passwd accepted {}, and it is now the password that logs in",
                    attempt.label
                ));
                None
            } else {
                Some(format!(
                    "passwd accepted {} (and it logs in), although {}",
                    attempt.label, attempt.why
                ))
            };
            // passwdqc compares a new password with the old one
            // (similar=deny): the next try must meet a random old one,
            // not this shaped one.
            chpasswd(ev, user, &strong_password()?)?.assert_changed()?;
            ev.note("password set back to a random one by root, so the next try is not compared with this one");
            verdict
        }
    };
    Ok(violation.into_iter().collect())
}

/// `chpasswd` as root: the refusals of the chpasswd stack's own plan
/// (a violation where the module is configured to hold root to its policy),
/// then a strong password that must be accepted and log in.
fn chpasswd_tries(
    ev: &Evidence,
    user: &mut TestUser,
    caller: &TestUser,
) -> anyhow::Result<Vec<String>> {
    let Some(policy) = quality_policy(ev, "chpasswd")? else {
        return Ok(vec![no_module("chpasswd")]);
    };
    let module = policy.module.file_name();
    let mut violations = Vec::new();
    for attempt in policy.plan()?.tries {
        if attempt.expect == Expect::Accepted {
            continue;
        }
        let change = chpasswd(ev, user, &attempt.text)?;
        match (&change.outcome, policy.enforced_for_root) {
            (PasswordChange::Rejected { message }, _) => {
                ev.ok(format!("chpasswd refused {}: {message}", attempt.label))
            }
            (PasswordChange::Changed, true) => violations.push(format!(
                "chpasswd (run by root) accepted {}, although {} and {module} is configured \
                 to enforce its policy for root",
                attempt.label, attempt.why
            )),
            (PasswordChange::Changed, false) => ev.note(format!(
                "chpasswd accepted {}: {module} only warns root (as configured), so root can \
                 set weak passwords",
                attempt.label
            )),
        }
    }
    let strong = policy.strong()?;
    chpasswd(ev, user, &strong.text)?.assert_changed()?;
    su_from(ev, caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    ev.ok(format!(
        "chpasswd accepted {}, which then logs in",
        strong.label
    ));
    Ok(violations)
}

/// The quality policy of `service`'s password stack, reported in the
/// evidence; `None` when the stack has no quality module.
fn quality_policy(ev: &Evidence, service: &str) -> anyhow::Result<Option<QualityPolicy>> {
    let policy = detect(service)?;
    match &policy {
        Some(policy) => ev.note(policy.describe()),
        None => ev.note(format!(
            "no quality module in the password stack of PAM service {service}"
        )),
    }
    Ok(policy)
}

fn no_module(service: &str) -> String {
    format!(
        "no password-quality module (pam_passwdqc, pam_pwquality or pam_cracklib) is \
         installed and in the password stack of PAM service {service}: no \
         password-strength policy is enforced"
    )
}
