//! TC_CR1.7-RE1_1 — CR1.7 RE1 password lifetime restrictions.
//!
//! Proves: the ageing values set with `chage` are enforced, not just
//! stored. Maximum: a password younger than the maximum logs in without
//! being asked to change, one older than the maximum forces a change (and
//! only the new password works afterwards; the change is demanded at every
//! interactive entry point: console `login`, `su`, ssh to the device's own
//! sshd). Warning: 5 days before expiry
//! the login shows the 7-day warning, 20 days before it does not. Minimum:
//! before the minimum age the user's own `passwd` is refused ("You must
//! wait longer…") and the stored hash stays; with no minimum the same
//! change goes through.
//! Negative controls: profiles `account-no-unix` (the account stack ignores
//! expiry): the expired password logs in without a change;
//! `sshd-account-phase-skipped` (the same over ssh only).

use anyhow::ensure;
use harness::facts::shadow::today;
use harness::flows::entry_points::EntryPoints;
use harness::flows::login::{su_changing, su_from};
use harness::flows::passwd::passwd_own;
use harness::runtime::command::sh;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.7-RE1_1",
    "CR1.7 RE1",
    "Password lifetime restrictions for human users",
    "chage maximum, warning and minimum ages are enforced: an expired password forces a change, the warning shows, a change before the minimum age is refused",
    run,
)
.fails_under(&[
    Control::Profile("account-no-unix"),
    Control::Profile("sshd-account-phase-skipped"),
]);

/// pam_unix's account stage: "Warning: your password will expire in 5 days."
const EXPIRY_WARNING: &str = "password will expire in";

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let name = user.name().to_owned();
    let last_change = |days_ago: i64| (today() - days_ago).to_string();

    ev.step("maximum 30 days, warning 7: a password changed 10 days ago logs in plainly");
    sh(
        ev,
        "chage",
        &["-d", &last_change(10), "-M", "30", "-W", "7", &name],
    )?;
    let fresh = su_from(ev, &caller, &name, user.password())?;
    fresh.assert_shell_as(&name)?;
    ensure!(
        !fresh.transcript.contains(EXPIRY_WARNING),
        "an expiry warning was shown 20 days before the password expires, with a 7-day warning period"
    );
    ev.ok("20 days before expiry: a shell, no change asked, no warning");

    ev.step("changed 31 days ago: past the 30-day maximum, the login forces a change");
    sh(ev, "chage", &["-d", &last_change(31), &name])?;
    let old = user.password().to_owned();
    let entries = EntryPoints::open(ev)?;
    entries.each(ev, &name, &old, |a| a.assert_change_required())?;
    ev.ok("past the maximum: every entry point demands the change before a shell (the dialogue left unanswered)");
    let new = strong_password()?;
    su_changing(ev, &caller, &mut user, &new)?.assert_changed_then_shell_as(&name)?;
    su_from(ev, &caller, &name, &old)?.assert_refused()?;
    su_from(ev, &caller, &name, user.password())?.assert_shell_as(&name)?;
    ev.ok(
        "expired password: change forced before any shell; afterwards only the new password works",
    );

    ev.step("changed 25 days ago: 5 days left, inside the 7-day warning period");
    sh(ev, "chage", &["-d", &last_change(25), &name])?;
    let warned = su_from(ev, &caller, &name, user.password())?;
    warned.assert_shell_as(&name)?;
    ensure!(
        warned.transcript.contains(EXPIRY_WARNING),
        "no expiry warning was shown 5 days before the password expires, with a 7-day warning period"
    );
    ev.ok("5 days before expiry: a shell, with the expiry warning");

    ev.step("minimum 7 days: the user's own passwd is refused a day after a change");
    sh(ev, "chage", &["-d", &last_change(1), "-m", "7", &name])?;
    let early = strong_password()?;
    let message = passwd_own(ev, &mut user, &early)?
        .assert_rejected()?
        .to_owned();
    ensure!(
        message.to_lowercase().contains("wait longer"),
        "passwd refused the early change, but not for the minimum age: {message}"
    );
    ev.ok(format!("refused before the minimum age: {message}"));

    ev.step("minimum 0: the same change by the user goes through");
    sh(ev, "chage", &["-m", "0", &name])?;
    passwd_own(ev, &mut user, &early)?.assert_changed()?;
    su_from(ev, &caller, &name, user.password())?.assert_shell_as(&name)?;
    ev.ok("without a minimum age the user changes the password, and the new one logs in");
    Ok(())
}
