//! TC_CR1.11_1 — CR1.11 unsuccessful login attempts, local lockout.
//!
//! Proves: with the lockout policy as configured (`deny`, `unlock_time`,
//! `even_deny_root`, `dir`: pam_faillock's defaults, /etc/security/
//! faillock.conf, then the options on the pam_faillock line of su's auth
//! stack), one wrong password fewer than `deny` does not lock the account
//! (the right password still works), while `deny` wrong passwords do: the
//! RIGHT password is then refused by `su` and by `login`, and
//! `faillock --user` lists the failures. Only throw-away accounts are
//! locked; their records are removed with them.
//! Then who else the lock spares: su's and login's auth stacks are played
//! as libpam plays them (substacks, jumps) for a locked account giving the
//! right password; every line that gets some accounts past pam_faillock
//! is listed, and where its condition is a group, a throw-away member of
//! that group is driven into the lock through that service: it must be
//! refused. A condition the suite cannot give an account (an origin, a
//! module it does not know) is judged from the stack and fails the case.
//! Negative controls: profiles `faillock-removed` (the pam_faillock lines
//! removed from common-auth and common-account) — no lockout is configured
//! and the right password still works after `deny` wrong ones — and
//! `faillock-spares-group` (a `pam_succeed_if … user ingroup maintainers`
//! line that jumps over pam_faillock's preauth: its members are never
//! locked).

use harness::flows::faillock::{self, Lock, UnlockTime};
use harness::flows::login::{login, su_from};
use harness::runtime::case::Findings;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.11_1",
    "CR1.11",
    "Unsuccessful login attempts (local lockout)",
    "after the configured number of wrong passwords the right one is refused by su and login, and faillock lists the failures; one fewer does not lock",
    run,
)
.fails_under(&[
    Control::Profile("faillock-removed"),
    Control::Profile("faillock-spares-group"),
])
// About 20 s of su and login failure delays: started early (see Case::slow).
.slow();

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step("read the lockout policy of su's auth stack (faillock.conf + the pam_faillock lines)");
    let policy = faillock::policy_under_test(ev, "su")?;
    if policy.unlock_time == UnlockTime::Never {
        ev.note("unlock_time=never: a locked account stays locked until an administrator resets it (faillock --reset)");
    }
    if !policy.even_deny_root {
        ev.note(
            "even_deny_root is not set: root is never locked out (the suite does not test root)",
        );
    }
    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    faillock::drive_to_lock(ev, &policy, &user, "su", |password| {
        su_from(ev, &caller, user.name(), password)
    })?;

    ev.step("the right password, with su and with login");
    let lock = Lock::read(ev, &policy, user.name())?;
    let su_right = su_from(ev, &caller, user.name(), user.password())?;
    faillock::assert_locked(&policy, &lock, "su", &su_right)?;
    let login_right = login(ev, user.name(), user.password())?;
    faillock::assert_locked(&policy, &lock, "login", &login_right)?;
    ev.timed("locked: the right password refused by su and login", Ok(()));
    ev.ok(format!(
        "after {} wrong passwords the right password is refused by su and login: the account is locked",
        policy.deny
    ));

    ev.step("faillock --user shows the failures");
    let record = faillock::assert_recorded(ev, &policy, user.name())?;
    ev.ok(format!(
        "faillock lists {} valid failures for {} (the account is locked for {})",
        faillock::valid_failures(&record),
        user.name(),
        policy.unlock_time
    ));

    ev.step("who else the lock spares: su's and login's auth stacks played as libpam plays them, for a locked account with the right password");
    let mut findings = Findings::default();
    for exemption in faillock::exemptions(ev, &["su", "login"])? {
        findings.step(faillock::exercise(
            ev,
            &policy,
            &exemption,
            |member, password| match exemption.service.as_str() {
                "login" => login(ev, member.name(), password),
                _ => su_from(ev, &caller, member.name(), password),
            },
        ));
    }
    findings.verdict("the lockout spares some accounts")
}
