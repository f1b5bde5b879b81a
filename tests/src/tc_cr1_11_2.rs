//! TC_CR1.11_2 — CR1.11 unsuccessful login attempts, remote lockout and
//! unlock.
//!
//! Proves: over ssh to the device's own running sshd (its real port,
//! `UsePAM`, PAM stack and `Match` blocks; never edited or restarted), from
//! addresses of a test network of the case's own, the lockout policy as
//! configured holds: one wrong password fewer than `deny` does not lock,
//! `deny` wrong passwords do (the RIGHT password is refused and `faillock
//! --user` lists the failures), the account is still locked shortly before
//! `unlock_time` has passed, and works again with the right password once
//! it has. With `unlock_time=never` that is reported, and the
//! administrator's reset (`faillock --reset`) is shown to unlock instead.
//! Every attempt comes from the next test address, so the failures never
//! add up per address (fail2ban's `maxretry`, OpenSSH's
//! `PerSourcePenalties`): the lock observed is the account's.
//! Then who else the lock spares over ssh: sshd's auth stack played as
//! libpam plays it; a line that gets a group's members past pam_faillock
//! is exercised with a throw-away member over ssh (it must be refused
//! after `deny` wrong passwords), any other such line fails the case.
//! Negative controls: profiles `faillock-removed` (no lockout is
//! configured, the right password works after `deny` wrong ones),
//! `sshd-without-pam` (the device's sshd checks passwords itself, `UsePAM
//! no`, so pam_faillock never sees an ssh login) and
//! `faillock-spares-group` (members of a group jump over the lock).
//!
//! Every timed check is measured from the failure faillock recorded last
//! (not from when the suite saw the refusal: on a slow target that is
//! seconds later) and judged by when sshd decided. The still-locked
//! attempt is aimed so that its password arrives `STILL_LOCKED_BEFORE`
//! the lock lifts, with the time ssh was measured to take to ask; when the
//! target or the schedule cannot meet that window the check is reported
//! as not made, never as a missing lock.
//!
//! The wait for `unlock_time` (60 s on a CIP image) dominates: the case is
//! started first and steps aside while it sleeps (`harness::runtime::case::idle`),
//! and it shares nothing with other cases (its own account and addresses).

use anyhow::Context;
use harness::flows::device_sshd::RemoteLogins;
use harness::flows::faillock::{self, Lock, LockCheck, Policy, UnlockTime};
use harness::runtime::case::{wait_idle_until, Findings};
use harness::runtime::evidence::utc_text;
use harness::{Case, Control, Evidence, TestUser};
use std::time::{Duration, SystemTime};

pub const CASE: Case = Case::met(
    "TC_CR1.11_2",
    "CR1.11",
    "Unsuccessful login attempts (remote lockout and unlock)",
    "over ssh, the configured number of wrong passwords locks the account (the right one is refused) until unlock_time has passed, then the right password works again",
    run,
)
.fails_under(&[
    Control::Profile("faillock-removed"),
    Control::Profile("sshd-without-pam"),
    Control::Profile("faillock-spares-group"),
])
.long_running();

/// Waited beyond the moment the lock lifts before the final login: the
/// system clock and pam_faillock's whole seconds agree to a second.
const MARGIN: Duration = Duration::from_secs(2);
/// How long before the lock lifts the right password must still be refused.
const STILL_LOCKED_BEFORE: Duration = Duration::from_secs(10);
/// The timed check that aims at that moment, as the evidence names it.
const STILL_LOCKED: &str = "still locked 10 s before the lock lifts";

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step(
        "read the lockout policy of sshd's auth stack (faillock.conf + the pam_faillock lines)",
    );
    let policy = faillock::policy_under_test(ev, "sshd")?;

    let sshd = RemoteLogins::open(ev)?;
    let user = TestUser::create(ev)?;
    ev.note(format!("every ssh login goes to {}", sshd.describe()));
    let time_to_ask = faillock::drive_to_lock(ev, &policy, &user, "ssh", |password| {
        sshd.password(ev, user.name(), password)
    })?;

    ev.step("the right password over ssh");
    let lock = Lock::read(ev, &policy, user.name())?;
    let attempt = sshd.password(ev, user.name(), user.password())?;
    faillock::assert_locked(&policy, &lock, "ssh", &attempt)?;
    ev.timed("locked: the right password refused over ssh", Ok(()));
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
            sshd.password(ev, user.name(), user.password())?
                .assert_shell_as(user.name())?;
            ev.ok("after the administrator's reset the right password works again");
        }
        UnlockTime::After(unlock) => {
            if unlock > STILL_LOCKED_BEFORE * 2 {
                still_locked_shortly_before_it_lifts(ev, &sshd, &user, &policy, time_to_ask)?;
            }
            // Read again: a stack may count the locked attempts as
            // failures too, which moves the moment the lock lifts.
            let lock = Lock::read(ev, &policy, user.name())?;
            let lifts = lifts_at(&lock)?;
            wait_idle_until(
                ev,
                &format!(
                    "until the lock lifts by itself ({}) and {} s more",
                    lock.describe(),
                    MARGIN.as_secs()
                ),
                lifts + MARGIN,
            );
            let attempt = sshd.password(ev, user.name(), user.password())?;
            attempt.assert_shell_as(user.name()).with_context(|| {
                format!(
                    "the account is still locked after unlock_time: the attempt started at {}, after the lock should have lifted ({})",
                    utc_text(attempt.moments.started),
                    lock.describe()
                )
            })?;
            ev.ok(format!(
                "started {:.0} s after the last recorded failure (unlock_time={} s), the right password works again",
                seconds_between(lock.last_failure, attempt.moments.started),
                unlock.as_secs()
            ));
            ev.timed("works again once unlock_time has passed", Ok(()));
        }
    }

    ev.step("who else the lock spares over ssh: sshd's auth stack played as libpam plays it, for a locked account with the right password");
    let mut findings = Findings::default();
    for exemption in faillock::exemptions(ev, &["sshd"])? {
        findings.step(faillock::exercise(
            ev,
            &policy,
            &exemption,
            |member, password| sshd.password(ev, member.name(), password),
        ));
    }
    findings.verdict("the remote lockout spares some accounts")
}

/// The right password, timed to reach sshd `STILL_LOCKED_BEFORE` the lock
/// lifts by itself: started earlier by the longest time ssh took to ask
/// so far. Refused: still locked. A shell decided before the lock could
/// lift: no lock. Anything the window could not hold (the wait ended late
/// behind a case that runs alone, a target too slow): not made, and said.
fn still_locked_shortly_before_it_lifts(
    ev: &Evidence,
    sshd: &RemoteLogins,
    user: &TestUser,
    policy: &Policy,
    time_to_ask: Duration,
) -> anyhow::Result<()> {
    let lock = Lock::read(ev, policy, user.name())?;
    let lifts = lifts_at(&lock)?;
    let send_at = lifts - STILL_LOCKED_BEFORE;
    wait_idle_until(
        ev,
        &format!(
            "until {} s before the lock lifts ({}), less the {:.1} s ssh takes to ask",
            STILL_LOCKED_BEFORE.as_secs(),
            lock.describe(),
            time_to_ask.as_secs_f64()
        ),
        send_at - time_to_ask,
    );
    let arrives = SystemTime::now() + time_to_ask;
    if arrives + STILL_LOCKED_BEFORE / 2 > lifts {
        ev.timed(
            STILL_LOCKED,
            Err(&format!(
                "resumed at {}, too close to the lock lifting at {} for the password to arrive in time (a case that runs alone held this one, or the target is slow)",
                utc_text(SystemTime::now()),
                utc_text(lifts)
            )),
        );
        return Ok(());
    }
    ev.step(format!(
        "the right password over ssh, {} s before the lock lifts by itself",
        STILL_LOCKED_BEFORE.as_secs()
    ));
    let attempt = sshd.password(ev, user.name(), user.password())?;
    match lock.check(policy, "ssh", &attempt)? {
        LockCheck::Held => {
            let sent = attempt.moments.answered.unwrap_or(attempt.moments.decided);
            ev.ok(format!(
                "password sent {:.1} s after the last recorded failure, {:.1} s before the lock lifts: the account is still locked",
                seconds_between(lock.last_failure, sent),
                seconds_between(Some(sent), lifts)
            ));
            ev.timed(STILL_LOCKED, Ok(()));
        }
        LockCheck::NotMade(why) => ev.timed(STILL_LOCKED, Err(&why)),
    }
    Ok(())
}

/// The moment a lock with a finite `unlock_time` lifts, or why there is none.
fn lifts_at(lock: &Lock) -> anyhow::Result<SystemTime> {
    lock.lifts_at().ok_or_else(|| {
        anyhow::anyhow!(
            "faillock lists no valid failure for the locked account ({})",
            lock.describe()
        )
    })
}

/// Seconds from `from` to `to` (0 when `from` is unknown or later).
fn seconds_between(from: Option<SystemTime>, to: SystemTime) -> f64 {
    from.and_then(|f| to.duration_since(f).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}
