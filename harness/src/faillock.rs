//! pam_faillock: the lockout policy as configured, and a user's record.
//!
//! The policy is what pam_faillock itself would use for a service: its
//! built-in defaults, then `/etc/security/faillock.conf` (or the file named
//! by `conf=`), then the options on the pam_faillock line, which override
//! the file. The line that decides "locked or not" before the password is
//! checked is the `preauth` one, so its options are the policy; options
//! that differ on the `authfail` line are reported.
//!
//! Records are read with `faillock --user`, and reset only for accounts the
//! harness created ([`reset`] takes a [`TestUser`]).
//!
//! The lockout drill the CR1.11 cases share, whatever the flow (`su`,
//! `ssh`): [`policy_under_test`], [`drive_to_lock`], [`assert_locked`],
//! [`assert_recorded`].

use crate::command::{find_program, run, run_ok};
use crate::evidence::{parse_utc, utc_text};
use crate::login::{Attempt, AuthOutcome};
use crate::pam::{self, PamLine};
use crate::password::strong_password;
use crate::{Evidence, TestUser};
use anyhow::{bail, Context, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const MODULE: &str = "pam_faillock.so";
pub const DEFAULT_CONF: &str = "/etc/security/faillock.conf";
/// pam_faillock's built-in values (faillock.conf(5)).
const DEFAULT_DENY: u32 = 3;
const DEFAULT_UNLOCK_TIME: u64 = 600;
const DEFAULT_DIR: &str = "/var/run/faillock";

/// How long an account stays locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockTime {
    After(Duration),
    /// `unlock_time=0` or `never`: until an administrator resets the record.
    Never,
}

impl fmt::Display for UnlockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockTime::After(d) => write!(f, "{} s", d.as_secs()),
            UnlockTime::Never => f.write_str("never (until an administrator resets it)"),
        }
    }
}

/// The lockout policy pam_faillock applies to one PAM service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub service: String,
    /// Failures within the interval after which the account is locked
    /// (0: never locked).
    pub deny: u32,
    pub unlock_time: UnlockTime,
    pub even_deny_root: bool,
    /// Where the records live.
    pub dir: PathBuf,
    /// The pam_faillock auth lines of the stack, for the evidence.
    pub lines: Vec<String>,
    /// Where each value came from, and disagreements between lines.
    pub notes: Vec<String>,
}

impl Policy {
    /// pam_faillock's built-in policy, for a stack without pam_faillock: the
    /// limit a lockout would have to enforce at the latest, so a test can
    /// show that nothing enforces it.
    pub fn builtin(service: &str) -> Self {
        Policy {
            service: service.to_owned(),
            deny: DEFAULT_DENY,
            unlock_time: UnlockTime::After(Duration::from_secs(DEFAULT_UNLOCK_TIME)),
            even_deny_root: false,
            dir: PathBuf::from(DEFAULT_DIR),
            lines: Vec::new(),
            notes: vec![format!(
                "NOT CONFIGURED: the `{service}` auth stack has no {MODULE} line; these are pam_faillock's built-in values"
            )],
        }
    }

    /// Does the stack load pam_faillock at all?
    pub fn configured(&self) -> bool {
        !self.lines.is_empty()
    }

    /// One line for the evidence.
    pub fn summary(&self) -> String {
        format!(
            "pam_faillock for `{}`: deny={} unlock_time={} even_deny_root={} dir={}",
            self.service,
            self.deny,
            self.unlock_time,
            if self.even_deny_root { "yes" } else { "no" },
            self.dir.display()
        )
    }

    /// Record the policy, its lines and where the values came from.
    pub fn record(&self, ev: &Evidence) {
        ev.note(self.summary());
        for l in &self.lines {
            ev.note(format!("  line: {l}"));
        }
        for n in &self.notes {
            ev.note(format!("  {n}"));
        }
    }
}

/// The values a faillock.conf or a module line can set.
#[derive(Debug, Default, Clone)]
struct Settings {
    deny: Option<String>,
    unlock_time: Option<String>,
    even_deny_root: bool,
    dir: Option<String>,
}

impl Settings {
    fn apply(&mut self, key: &str, value: Option<&str>) {
        match (key, value) {
            ("deny", Some(v)) => self.deny = Some(v.to_owned()),
            ("unlock_time", Some(v)) => self.unlock_time = Some(v.to_owned()),
            ("dir", Some(v)) => self.dir = Some(v.to_owned()),
            ("even_deny_root", _) => self.even_deny_root = true,
            _ => {}
        }
    }

    fn from_conf(text: &str) -> Self {
        let mut s = Settings::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => s.apply(k.trim(), Some(v.trim())),
                None => s.apply(line, None),
            }
        }
        s
    }

    fn overlay(&mut self, line: &PamLine) {
        for a in &line.args {
            match a.split_once('=') {
                Some((k, v)) => self.apply(k, Some(v)),
                None => self.apply(a, None),
            }
        }
    }
}

/// pam_faillock's policy for `service` (`"su"`, `"login"`, `"sshd"`), or
/// `None` when its auth stack has no pam_faillock line. A stack that uses
/// the older pam_tally/pam_tally2 instead is an error: the suite does not
/// read their policy.
pub fn policy(ev: &Evidence, service: &str) -> Result<Option<Policy>> {
    let auth = pam::stack(service, "auth")?;
    if let Some(tally) = auth
        .iter()
        .find(|l| matches!(l.module.as_str(), "pam_tally.so" | "pam_tally2.so"))
    {
        bail!(
            "the `{service}` auth stack locks accounts with {} ({}), which this suite does not read; only pam_faillock is supported",
            tally.module,
            tally.location()
        );
    }
    let lines: Vec<&PamLine> = auth.iter().filter(|l| l.module == MODULE).collect();
    if lines.is_empty() {
        ev.note(format!("the `{service}` auth stack has no {MODULE} line"));
        return Ok(None);
    }
    let deciding = lines
        .iter()
        .find(|l| l.arg("preauth").is_some())
        .or_else(|| lines.iter().find(|l| l.arg("authfail").is_some()))
        .copied()
        .unwrap_or(lines[0]);
    let conf_path = deciding.arg("conf").unwrap_or(DEFAULT_CONF).to_owned();
    let mut notes = Vec::new();
    let conf_text = match std::fs::read_to_string(&conf_path) {
        Ok(t) => {
            notes.push(format!("read {conf_path}; the line's options override it"));
            t
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!(
                "{conf_path} does not exist: pam_faillock's built-in defaults and the line's options apply"
            ));
            String::new()
        }
        Err(e) => return Err(e).with_context(|| format!("reading {conf_path}")),
    };
    let conf = Settings::from_conf(&conf_text);
    let mut settings = conf.clone();
    settings.overlay(deciding);

    // The authfail line counts the failures: a different deny there would
    // make the lock engage at another count than preauth enforces.
    for other in lines.iter().filter(|l| !std::ptr::eq(**l, deciding)) {
        let mut s = conf.clone();
        s.overlay(other);
        if s.deny != settings.deny || s.unlock_time != settings.unlock_time {
            notes.push(format!(
                "NOTE: {} has other values (deny={} unlock_time={}) than the deciding line",
                other.location(),
                crate::evidence::or_none(s.deny.as_deref()),
                crate::evidence::or_none(s.unlock_time.as_deref())
            ));
        }
    }

    let deny = match &settings.deny {
        Some(v) => v
            .parse()
            .with_context(|| format!("pam_faillock deny={v:?} is not a number"))?,
        None => DEFAULT_DENY,
    };
    let unlock_time = match settings.unlock_time.as_deref() {
        None => UnlockTime::After(Duration::from_secs(DEFAULT_UNLOCK_TIME)),
        Some("never") | Some("0") => UnlockTime::Never,
        Some(v) => {
            UnlockTime::After(Duration::from_secs(v.parse().with_context(|| {
                format!("pam_faillock unlock_time={v:?} is not a number")
            })?))
        }
    };
    let dir = PathBuf::from(settings.dir.as_deref().unwrap_or(DEFAULT_DIR));
    Ok(Some(Policy {
        service: service.to_owned(),
        deny,
        unlock_time,
        even_deny_root: settings.even_deny_root,
        dir,
        lines: lines.iter().map(|l| l.location()).collect(),
        notes,
    }))
}

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

    #[test]
    fn line_options_override_the_conf_file() {
        let conf = Settings::from_conf(
            "# comment\ndeny = 5\nunlock_time = 900\ndir = /var/lib/faillock\n even_deny_root\n",
        );
        assert_eq!(conf.deny.as_deref(), Some("5"));
        assert!(conf.even_deny_root);
        let line = PamLine {
            file: PathBuf::from("/etc/pam.d/common-auth"),
            number: 1,
            text: "auth required pam_faillock.so preauth silent deny=3 unlock_time=60".into(),
            skip_if_missing: false,
            control: "required".into(),
            module: "pam_faillock.so".into(),
            args: vec![
                "preauth".into(),
                "silent".into(),
                "deny=3".into(),
                "unlock_time=60".into(),
            ],
        };
        let mut s = conf.clone();
        s.overlay(&line);
        assert_eq!(s.deny.as_deref(), Some("3"));
        assert_eq!(s.unlock_time.as_deref(), Some("60"));
        assert_eq!(s.dir.as_deref(), Some("/var/lib/faillock"));
        assert!(s.even_deny_root);
    }

    fn attempt(outcome: AuthOutcome, started: u64, decided: u64) -> Attempt {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        Attempt {
            flow: "ssh".into(),
            outcome,
            secret_echoed: false,
            answer_after: Duration::from_secs(2),
            moments: crate::login::Moments {
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
