//! TC_CR1.1_1 — CR1.1 human user identification and authentication, local.
//!
//! Proves: on a PTY, `login` and `su -` (run by another unprivileged user)
//! with the right password give a shell whose `id -un` is the user; the same
//! flows with a wrong password are refused.
//! Negative control: profile `pam-permit` (pam_unix.so replaced by
//! pam_permit.so in common-auth) — the wrong password gets a shell.

use harness::login::{login, su_from};
use harness::password::strong_password;
use harness::{Case, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.1_1",
    "CR1.1",
    "Human user identification and authentication (local)",
    "login and su on a PTY accept the right password and refuse a wrong one",
    run,
);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let wrong = strong_password()?;

    ev.step("console login with the right password, then with a wrong one");
    login(ev, user.name(), user.password())?.assert_shell_as(user.name())?;
    login(ev, user.name(), &wrong)?.assert_refused()?;
    ev.ok("login: right password gives a shell as the user, wrong password is refused");

    ev.step("su - started by another unprivileged user, right then wrong password");
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
    ev.ok("su: right password gives a shell as the user, wrong password is refused");
    Ok(())
}
