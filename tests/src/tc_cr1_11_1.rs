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
//! Negative control: profile `faillock-removed` (the pam_faillock lines
//! removed from common-auth and common-account) — no lockout is configured
//! and the right password still works after `deny` wrong ones.

use anyhow::bail;
use harness::faillock::{self, UnlockTime};
use harness::login::{login, su_from};
use harness::password::strong_password;
use harness::{AuthOutcome, Case, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.11_1",
    "CR1.11",
    "Unsuccessful login attempts (local lockout)",
    "after the configured number of wrong passwords the right one is refused by su and login, and faillock lists the failures; one fewer does not lock",
    run,
)
// About 20 s of su and login failure delays: started early (see Case::slow).
.slow();

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step("read the lockout policy of su's auth stack (faillock.conf + the pam_faillock lines)");
    // Without pam_faillock the flow still runs, against pam_faillock's
    // built-in deny=3, so the evidence shows the missing lock in action.
    let policy = faillock::policy(ev, "su")?.unwrap_or_else(|| faillock::Policy::builtin("su"));
    policy.record(ev);
    let missing = if policy.configured() {
        String::new()
    } else {
        format!(
            " ({}'s auth stack has no pam_faillock line)",
            policy.service
        )
    };
    if policy.deny == 0 {
        bail!("pam_faillock is configured with deny=0: accounts are never locked");
    }
    if policy.unlock_time == UnlockTime::Never {
        ev.note("unlock_time=never: a locked account stays locked until an administrator resets it (faillock --reset)");
    }
    if !policy.even_deny_root {
        ev.note(
            "even_deny_root is not set: root is never locked out (the suite does not test root)",
        );
    }
    let deny = policy.deny;

    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let wrong = strong_password()?;

    ev.step(format!(
        "{} wrong password(s) with su (one fewer than deny={deny}), then the right one",
        deny - 1
    ));
    for _ in 1..deny {
        su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
    }
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    ev.ok(format!(
        "{} wrong password(s) do not lock: the right password still gives a shell",
        deny - 1
    ));
    let after_success = faillock::record(ev, &policy.dir, user.name())?;
    ev.note(format!(
        "after that success faillock lists {} valid failure(s) (pam_faillock in the account stack clears them)",
        faillock::valid_failures(&after_success)
    ));
    // Start the locking half from an empty record, whatever the stack does
    // on success.
    faillock::reset(ev, &policy.dir, &user)?;

    ev.step(format!("{deny} wrong passwords with su"));
    for _ in 0..deny {
        su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
    }

    ev.step("the right password, with su and with login");
    let su_right = su_from(ev, &caller, user.name(), user.password())?;
    if let AuthOutcome::Shell { .. } = su_right.outcome {
        bail!("after {deny} wrong passwords the right password still gave a shell with su: the account was not locked{missing}");
    }
    su_right.assert_refused()?;
    let login_right = login(ev, user.name(), user.password())?;
    if let AuthOutcome::Shell { .. } = login_right.outcome {
        bail!("after {deny} wrong passwords the right password still gave a shell with login: the account was not locked{missing}");
    }
    login_right.assert_refused()?;
    ev.ok(format!(
        "after {deny} wrong passwords the right password is refused by su and login: the account is locked"
    ));

    ev.step("faillock --user shows the failures");
    let record = faillock::record(ev, &policy.dir, user.name())?;
    let valid = faillock::valid_failures(&record);
    if valid < deny as usize {
        bail!(
            "faillock --user {} lists {valid} valid failure(s), fewer than deny={deny}",
            user.name()
        );
    }
    ev.ok(format!(
        "faillock lists {valid} valid failures for {} (the account is locked for {})",
        user.name(),
        policy.unlock_time
    ));
    Ok(())
}
