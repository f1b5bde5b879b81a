//! TC_CR1.11_2 — CR1.11 unsuccessful login attempts, remote lockout and
//! unlock.
//!
//! Proves: over ssh to a private sshd with the system's sshd policy and
//! PAM stack (/etc/pam.d/sshd), the lockout policy as configured holds: one
//! wrong password fewer than `deny` does not lock, `deny` wrong passwords
//! do (the RIGHT password is refused and `faillock --user` lists the
//! failures from 127.0.0.1), the account is still locked shortly before
//! `unlock_time` has passed, and works again with the right password once
//! it has. With `unlock_time=never` that is reported, and the
//! administrator's reset (`faillock --reset`) is shown to unlock instead.
//! Negative control: profile `faillock-removed` — no lockout is configured,
//! the right password works after `deny` wrong ones.
//!
//! The wait for `unlock_time` (60 s on a CIP image) dominates: the case is
//! started first and steps aside while it sleeps (`harness::case::idle`),
//! and it shares nothing with other cases (its own account and sshd).

use harness::case::wait_idle;
use harness::faillock::{self, Policy, UnlockTime};
use harness::ssh::ssh_password;
use harness::{Case, Evidence, PrivateSshd, TestUser};
use std::time::{Duration, Instant};

pub const CASE: Case = Case::met(
    "TC_CR1.11_2",
    "CR1.11",
    "Unsuccessful login attempts (remote lockout and unlock)",
    "over ssh, the configured number of wrong passwords locks the account (the right one is refused) until unlock_time has passed, then the right password works again",
    run,
)
.long_running();

/// Waited beyond `unlock_time` before the final login: pam_faillock
/// compares whole seconds with the time of the last failure, which lies a
/// little before the client saw the refusal.
const MARGIN: Duration = Duration::from_secs(3);
/// How long before `unlock_time` the account must still be locked.
const STILL_LOCKED_BEFORE: Duration = Duration::from_secs(10);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step(
        "read the lockout policy of sshd's auth stack (faillock.conf + the pam_faillock lines)",
    );
    let policy = faillock::policy_under_test(ev, "sshd")?;

    // OpenSSH >= 9.8 refuses connections from a source that failed to
    // authenticate repeatedly (PerSourcePenalties), which would cut this
    // test's own later logins from 127.0.0.1. This private sshd is ours;
    // the lockout under test is PAM's, so its penalties are lifted for
    // 127.0.0.1 (the option is left out on older sshd, which has none).
    let sshd = PrivateSshd::builder()
        .option_if_supported("PerSourcePenaltyExemptList", "127.0.0.1")
        .start(ev)?;
    let user = TestUser::create(ev)?;
    faillock::drive_to_lock(ev, &policy, &user, "ssh", |password| {
        ssh_password(ev, &sshd, user.name(), password)
    })?;
    let locked_at = Instant::now();

    ev.step("the right password over ssh");
    assert_locked(ev, &sshd, &user, &policy)?;
    let record = faillock::assert_recorded(ev, &policy, user.name())?;
    let sources: Vec<&str> = record.iter().map(|f| f.source.as_str()).collect();
    ev.ok(format!(
        "locked: the right password is refused; faillock lists {} valid failures (from {})",
        faillock::valid_failures(&record),
        sources.join(", ")
    ));

    match policy.unlock_time {
        UnlockTime::Never => {
            ev.note("unlock_time=never: the account stays locked until an administrator resets it");
            ev.step("the administrator's reset (faillock --reset), then the right password");
            faillock::reset(ev, &policy.dir, &user)?;
            ssh_password(ev, &sshd, user.name(), user.password())?.assert_shell_as(user.name())?;
            ev.ok("after the administrator's reset the right password works again");
        }
        UnlockTime::After(unlock) => {
            if unlock > STILL_LOCKED_BEFORE * 2 {
                let check_at = unlock - STILL_LOCKED_BEFORE;
                wait_idle(
                    ev,
                    &format!(
                        "until {} s before unlock_time={} s has passed",
                        STILL_LOCKED_BEFORE.as_secs(),
                        unlock.as_secs()
                    ),
                    check_at.saturating_sub(locked_at.elapsed()),
                );
                // The wait may have ended late (a case that runs alone went
                // first): the check only means something well before unlock.
                let now = locked_at.elapsed();
                if now + STILL_LOCKED_BEFORE / 2 < unlock {
                    assert_locked(ev, &sshd, &user, &policy)?;
                    ev.ok(format!(
                        "{:.0} s after the last failure the account is still locked",
                        now.as_secs_f64()
                    ));
                } else {
                    ev.note(format!(
                        "resumed only {:.0} s after the last failure, too close to unlock_time for a still-locked check; skipped",
                        now.as_secs_f64()
                    ));
                }
            }
            wait_idle(
                ev,
                &format!(
                    "until unlock_time={} s (+{} s) has passed since the last failure",
                    unlock.as_secs(),
                    MARGIN.as_secs()
                ),
                (unlock + MARGIN).saturating_sub(locked_at.elapsed()),
            );
            ssh_password(ev, &sshd, user.name(), user.password())?.assert_shell_as(user.name())?;
            ev.ok(format!(
                "{:.0} s after the last failure (unlock_time={} s) the right password works again",
                locked_at.elapsed().as_secs_f64(),
                unlock.as_secs()
            ));
        }
    }
    Ok(())
}

/// The right password over ssh must be refused (a shell means no lock).
fn assert_locked(
    ev: &Evidence,
    sshd: &PrivateSshd,
    user: &TestUser,
    policy: &Policy,
) -> anyhow::Result<()> {
    let attempt = ssh_password(ev, sshd, user.name(), user.password())?;
    faillock::assert_locked(policy, "ssh", &attempt)
}
