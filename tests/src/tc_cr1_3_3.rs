//! TC_CR1.3_3 — CR1.3 account management: disable and enable.
//!
//! Proves, at every interactive entry point the image offers (console
//! `login`, `su` from another account, ssh to the device's own sshd from a
//! test address): an expired account (`usermod --expiredate 1`) and a locked
//! one (`passwd -l`) are refused with the *right* password; re-enabling each
//! makes the same logins succeed again.
//! Negative controls: profiles `account-no-unix` (the account stack does not
//! run pam_unix.so, so expiry is not enforced anywhere) and
//! `sshd-account-phase-skipped` (sshd's own PAM stack skips the account
//! phase: expired accounts get in over ssh only).

use harness::flows::entry_points::EntryPoints;
use harness::runtime::command::sh;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.3_3",
    "CR1.3",
    "Account management (disable and enable)",
    "disabled accounts are refused with the right password at every entry point (login, su, ssh) and work again once enabled",
    run,
)
.fails_under(&[
    Control::Profile("account-no-unix"),
    Control::Profile("sshd-account-phase-skipped"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let entries = EntryPoints::open(ev)?;
    let (name, password) = (user.name(), user.password());

    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("enabled account: the right password gives a shell at every entry point");

    ev.step("disable by expiry: usermod --expiredate 1");
    sh(ev, "usermod", &["--expiredate", "1", name])?;
    entries.each(ev, name, password, |a| a.assert_refused())?;
    ev.ok("expired account: refused with the right password at every entry point");
    sh(ev, "usermod", &["--expiredate", "", name])?;
    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("expiry removed: the account works again at every entry point");

    ev.step("disable by locking the password: passwd -l");
    sh(ev, "passwd", &["-l", name])?;
    // A locked password fails authentication, which pam_faillock counts
    // (deny=3 on a CIP image): the tally is emptied after each refusal, so
    // every one is the lock's and the unlock below is not held up.
    entries.each(ev, name, password, |a| {
        user.clear_failures()?;
        a.assert_refused()
    })?;
    ev.ok("locked account: refused with the right password at every entry point");
    sh(ev, "passwd", &["-u", name])?;
    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("unlocked: the account works again at every entry point");
    Ok(())
}
