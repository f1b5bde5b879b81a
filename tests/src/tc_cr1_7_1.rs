//! TC_CR1.7_1 — CR1.7 strength of password-based authentication.
//!
//! Proves: the quality module configured in the password stack (pam_passwdqc,
//! pam_pwquality or pam_cracklib, found by following the includes of
//! /etc/pam.d/passwd) refuses passwords with 1, 2 and 3 character classes and
//! a 4-class password one character shorter than the minimum (never less
//! than 8), and accepts a strong one; tried through `passwd` run by the
//! user on a PTY, and through `chpasswd` run by root. The lengths come from
//! the configured policy, not from this file. Every outcome is checked in
//! /etc/shadow (a refusal leaves the stored hash alone).
//! Negative controls: profile `passwdqc-removed` (no quality module in
//! common-password) and `passwdqc-relaxed` (`min=6,6,6,6,6`): a 1-class
//! password is accepted.

use anyhow::bail;
use harness::login::su_from;
use harness::passwd::{chpasswd, passwd_own, PasswordChange};
use harness::password_policy::{detect, QualityPolicy};
use harness::{Case, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.7_1",
    "CR1.7",
    "Strength of password-based authentication",
    "the configured quality module refuses 1-, 2- and 3-class passwords and a too short 4-class one, and accepts a strong one, through passwd (as the user) and chpasswd",
    run,
);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step("find the quality module in the password stack of passwd");
    let policy = required_policy(ev, "passwd")?;
    let candidates = policy.candidates()?;

    let mut user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;

    ev.step("passwd on a PTY, run by the user: every weak password is refused");
    for weak in &candidates.weak {
        ev.note(format!("trying {}", weak.label));
        let message = passwd_own(ev, &mut user, &weak.text)?
            .assert_rejected()
            .map_err(|e| anyhow::anyhow!("{}: {e}", weak.label))?
            .to_owned();
        ev.ok(format!("passwd refused {}: {message}", weak.label));
    }

    ev.step("passwd on a PTY, run by the user: a strong password is accepted");
    passwd_own(ev, &mut user, &candidates.strong.text)?.assert_changed()?;
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    ev.ok(format!(
        "passwd accepted {}, and it is now the password that logs in",
        candidates.strong.label
    ));

    ev.step("chpasswd, run by root: the same passwords");
    let root_policy = required_policy(ev, "chpasswd")?;
    for weak in &candidates.weak {
        let attempt = chpasswd(ev, &mut user, &weak.text)?;
        match (&attempt.outcome, root_policy.enforced_for_root) {
            (PasswordChange::Rejected { message }, _) => {
                ev.ok(format!("chpasswd refused {}: {message}", weak.label))
            }
            (PasswordChange::Changed, true) => bail!(
                "chpasswd accepted {} although {} is configured to enforce its policy for root",
                weak.label,
                root_policy.module.file_name()
            ),
            (PasswordChange::Changed, false) => ev.note(format!(
                "chpasswd accepted {}: {} only warns root (as configured), so root can set weak passwords",
                weak.label,
                root_policy.module.file_name()
            )),
        }
    }
    let strong = root_policy.candidates()?.strong;
    chpasswd(ev, &mut user, &strong.text)?.assert_changed()?;
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    ev.ok(format!(
        "chpasswd accepted {}, which then logs in",
        strong.label
    ));
    Ok(())
}

/// The quality policy of `service`'s password stack; CR1.7 is not met
/// without one.
fn required_policy(ev: &Evidence, service: &str) -> anyhow::Result<QualityPolicy> {
    match detect(service)? {
        Some(policy) => {
            ev.note(policy.describe());
            Ok(policy)
        }
        None => bail!(
            "no password-quality module (pam_passwdqc, pam_pwquality or pam_cracklib) is \
             installed and in the password stack of PAM service {service}: no \
             password-strength policy is enforced"
        ),
    }
}
