//! pam_faillock's lockout policy as configured, and where it keeps its
//! records. Only reads the configuration: the records and the lockout
//! drill are [`crate::flows::faillock`]'s.
//!
//! The policy is what pam_faillock itself would use for a service: its
//! built-in defaults, then `/etc/security/faillock.conf` (or the file named
//! by `conf=`), then the options on the pam_faillock line, which override
//! the file. The line that decides "locked or not" before the password is
//! checked is the `preauth` one, so its options are the policy; options
//! that differ on the `authfail` line are reported.

use crate::facts::pam::{self, PamLine};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

    /// `deny=`, pam_faillock's 3 when unset.
    fn deny_count(&self) -> Result<u32> {
        match &self.deny {
            Some(v) => v
                .parse()
                .with_context(|| format!("pam_faillock deny={v:?} is not a number")),
            None => Ok(DEFAULT_DENY),
        }
    }

    /// `unlock_time=`: seconds, `0` or `never` for never; 600 s when unset.
    fn unlock(&self) -> Result<UnlockTime> {
        Ok(match self.unlock_time.as_deref() {
            None => UnlockTime::After(Duration::from_secs(DEFAULT_UNLOCK_TIME)),
            Some("never") | Some("0") => UnlockTime::Never,
            Some(v) => {
                UnlockTime::After(Duration::from_secs(v.parse().with_context(|| {
                    format!("pam_faillock unlock_time={v:?} is not a number")
                })?))
            }
        })
    }
}

/// Where pam_faillock keeps its records when the module line names no
/// `dir=`: `dir =` in faillock.conf, else the built-in default. For what
/// applies to the whole system rather than to one service's stack (the
/// run's tidying of the directory); a service's own directory is its
/// [`Policy::dir`]. A faillock.conf that cannot be read counts as
/// missing, as pam_faillock itself treats its default file.
pub fn records_dir() -> PathBuf {
    let conf = std::fs::read_to_string(DEFAULT_CONF).unwrap_or_default();
    dir_of(&Settings::from_conf(&conf))
}

/// Every directory a user's record may be in: the configured one and the
/// built-in default under both its names (/var/run is a link to /run on
/// Debian, not everywhere). For removing a record wherever it is, when the
/// stack that wrote it is not known.
pub fn every_records_dir() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/run/faillock"), PathBuf::from(DEFAULT_DIR)];
    let configured = records_dir();
    if !dirs.contains(&configured) {
        dirs.push(configured);
    }
    dirs
}

fn dir_of(settings: &Settings) -> PathBuf {
    PathBuf::from(settings.dir.as_deref().unwrap_or(DEFAULT_DIR))
}

/// pam_faillock's policy for `service` (`"su"`, `"login"`, `"sshd"`), or
/// `None` when its auth stack has no pam_faillock line. A stack that uses
/// the older pam_tally/pam_tally2 instead is an error: the suite does not
/// read their policy.
pub fn policy(ev: &Evidence, service: &str) -> Result<Option<Policy>> {
    let auth = pam::stack(service, "auth")?;
    refuse_tally(service, &auth)?;
    let lines: Vec<&PamLine> = auth.iter().filter(|l| l.module == MODULE).collect();
    let Some(deciding) = deciding_line(&lines) else {
        ev.note(format!("the `{service}` auth stack has no {MODULE} line"));
        return Ok(None);
    };
    let mut notes = Vec::new();
    let conf = Settings::from_conf(&read_conf(deciding, &mut notes)?);
    let mut settings = conf.clone();
    settings.overlay(deciding);
    notes.extend(disagreements(&lines, deciding, &conf, &settings));
    Ok(Some(Policy {
        service: service.to_owned(),
        deny: settings.deny_count()?,
        unlock_time: settings.unlock()?,
        even_deny_root: settings.even_deny_root,
        dir: dir_of(&settings),
        lines: lines.iter().map(|l| l.location()).collect(),
        notes,
    }))
}

/// The older pam_tally/pam_tally2 lock accounts with a policy of their
/// own, which the suite does not read.
fn refuse_tally(service: &str, auth: &[PamLine]) -> Result<()> {
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
    Ok(())
}

/// The pam_faillock line that decides "locked or not": `preauth`, else
/// `authfail`, else the first; `None` without any.
fn deciding_line<'a>(lines: &[&'a PamLine]) -> Option<&'a PamLine> {
    lines
        .iter()
        .find(|l| l.arg("preauth").is_some())
        .or_else(|| lines.iter().find(|l| l.arg("authfail").is_some()))
        .or(lines.first())
        .copied()
}

/// The configuration file the deciding line names (`conf=`, else
/// faillock.conf); empty when it does not exist. Notes which applies.
fn read_conf(deciding: &PamLine, notes: &mut Vec<String>) -> Result<String> {
    let conf_path = deciding.arg("conf").unwrap_or(DEFAULT_CONF);
    match std::fs::read_to_string(conf_path) {
        Ok(t) => {
            notes.push(format!("read {conf_path}; the line's options override it"));
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!(
                "{conf_path} does not exist: pam_faillock's built-in defaults and the line's options apply"
            ));
            Ok(String::new())
        }
        Err(e) => Err(e).with_context(|| format!("reading {conf_path}")),
    }
}

/// The authfail line counts the failures: a different deny there would
/// make the lock engage at another count than preauth enforces. A note
/// for each line whose values differ from the deciding line's.
fn disagreements(
    lines: &[&PamLine],
    deciding: &PamLine,
    conf: &Settings,
    settings: &Settings,
) -> Vec<String> {
    let mut notes = Vec::new();
    for other in lines.iter().filter(|l| !std::ptr::eq(**l, deciding)) {
        let mut s = conf.clone();
        s.overlay(other);
        if s.deny != settings.deny || s.unlock_time != settings.unlock_time {
            notes.push(format!(
                "NOTE: {} has other values (deny={} unlock_time={}) than the deciding line",
                other.location(),
                crate::runtime::evidence::or_none(s.deny.as_deref()),
                crate::runtime::evidence::or_none(s.unlock_time.as_deref())
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
            module_missing: false,
            level: 0,
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

    #[test]
    fn records_dir_from_the_conf_file_or_the_default() {
        let conf = Settings::from_conf("dir = /var/lib/faillock # kept\n");
        assert_eq!(dir_of(&conf), Path::new("/var/lib/faillock"));
        let conf = Settings::from_conf("# dir = /elsewhere\ndeny = 4\n");
        assert_eq!(dir_of(&conf), Path::new(DEFAULT_DIR));
    }

    fn faillock_line(number: usize, args: &str) -> PamLine {
        PamLine {
            file: PathBuf::from("/etc/pam.d/common-auth"),
            number,
            text: format!("auth required pam_faillock.so {args}"),
            skip_if_missing: false,
            module_missing: false,
            level: 0,
            control: "required".into(),
            module: "pam_faillock.so".into(),
            args: args.split_whitespace().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn preauth_decides_then_authfail_then_the_first_line() {
        let authsucc = faillock_line(1, "authsucc");
        let authfail = faillock_line(2, "authfail deny=5");
        let preauth = faillock_line(3, "preauth silent");
        let number = |lines: &[&PamLine]| deciding_line(lines).map(|l| l.number);
        assert_eq!(number(&[&authsucc, &authfail, &preauth]), Some(3));
        assert_eq!(number(&[&authsucc, &authfail]), Some(2));
        assert_eq!(number(&[&authsucc]), Some(1));
        assert_eq!(number(&[]), None);
    }

    #[test]
    fn deny_and_unlock_time_default_and_parse() {
        let unset = Settings::default();
        assert_eq!(unset.deny_count().unwrap(), DEFAULT_DENY);
        assert_eq!(
            unset.unlock().unwrap(),
            UnlockTime::After(Duration::from_secs(DEFAULT_UNLOCK_TIME))
        );
        let set = Settings::from_conf("deny=4\nunlock_time=never\n");
        assert_eq!(set.deny_count().unwrap(), 4);
        assert_eq!(set.unlock().unwrap(), UnlockTime::Never);
        assert_eq!(
            Settings::from_conf("unlock_time=0").unlock().unwrap(),
            UnlockTime::Never
        );
        assert_eq!(
            Settings::from_conf("unlock_time=90").unlock().unwrap(),
            UnlockTime::After(Duration::from_secs(90))
        );
        let bad = Settings::from_conf("deny=three\nunlock_time=1h");
        assert!(bad
            .deny_count()
            .unwrap_err()
            .to_string()
            .contains(r#"deny="three""#));
        assert!(bad.unlock().is_err());
    }
}
