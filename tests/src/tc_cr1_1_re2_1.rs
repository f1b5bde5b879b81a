//! TC_CR1.1-RE2_1 — CR1.1 RE2 multifactor authentication for all
//! interfaces (NA at SL-2; tested when the image has it).
//!
//! Proves: when pam_google_authenticator is installed, a user enrolled with
//! a TOTP secret (`~/.google_authenticator`, written by the suite) must give
//! the password AND the current code, computed by the suite (RFC 6238:
//! HMAC-SHA1, 30 s, 6 digits), both locally (`su -` run by another
//! unprivileged user) and over ssh (the device's own sshd, from a test
//! network of the case's own): the right password alone is not enough, a wrong code is refused,
//! password and right code give a shell. Without the module the case is
//! skipped with the assessment's NA reason.
//! Negative control: profile `mfa-line-removed` (the pam_google_authenticator
//! line removed from common-auth, the module still installed) — the right
//! password alone gives the enrolled user a shell.

use anyhow::bail;
use harness::case::skip;
use harness::device_sshd::RemoteLogins;
use harness::login::{su_prompts, Attempt};
use harness::{mfa, totp, AuthOutcome, Case, Evidence, NotApplicable, TestUser};

const NA: NotApplicable = NotApplicable {
    reason: "an SL-3 requirement (multifactor authentication for all interfaces), \
             out of scope of the SL-2 assessment",
    user_action: "for SL-3, add a second factor to every human login, e.g. \
                  pam_google_authenticator (TOTP) in the PAM stacks of login, su and sshd",
};

pub const CASE: Case = Case::not_applicable_tested(
    "TC_CR1.1-RE2_1",
    "CR1.1 RE2",
    "Multifactor authentication for all interfaces",
    "a TOTP-enrolled user needs the password and the current code locally and over ssh; the password alone or with a wrong code is refused",
    run,
    NA,
);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let Some(module) = mfa::module_path() else {
        return skip(format!(
            "NA: {} ({} is not installed, package libpam-google-authenticator); user action: {}",
            NA.reason,
            mfa::MODULE,
            NA.user_action
        ));
    };
    ev.note(format!(
        "{} is installed: {}",
        mfa::MODULE,
        module.display()
    ));
    for service in ["su", "sshd"] {
        let lines = mfa::stack_lines(service)?;
        if lines.is_empty() {
            ev.note(format!(
                "the `{service}` auth stack does not load {}",
                mfa::MODULE
            ));
        }
        for l in lines {
            ev.note(format!("`{service}` auth stack: {}", l.location()));
        }
    }

    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let enrolment = mfa::enrol(ev, &user)?;

    ev.step("su: the right password alone, then with a wrong code, then with the right code");
    let alone = su_prompts(ev, &caller, user.name(), &[user.password()])?;
    refuse_password_alone(&alone)?;
    su_prompts(
        ev,
        &caller,
        user.name(),
        &[user.password(), &enrolment.wrong_code()],
    )?
    .assert_refused()?;
    let step = totp::current_step();
    let code = enrolment.code_at(step);
    su_prompts(ev, &caller, user.name(), &[user.password(), &code])?
        .assert_shell_as(user.name())?;
    ev.ok("su: the password alone and a wrong code are refused; password and the current code give a shell");

    ev.step("ssh: the right password alone, then with a wrong code, then with the right code");
    // Each attempt from its own test address: the refusals under test are
    // PAM's, not fail2ban's or OpenSSH's PerSourcePenalties.
    let sshd = RemoteLogins::open(ev)?;
    let alone = sshd.prompts(ev, user.name(), &[user.password()])?;
    refuse_password_alone(&alone)?;
    sshd.prompts(ev, user.name(), &[user.password(), &enrolment.wrong_code()])?
        .assert_refused()?;
    // DISALLOW_REUSE: the code su used is spent. The next step's code is in
    // the window (WINDOW_SIZE 3) and not used yet.
    let next = (step + 1).max(totp::current_step());
    let code = enrolment.code_at(next);
    sshd.prompts(ev, user.name(), &[user.password(), &code])?
        .assert_shell_as(user.name())?;
    ev.ok("ssh: the password alone and a wrong code are refused; password and a current code give a shell");
    Ok(())
}

/// The enrolled user's right password alone must not give a shell, and the
/// refusal must be the request for a code.
fn refuse_password_alone(attempt: &Attempt) -> anyhow::Result<()> {
    match &attempt.outcome {
        AuthOutcome::Shell { .. } => bail!(
            "{}: the right password alone gave a TOTP-enrolled user a shell; no second factor was asked",
            attempt.flow
        ),
        AuthOutcome::Refused { message } if message.to_lowercase().contains("verification code") => {
            Ok(())
        }
        other => bail!(
            "{}: expected the password to be followed by a request for a verification code, got {other:?}",
            attempt.flow
        ),
    }
}
