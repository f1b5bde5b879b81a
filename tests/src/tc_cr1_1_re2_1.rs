//! TC_CR1.1-RE2_1 — CR1.1 RE2 multifactor authentication for all
//! interfaces (NA at SL-2; tested when the image has it).
//!
//! Proves: when pam_google_authenticator is installed, a user enrolled with
//! a TOTP secret (`~/.google_authenticator`, written by the suite) must give
//! the password AND the current code, computed by the suite (RFC 6238:
//! HMAC-SHA1, 30 s, 6 digits), at every entry point: console `login`, `su -`
//! run by another unprivileged user, and the device's own sshd from a test
//! network of the case's own. The right password alone is not enough, a
//! wrong code is refused, a wrong password with the right code is refused
//! (the code adds to the password, it does not replace it), password and
//! right code give a shell. Codes are taken from the steps the module has
//! not yet marked used (DISALLOW_REUSE), whatever order the stack asks in. Without the module the case is
//! skipped with the assessment's NA reason.
//! Then who else the second factor spares: each entry point's auth stack
//! played as libpam plays it for an enrolled account with the right
//! password and a wrong code; a line that gets a group past the module is
//! exercised with an enrolled throw-away member, any other (an origin
//! condition such as pam_access for some networks, never tried from them)
//! fails the case, judged from the stack. And every connection each
//! running sshd tells apart (`sshd -T -C`, Match blocks included): an
//! `AuthenticationMethods` list that never runs PAM's auth stack (a key
//! alone) logs in without the second factor.
//! Negative controls: profile `mfa-line-removed` (the pam_google_authenticator
//! line removed from common-auth, the module still installed) — the right
//! password alone gives the enrolled user a shell; profile
//! `mfa-not-on-console` (console `login` uses a copy of common-auth without
//! that line) — the same on the console only; profile
//! `mfa-spared-for-private-ranges` (a pam_access line jumps over the second
//! factor for logins from the private address ranges); profile
//! `mfa-skipped-by-key-in-match` (an sshd Match block lets a key alone log
//! in from one network, PAM never asked).

use anyhow::bail;
use harness::actors::sshd_match::{effective_configs_of, methods_without_pam};
use harness::facts::sshd_instances;
use harness::flows::dialogue::Attempt;
use harness::flows::entry_points::EntryPoints;
use harness::flows::exemption;
use harness::runtime::case::{skip, Findings};
use harness::runtime::password::strong_password;
use harness::{flows::mfa, AuthOutcome, Case, Control, Evidence, NotApplicable, TestUser};

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
)
.fails_under(&[
    Control::Profile("mfa-line-removed"),
    Control::Profile("mfa-not-on-console"),
    Control::Profile("mfa-spared-for-private-ranges"),
    Control::Profile("mfa-skipped-by-key-in-match"),
]);

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
    let enrolment = mfa::enrol(ev, &user)?;
    let entries = EntryPoints::open(ev)?;
    let wrong_password = strong_password()?;

    for entry in entries.all() {
        ev.step(format!(
            "{entry}: the right password alone, with a wrong code, a wrong password with the right code, then password and code"
        ));
        let alone = entries.prompts(ev, entry, user.name(), &[user.password()])?;
        refuse_password_alone(&alone)?;
        entries
            .prompts(
                ev,
                entry,
                user.name(),
                &[user.password(), &enrolment.wrong_code()],
            )?
            .assert_refused()?;
        let code = enrolment.unspent_code(ev)?;
        let attempt = entries.prompts(ev, entry, user.name(), &[&wrong_password, &code])?;
        if !matches!(attempt.outcome, AuthOutcome::Refused { .. }) {
            bail!(
                "{}: a wrong password with the right verification code was not refused ({}): the code replaced the password instead of adding to it",
                attempt.flow,
                attempt.outcome
            );
        }
        // The refused password counts towards pam_faillock's lock; the
        // next entry point must meet an account in good standing.
        user.clear_failures()?;
        let code = enrolment.unspent_code(ev)?;
        entries
            .prompts(ev, entry, user.name(), &[user.password(), &code])?
            .assert_shell_as(user.name())?;
        ev.ok(format!(
            "{entry}: the password alone, a wrong code and a wrong password with the right code are refused; password and a current code give a shell"
        ));
    }

    ev.step("who else the second factor spares: each entry point's auth stack played as libpam plays it, for an enrolled account with the right password and a wrong code");
    let mut findings = Findings::default();
    for spared in exemption::find(ev, &entries.pam_services(), "auth", &[mfa::MODULE])? {
        let Some(entry) = entries.of_service(&spared.service) else {
            continue;
        };
        let enrolled = std::cell::RefCell::new(None);
        findings.step(exemption::exercise(
            ev,
            &spared,
            "enrolled for TOTP, giving a wrong code",
            |member| {
                *enrolled.borrow_mut() = Some(mfa::enrol(ev, member)?);
                Ok(())
            },
            |member, password| {
                let wrong = enrolled
                    .borrow()
                    .as_ref()
                    .map(mfa::Enrolment::wrong_code)
                    .unwrap_or_default();
                entries.prompts(ev, entry, member.name(), &[password, &wrong])
            },
        ));
    }

    ev.step("every connection each sshd tells apart (Match blocks, ports, root), evaluated with sshd -T -C: an authentication method list that never runs PAM's auth stack logs in without the second factor");
    for runs in sshd_instances::configurations()? {
        let (evaluations, _members) = effective_configs_of(ev, &runs)?;
        for evaluation in &evaluations {
            let who = &evaluation.spec.why;
            let skipping = methods_without_pam(&evaluation.config);
            if skipping.is_empty() {
                ev.ok(format!(
                    "{}, {who}: every way in runs PAM's auth stack",
                    runs.label
                ));
            } else {
                findings.violation(format!(
                    "{}, {who} (sshd -T -C {}): AuthenticationMethods lets `{}` log in without PAM's auth stack, where the second factor is asked",
                    runs.label,
                    evaluation.spec.arg(),
                    skipping.join("` or `")
                ));
            }
        }
    }
    findings.verdict("the second factor spares some accounts")
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
            "{}: expected the password to be followed by a request for a verification code, got {other}",
            attempt.flow
        ),
    }
}
