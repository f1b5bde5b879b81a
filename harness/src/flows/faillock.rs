//! pam_faillock: a user's record, and the lockout drill.
//!
//! The policy as configured is read by [`crate::facts::faillock_policy`]
//! (re-exported here), which reads and changes nothing else.
//!
//! Records are read with `faillock --user`, and reset only for accounts the
//! harness created ([`reset`] takes a [`TestUser`]).
//!
//! The lockout drill the CR1.11 cases share, whatever the flow (`su`,
//! `ssh`): [`policy_under_test`], [`drive_to_lock`], [`assert_locked`],
//! [`assert_recorded`]; and who the lock spares ([`exemptions`]).

use crate::flows::dialogue::{Attempt, AuthOutcome};
use crate::runtime::command::{find_program, run, run_ok};
use crate::runtime::evidence::{parse_utc, utc_text};
use crate::runtime::password::strong_password;
use crate::{Evidence, TestUser};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::facts::pam_exemptions::Exemption;
use crate::flows::exemption;

/// The module whose lock the CR1.11 cases prove.
const LOCKOUT_MODULE: &str = "pam_faillock.so";

// The policy under its old names, for the test cases that read it here.
pub use crate::facts::faillock_policy::{policy, Policy, UnlockTime};

/// The policy a lockout test works against, recorded in the evidence. A
/// stack without pam_faillock is tested against pam_faillock's built-in
/// deny=3, so the flow still runs and the evidence shows the missing lock
/// in action; `deny=0` (never lock) fails at once.
pub fn policy_under_test(ev: &Evidence, service: &str) -> Result<Policy> {
    let policy = policy(ev, service)?.unwrap_or_else(|| Policy::builtin(service));
    policy.record(ev);
    if policy.deny == 0 {
        bail!("pam_faillock is configured with deny=0: accounts are never locked");
    }
    Ok(policy)
}

/// The lines of each service's auth stack (played as libpam plays it)
/// that let some accounts past pam_faillock: who a lockout spares.
pub fn exemptions(ev: &Evidence, services: &[&str]) -> Result<Vec<Exemption>> {
    exemption::find(ev, services, "auth", &[LOCKOUT_MODULE])
}

/// A throw-away member of the exemption's group, given `deny` wrong
/// passwords through `attempt` (the exemption's service), must be refused
/// the right one. Returns the violation, if any.
pub fn exercise(
    ev: &Evidence,
    policy: &Policy,
    exemption: &Exemption,
    attempt: impl Fn(&TestUser, &str) -> Result<Attempt>,
) -> Result<Vec<String>> {
    let what = format!("after {} wrong passwords", policy.deny);
    exemption::exercise(
        ev,
        exemption,
        &what,
        |member| {
            let wrong = strong_password()?;
            for _ in 0..policy.deny {
                attempt(member, &wrong)?.assert_refused()?;
            }
            Ok(())
        },
        &attempt,
    )
}

/// Bring `user` to the lock through one flow (`flow` names it: "su",
/// "ssh"; `attempt` tries one password through it): one wrong password
/// fewer than `deny` must not lock (the right one still gives a shell),
/// then, from a cleared record, `deny` wrong passwords.
///
/// Returns the longest time the flow took to ask for the password: how
/// early a later attempt has to start for its password to arrive at a
/// given moment (see [`Lock`]).
pub fn drive_to_lock(
    ev: &Evidence,
    policy: &Policy,
    user: &TestUser,
    flow: &str,
    mut attempt: impl FnMut(&str) -> Result<Attempt>,
) -> Result<Duration> {
    let deny = policy.deny;
    let wrong = strong_password()?;
    let mut time_to_ask = Duration::ZERO;
    let mut paced = |password: &str| -> Result<Attempt> {
        let tried = attempt(password)?;
        time_to_ask = time_to_ask.max(tried.moments.time_to_ask().unwrap_or_default());
        Ok(tried)
    };
    ev.step(format!(
        "{} wrong password(s) with {flow} (one fewer than deny={deny}), then the right one",
        deny - 1
    ));
    for _ in 1..deny {
        paced(&wrong)?.assert_refused()?;
    }
    paced(user.password())?.assert_shell_as(user.name())?;
    ev.ok(format!(
        "{} wrong password(s) do not lock: the right password still gives a shell",
        deny - 1
    ));
    let after_success = record(ev, &policy.dir, user.name())?;
    ev.note(format!(
        "after that success faillock lists {} valid failure(s) (pam_faillock in the account stack clears them)",
        valid_failures(&after_success)
    ));
    // The locking half starts from an empty record, whatever the stack
    // does on success.
    reset(ev, &policy.dir, user)?;

    ev.step(format!("{deny} wrong passwords with {flow}"));
    for _ in 0..deny {
        paced(&wrong)?.assert_refused()?;
    }
    ev.note(format!(
        "{flow} took up to {:.1} s to ask for the password",
        time_to_ask.as_secs_f64()
    ));
    Ok(time_to_ask)
}

/// A lock as pam_faillock keeps it, read from the account's record: the
/// newest failure that still counts, and so the moment the lock lifts by
/// itself. Every timed check of a lock is measured from that recorded
/// failure, never from when the suite saw its refusal (a slow target sees
/// it seconds later), and is judged by when the system decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// The newest valid failure, in the whole seconds pam_faillock stores.
    pub last_failure: Option<SystemTime>,
    pub unlock_time: UnlockTime,
}

/// What one check of a [`Lock`] showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCheck {
    /// The right password was refused.
    Held,
    /// No verdict: the system decided only after the lock may have lifted
    /// by itself, so a shell says nothing about the lock (the reason).
    NotMade(String),
}

impl Lock {
    /// The lock of `user` as its record stands now.
    pub fn read(ev: &Evidence, policy: &Policy, user: &str) -> Result<Lock> {
        let failures = record(ev, &policy.dir, user)?;
        Ok(Lock {
            last_failure: last_valid_failure(&failures)?,
            unlock_time: policy.unlock_time,
        })
    }

    /// The moment from which pam_faillock lets the account in again:
    /// it unlocks when its clock's whole seconds exceed the last failure
    /// plus `unlock_time`. `None` when nothing lifts it (`never`, or no
    /// failure recorded).
    pub fn lifts_at(&self) -> Option<SystemTime> {
        match (self.last_failure, self.unlock_time) {
            (Some(failed), UnlockTime::After(unlock)) => {
                Some(failed + unlock + Duration::from_secs(1))
            }
            _ => None,
        }
    }

    /// For the evidence: "the last failure at 2026-… + unlock_time 60 s".
    pub fn describe(&self) -> String {
        let failed = self.last_failure.map_or_else(
            || "no failure recorded".to_owned(),
            |t| format!("the last recorded failure at {}", utc_text(t)),
        );
        format!("{failed}, unlock_time {}", self.unlock_time)
    }

    /// Judge an attempt with the RIGHT password made while the account
    /// should be locked through `flow`: a refusal shows the lock; a shell
    /// decided before the lock could lift is a violation; a shell decided
    /// only after that is no verdict ([`LockCheck::NotMade`]).
    pub fn check(&self, policy: &Policy, flow: &str, attempt: &Attempt) -> Result<LockCheck> {
        let AuthOutcome::Shell { .. } = attempt.outcome else {
            attempt.assert_refused()?;
            return Ok(LockCheck::Held);
        };
        let decided = attempt.moments.decided;
        if let Some(lifts) = self.lifts_at() {
            if let Ok(late) = decided.duration_since(lifts) {
                return Ok(LockCheck::NotMade(format!(
                    "{flow} gave a shell, but decided {:.1} s after the lock could lift by itself ({}): the target was too slow for this check",
                    late.as_secs_f64(),
                    self.describe()
                )));
            }
        }
        let missing = if policy.configured() {
            String::new()
        } else {
            format!(
                " ({}'s auth stack has no pam_faillock line)",
                policy.service
            )
        };
        bail!(
            "after {} wrong passwords the right password still gave a shell with {flow}: the account was not locked{missing} ({})",
            policy.deny,
            self.describe()
        )
    }
}

/// After [`drive_to_lock`]: the right password's `attempt` through `flow`
/// must be refused; a shell means there is no lock. A check the target was
/// too slow to make in time is an error too (the lock is then not
/// demonstrated), but it names the timing, not a missing lock.
pub fn assert_locked(policy: &Policy, lock: &Lock, flow: &str, attempt: &Attempt) -> Result<()> {
    match lock.check(policy, flow, attempt)? {
        LockCheck::Held => Ok(()),
        LockCheck::NotMade(why) => bail!("the lock could not be checked before it lifted: {why}"),
    }
}

/// The newest failure that still counts, as a moment on the wall clock.
fn last_valid_failure(failures: &[Failure]) -> Result<Option<SystemTime>> {
    let mut newest = None;
    for f in failures.iter().filter(|f| f.valid) {
        let secs = parse_utc(&f.when).with_context(|| {
            format!(
                "faillock printed a failure time that is not `YYYY-MM-DD HH:MM:SS`: {:?}",
                f.when
            )
        })?;
        newest = newest.max(Some(secs));
    }
    Ok(newest.map(|s| UNIX_EPOCH + Duration::from_secs(s)))
}

/// After [`drive_to_lock`]: `faillock --user` lists at least `deny` valid
/// failures. Returns the record.
pub fn assert_recorded(ev: &Evidence, policy: &Policy, user: &str) -> Result<Vec<Failure>> {
    let failures = record(ev, &policy.dir, user)?;
    let valid = valid_failures(&failures);
    if valid < policy.deny as usize {
        bail!(
            "faillock --user {user} lists {valid} valid failure(s), fewer than deny={}",
            policy.deny
        );
    }
    Ok(failures)
}

/// One failure kept in a user's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `YYYY-MM-DD HH:MM:SS`, as faillock prints it (in UTC, see [`record`]).
    pub when: String,
    /// `RHOST`, `TTY`, `SVC`.
    pub kind: String,
    pub source: String,
    /// Still counts towards the lock (faillock's `V`; `I` = expired).
    pub valid: bool,
}

/// The failures `faillock --user NAME` lists (`--dir` from the policy),
/// their times in UTC: faillock prints local time, so it runs with
/// `TZ=UTC0` and the times compare with the system clock whatever zone
/// the device is set to.
pub fn record(ev: &Evidence, dir: &Path, user: &str) -> Result<Vec<Failure>> {
    let Some(faillock) = find_program("faillock") else {
        bail!("the faillock program is not installed (package libpam-modules-bin)");
    };
    let ran = run_ok(
        ev,
        Command::new(faillock)
            .env("TZ", "UTC0")
            .arg("--dir")
            .arg(dir)
            .args(["--user", user]),
        None,
    )?;
    Ok(parse_record(&ran.stdout))
}

/// The number of failures still counting towards the lock.
pub fn valid_failures(record: &[Failure]) -> usize {
    record.iter().filter(|f| f.valid).count()
}

fn parse_record(text: &str) -> Vec<Failure> {
    // user:
    // When                Type  Source                                           Valid
    // 2024-05-01 10:00:00 TTY   /dev/pts/1                                           V
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (date, time) = (f.first()?, f.get(1)?);
            let looks_like_date = date.len() == 10 && date.as_bytes()[4] == b'-';
            if !looks_like_date || f.len() < 4 {
                return None;
            }
            let valid = *f.last()?;
            Some(Failure {
                when: format!("{date} {time}"),
                kind: f[2].to_owned(),
                source: f[3..f.len() - 1].join(" "),
                valid: valid == "V",
            })
        })
        .collect()
}

/// Clear the record of a test account (never of any other account).
pub fn reset(ev: &Evidence, dir: &Path, user: &TestUser) -> Result<()> {
    let Some(faillock) = find_program("faillock") else {
        bail!("the faillock program is not installed (package libpam-modules-bin)");
    };
    let ran = run(
        ev,
        Command::new(faillock)
            .arg("--dir")
            .arg(dir)
            .args(["--user", user.name(), "--reset"]),
        None,
    )?;
    if !ran.success {
        bail!(
            "faillock --reset for {} failed: {}",
            user.name(),
            ran.all_output().trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: AuthOutcome, started: u64, decided: u64) -> Attempt {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        Attempt {
            flow: "ssh".into(),
            outcome,
            secret_echoed: false,
            answer_after: Duration::from_secs(2),
            moments: crate::flows::dialogue::Moments {
                started: at(started),
                answered: Some(at(started + 1)),
                decided: at(decided),
            },
            transcript: String::new(),
        }
    }

    fn shell() -> AuthOutcome {
        AuthOutcome::Shell {
            user: "fr1-ab12cd".into(),
        }
    }

    #[test]
    fn a_lock_is_judged_by_when_the_system_decided() {
        let mut policy = Policy::builtin("sshd");
        policy.lines.push("common-auth:1".into());
        let lock = Lock {
            // The last failure at 1000 s; unlock_time 60 s: pam_faillock
            // lets the account in once its clock reads 1061.
            last_failure: Some(UNIX_EPOCH + Duration::from_secs(1000)),
            unlock_time: UnlockTime::After(Duration::from_secs(60)),
        };
        assert_eq!(
            lock.lifts_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1061))
        );
        let refused = AuthOutcome::Refused {
            message: "Permission denied".into(),
        };
        // Refused, however late: the lock held.
        for decided in [1005, 1070] {
            let a = attempt(refused.clone(), decided - 3, decided);
            assert_eq!(lock.check(&policy, "ssh", &a).unwrap(), LockCheck::Held);
        }
        // A shell decided while the lock had to hold: no lock.
        let early = attempt(shell(), 1040, 1060);
        let err = lock.check(&policy, "ssh", &early).unwrap_err();
        assert!(err.to_string().contains("not locked"), "{err}");
        // A shell decided after it could lift: no verdict, and why.
        let late = attempt(shell(), 1052, 1061);
        match lock.check(&policy, "ssh", &late).unwrap() {
            LockCheck::NotMade(why) => assert!(why.contains("too slow"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(assert_locked(&policy, &lock, "ssh", &late).is_err());
        // Nothing recorded, or never lifted: every shell is a violation.
        for lock in [
            Lock {
                last_failure: None,
                ..lock
            },
            Lock {
                unlock_time: UnlockTime::Never,
                ..lock
            },
        ] {
            assert_eq!(lock.lifts_at(), None);
            assert!(lock.check(&policy, "ssh", &late).is_err());
        }
    }

    #[test]
    fn the_newest_valid_failure_counts() {
        let record = parse_record(
            "u:\nWhen Type Source Valid\n\
             2024-05-01 10:00:03 RHOST 127.0.0.1 V\n\
             2024-05-01 10:00:09 RHOST 127.0.0.1 V\n\
             2024-05-01 10:05:00 RHOST 127.0.0.1 I\n",
        );
        assert_eq!(
            last_valid_failure(&record).unwrap(),
            Some(UNIX_EPOCH + Duration::from_secs(1_714_557_609))
        );
        assert_eq!(last_valid_failure(&[]).unwrap(), None);
    }

    #[test]
    fn faillock_output_is_parsed() {
        let out = "fr1-ab12cd:\nWhen                Type  Source                                           Valid\n\
                   2024-05-01 10:00:00 TTY   /dev/pts/1                                           V\n\
                   2024-05-01 10:00:03 RHOST 127.0.0.1                                            I\n";
        let r = parse_record(out);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].when, "2024-05-01 10:00:00");
        assert_eq!(r[0].kind, "TTY");
        assert_eq!(r[1].source, "127.0.0.1");
        assert_eq!(valid_failures(&r), 1);
        assert!(parse_record("fr1-ab12cd:\nWhen Type Source Valid\n").is_empty());
    }
}
