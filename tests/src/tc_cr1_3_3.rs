//! TC_CR1.3_3 — CR1.3 account management: disable and enable.
//!
//! Proves: an expired account (`usermod --expiredate 1`) and a locked one
//! (`passwd -l`) are refused with the *right* password; re-enabling each
//! makes the same login succeed again.
//! Negative control: profile `account-no-unix` (the account stack does not
//! run pam_unix.so, so expiry is not enforced).

use harness::command::sh;
use harness::login::su_from;
use harness::{Case, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.3_3",
    "CR1.3",
    "Account management (disable and enable)",
    "disabled accounts are refused with the right password and work again once enabled",
    run,
);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let su = || su_from(ev, &caller, user.name(), user.password());

    su()?.assert_shell_as(user.name())?;
    ev.ok("enabled account: right password gives a shell");

    ev.step("disable by expiry: usermod --expiredate 1");
    sh(ev, "usermod", &["--expiredate", "1", user.name()])?;
    su()?.assert_refused()?;
    ev.ok("expired account is refused with the right password");
    sh(ev, "usermod", &["--expiredate", "", user.name()])?;
    su()?.assert_shell_as(user.name())?;
    ev.ok("expiry removed: the account works again");

    ev.step("disable by locking the password: passwd -l");
    sh(ev, "passwd", &["-l", user.name()])?;
    su()?.assert_refused()?;
    ev.ok("locked account is refused with the right password");
    sh(ev, "passwd", &["-u", user.name()])?;
    su()?.assert_shell_as(user.name())?;
    ev.ok("unlocked: the account works again");
    Ok(())
}
