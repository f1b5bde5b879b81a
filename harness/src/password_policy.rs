//! The password-quality policy a PAM service enforces, read from the
//! configuration ("as configured"), and passwords derived from it to try.
//!
//! [`detect`] finds the first quality module in the service's password
//! stack (pam_passwdqc, pam_pwquality or pam_cracklib, includes followed)
//! and computes, from its options and configuration files, the shortest
//! password it accepts for each number of character classes. The test cases
//! then try passwords built from those numbers ([`QualityPolicy::candidates`])
//! instead of hard-coded ones, so a stricter image is tried at its own
//! limits, and a relaxed one is caught.

use crate::pam::{self, PamLine};
use crate::password::{shaped_password, strong_password_of_len};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The catalog's floor for CR1.7: a 4-class password shorter than this must
/// be refused, whatever the image configures.
pub const CATALOG_MIN_LENGTH: usize = 8;
/// How much longer than the 4-class minimum the class-count candidates and
/// the strong candidate are, so that length is never why they are refused.
const LENGTH_MARGIN: usize = 4;

const PWQUALITY_CONF: &str = "/etc/security/pwquality.conf";
const PWQUALITY_CONF_DIR: &str = "/etc/security/pwquality.conf.d";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityModule {
    Passwdqc,
    Pwquality,
    Cracklib,
}

impl QualityModule {
    pub fn file_name(self) -> &'static str {
        match self {
            QualityModule::Passwdqc => "pam_passwdqc.so",
            QualityModule::Pwquality => "pam_pwquality.so",
            QualityModule::Cracklib => "pam_cracklib.so",
        }
    }

    fn from_file_name(name: &str) -> Option<Self> {
        [
            QualityModule::Passwdqc,
            QualityModule::Pwquality,
            QualityModule::Cracklib,
        ]
        .into_iter()
        .find(|m| m.file_name() == name)
    }
}

/// What the configured module demands.
#[derive(Debug, Clone)]
pub struct QualityPolicy {
    pub module: QualityModule,
    /// The PAM service whose stack was read (`passwd`, `chpasswd`).
    pub service: String,
    /// The module's line in that stack.
    pub line: PamLine,
    /// The settings in effect, `key=value`, with where each came from.
    pub settings: Settings,
    /// Shortest accepted length of a password with 1, 2, 3, 4 character
    /// classes (index 0..4); `None`: never accepted, whatever its length.
    pub min_length: [Option<usize>; 4],
    /// Longest accepted length, when the module has one (passwdqc `max=`).
    pub max_length: Option<usize>,
    /// The module refuses (rather than only warns about) a weak password
    /// that a user sets for themselves.
    pub enforcing: bool,
    /// It refuses a weak password that root sets (`chpasswd`, `passwd USER`).
    pub enforced_for_root: bool,
    /// How many times the module asks again after a refusal.
    pub retry: u32,
}

/// A password to try, with what makes it what it is.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// E.g. "1 class (lowercase), 12 characters".
    pub label: String,
    pub text: String,
}

/// The passwords to try against a policy: each weak one must be refused,
/// the strong one accepted.
#[derive(Debug, Clone)]
pub struct Candidates {
    /// 1, 2 and 3 classes at a comfortable length, and 4 classes one
    /// character short of the minimum.
    pub weak: Vec<Candidate>,
    pub strong: Candidate,
}

/// The quality module that `service`'s password stack runs, with its
/// policy; `None` when the stack has none (or names one that is not
/// installed, which libpam skips or fails on without checking anything).
pub fn detect(service: &str) -> Result<Option<QualityPolicy>> {
    let stack = pam::stack(service, "password")
        .with_context(|| format!("reading the password stack of PAM service {service}"))?;
    let Some((module, line)) = stack.into_iter().find_map(|l| {
        QualityModule::from_file_name(&l.module)
            .filter(|m| pam::module_path(m.file_name()).is_some())
            .map(|m| (m, l))
    }) else {
        return Ok(None);
    };
    let policy = match module {
        QualityModule::Passwdqc => passwdqc(service, line, &|p| std::fs::read_to_string(p).ok())?,
        QualityModule::Pwquality => pwquality(service, line, &pwquality_files()?),
        QualityModule::Cracklib => cracklib(service, line),
    };
    Ok(Some(policy))
}

impl QualityPolicy {
    /// Shortest accepted length with `classes` (1..=4) character classes.
    pub fn min_length(&self, classes: usize) -> Option<usize> {
        self.min_length
            .get(classes.wrapping_sub(1))
            .copied()
            .flatten()
    }

    /// The policy in a few lines, for the evidence.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} in the password stack of {} ({}, control {})",
            self.module.file_name(),
            self.service,
            self.line.location(),
            self.line.control
        );
        for (k, v, from) in &self.settings {
            let _ = write!(s, "\n  {k}={v}  ({from})");
        }
        for classes in 1..=4 {
            let _ = write!(
                s,
                "\n  {classes} class(es): {}",
                match self.min_length(classes) {
                    Some(n) => format!("accepted from {n} characters"),
                    None => "never accepted".to_owned(),
                }
            );
        }
        if let Some(max) = self.max_length {
            let _ = write!(s, "\n  longest accepted: {max} characters");
        }
        let _ = write!(
            s,
            "\n  enforced for users: {}; for root: {}; asks {} time(s)",
            yes_no(self.enforcing),
            yes_no(self.enforced_for_root),
            self.retry
        );
        s
    }

    /// Passwords derived from this policy. The reference length is the
    /// 4-class minimum, but never below [`CATALOG_MIN_LENGTH`]: a policy
    /// that accepts shorter passwords is caught by the short candidate.
    pub fn candidates(&self) -> Result<Candidates> {
        let reference = self
            .min_length(4)
            .unwrap_or(CATALOG_MIN_LENGTH)
            .max(CATALOG_MIN_LENGTH);
        let mut long = reference + LENGTH_MARGIN;
        if let Some(max) = self.max_length {
            long = long.min(max);
        }
        let mut weak = Vec::new();
        for classes in 1..=3 {
            weak.push(shaped(classes, long)?);
        }
        weak.push(shaped(4, reference - 1)?);
        Ok(Candidates {
            weak,
            strong: Candidate {
                label: format!("4 classes, {long} random characters"),
                text: strong_password_of_len(long)?,
            },
        })
    }
}

fn shaped(classes: usize, len: usize) -> Result<Candidate> {
    let names: Vec<&str> = crate::password::CharClass::ALL[..classes]
        .iter()
        .map(|c| c.name())
        .collect();
    Ok(Candidate {
        label: format!(
            "{classes} class{} ({}), {len} characters",
            if classes == 1 { "" } else { "es" },
            names.join(", ")
        ),
        text: shaped_password(classes, len)?,
    })
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// pam_passwdqc: `min=N0,N1,N2,N3,N4` (one class, two classes,
/// passphrase, three classes, four classes; `disabled` refuses that kind),
/// `max=`, `enforce=none|users|everyone`, `retry=`, and `config=FILE`
/// whose lines are read in place. Later settings win.
fn passwdqc(
    service: &str,
    line: PamLine,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<QualityPolicy> {
    // The module's built-in defaults (passwdqc.conf(5)).
    let mut settings = built_in(&[
        ("min", "disabled,24,11,8,7"),
        ("max", "40"),
        ("enforce", "users"),
        ("retry", "3"),
        ("similar", "deny"),
    ]);
    let from_line = format!("{}:{}", line.file.display(), line.number);
    for (k, v) in line_options(&line) {
        if k == "config" {
            let text = read(Path::new(v))
                .with_context(|| format!("pam_passwdqc config={v} cannot be read"))?;
            for (ck, cv) in conf_options(&text) {
                set(&mut settings, ck, cv, v);
            }
        } else {
            set(&mut settings, k, v, &from_line);
        }
    }
    let get = |k: &str| lookup(&settings, k);
    let min: Vec<Option<usize>> = get("min")
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect();
    anyhow::ensure!(
        min.len() == 5,
        "pam_passwdqc min= needs five values, found {:?}",
        get("min")
    );
    let enforce = get("enforce").unwrap_or("users").to_owned();
    let max_length = get("max").and_then(|m| m.parse().ok());
    let retry = get("retry").and_then(|r| r.parse().ok()).unwrap_or(3);
    Ok(QualityPolicy {
        module: QualityModule::Passwdqc,
        service: service.to_owned(),
        line,
        // N2 is for passphrases (several words): not a class count.
        min_length: [min[0], min[1], min[3], min[4]],
        max_length,
        enforcing: enforce != "none",
        // `enforce=users` lets root off with a warning only in the `passwd`
        // service (pam_passwdqc's check is uid 0 *and* service "passwd");
        // root's chpasswd is held to the policy unless `enforce=none`.
        enforced_for_root: match enforce.as_str() {
            "everyone" => true,
            "users" => service != "passwd",
            _ => false,
        },
        retry,
        settings,
    })
}

/// pwquality.conf, then pwquality.conf.d/*.conf in ASCII order (libpwquality
/// reads the directory first, then the file overrides; see pwquality.conf(5)).
fn pwquality_files() -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    if let Ok(dir) = std::fs::read_dir(PWQUALITY_CONF_DIR) {
        let mut names: Vec<_> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        names.sort();
        for p in names {
            if let Ok(text) = std::fs::read_to_string(&p) {
                files.push((p.display().to_string(), text));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(PWQUALITY_CONF) {
        files.push((PWQUALITY_CONF.to_owned(), text));
    }
    Ok(files)
}

/// Options shared by pam_pwquality and pam_cracklib: minimum length with
/// per-class credits, required classes, retries, root enforcement.
struct CreditRules {
    minlen: i64,
    /// dcredit, ucredit, lcredit, ocredit: positive = at most that many
    /// characters of the class count one extra towards the length;
    /// negative = at least that many characters of the class are required.
    credits: [i64; 4],
    minclass: usize,
}

impl CreditRules {
    /// Shortest length with `classes` classes that the rules accept, for
    /// the best choice of classes and characters; `None` if impossible.
    fn min_length(&self, classes: usize) -> Option<usize> {
        if self.minclass > classes {
            return None;
        }
        let required: Vec<i64> = self.credits.iter().filter(|c| **c < 0).copied().collect();
        if required.len() > classes {
            return None;
        }
        let required_chars: i64 = required.iter().map(|c| -c).sum();
        // The other classes: the ones with the biggest credits.
        let mut optional: Vec<i64> = self.credits.iter().filter(|c| **c >= 0).copied().collect();
        optional.sort_unstable_by(|a, b| b.cmp(a));
        let extra = classes - required.len();
        let credit_cap: i64 = optional.iter().take(extra).sum();
        let floor = required_chars + extra as i64;
        (floor.max(1)..=self.minlen.max(floor).max(1))
            .find(|&len| {
                let credit = credit_cap.min(len - required_chars);
                len + credit >= self.minlen
            })
            .and_then(|len| usize::try_from(len).ok())
    }
}

fn pwquality(service: &str, line: PamLine, files: &[(String, String)]) -> QualityPolicy {
    let mut settings = built_in(&[
        ("minlen", "8"),
        ("dcredit", "0"),
        ("ucredit", "0"),
        ("lcredit", "0"),
        ("ocredit", "0"),
        ("minclass", "0"),
        ("enforcing", "1"),
        ("retry", "1"),
    ]);
    for (path, text) in files {
        for (k, v) in conf_options(text) {
            set(&mut settings, k, v, path);
        }
    }
    let from_line = format!("{}:{}", line.file.display(), line.number);
    for (k, v) in line_options(&line) {
        set(&mut settings, k, v, &from_line);
    }
    // libpwquality never goes below 6 characters (pwquality.conf(5)).
    let rules = credit_rules(&settings, 8, Some(6));
    let get = |k: &str| lookup(&settings, k);
    QualityPolicy {
        module: QualityModule::Pwquality,
        service: service.to_owned(),
        min_length: [1, 2, 3, 4].map(|k| rules.min_length(k)),
        max_length: None,
        enforcing: get("enforcing").is_none_or(|v| v != "0"),
        enforced_for_root: get("enforce_for_root").is_some(),
        retry: get("retry").and_then(|r| r.parse().ok()).unwrap_or(1),
        line,
        settings,
    }
}

/// pam_cracklib: options on its PAM line only; credits default to 1.
fn cracklib(service: &str, line: PamLine) -> QualityPolicy {
    let mut settings = built_in(&[
        ("minlen", "9"),
        ("dcredit", "1"),
        ("ucredit", "1"),
        ("lcredit", "1"),
        ("ocredit", "1"),
        ("minclass", "0"),
        ("retry", "1"),
    ]);
    let from_line = format!("{}:{}", line.file.display(), line.number);
    for (k, v) in line_options(&line) {
        set(&mut settings, k, v, &from_line);
    }
    let rules = credit_rules(&settings, 9, None);
    let get = |k: &str| lookup(&settings, k);
    QualityPolicy {
        module: QualityModule::Cracklib,
        service: service.to_owned(),
        min_length: [1, 2, 3, 4].map(|k| rules.min_length(k)),
        max_length: None,
        enforcing: true,
        enforced_for_root: get("enforce_for_root").is_some(),
        retry: get("retry").and_then(|r| r.parse().ok()).unwrap_or(1),
        line,
        settings,
    }
}

/// `key`, `value`, where the value came from: the module's settings in the
/// order they took effect.
type Settings = Vec<(String, String, String)>;

/// A module's built-in defaults, marked as such.
fn built_in(defaults: &[(&str, &str)]) -> Settings {
    defaults
        .iter()
        .map(|(k, v)| {
            (
                (*k).to_owned(),
                (*v).to_owned(),
                "built-in default".to_owned(),
            )
        })
        .collect()
}

/// Set `key` (a later setting replaces an earlier one), noting its source.
fn set(settings: &mut Settings, key: &str, value: &str, from: &str) {
    settings.retain(|(k, _, _)| k != key);
    settings.push((key.to_owned(), value.to_owned(), from.to_owned()));
}

/// The options on a module's PAM line: `key=value`, or a flag (`key`, "").
fn line_options(line: &PamLine) -> impl Iterator<Item = (&str, &str)> {
    line.args
        .iter()
        .map(|arg| arg.split_once('=').unwrap_or((arg.as_str(), "")))
}

/// The `key = value` (or flag) lines of a module's configuration file,
/// without comments and blank lines.
fn conf_options(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.trim(), v.trim())
        })
}

fn lookup<'a>(settings: &'a [(String, String, String)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .find(|(k, _, _)| k == key)
        .map(|(_, v, _)| v.as_str())
}

fn credit_rules(
    settings: &[(String, String, String)],
    default_minlen: i64,
    floor: Option<i64>,
) -> CreditRules {
    let num = |k: &str, d: i64| {
        lookup(settings, k)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(d)
    };
    let mut minlen = num("minlen", default_minlen);
    if let Some(f) = floor {
        minlen = minlen.max(f);
    }
    CreditRules {
        minlen,
        credits: ["dcredit", "ucredit", "lcredit", "ocredit"].map(|k| num(k, 0)),
        minclass: usize::try_from(num("minclass", 0)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::classes_in;
    use std::path::PathBuf;

    fn line(module: &str, args: &str) -> PamLine {
        PamLine {
            file: PathBuf::from("/etc/pam.d/common-password"),
            number: 25,
            text: format!("password requisite {module} {args}"),
            control: "requisite".to_owned(),
            module: module.to_owned(),
            args: args.split_whitespace().map(str::to_owned).collect(),
            skip_if_missing: false,
        }
    }

    fn no_files(_: &Path) -> Option<String> {
        None
    }

    #[test]
    fn the_cip_passwdqc_line_means_four_classes_and_eight_characters() {
        let p = passwdqc(
            "passwd",
            line(
                "pam_passwdqc.so",
                "min=disabled,disabled,disabled,disabled,8 similar=deny random=0 enforce=everyone retry=3",
            ),
            &no_files,
        )
        .unwrap();
        assert_eq!(p.min_length, [None, None, None, Some(8)]);
        assert!(p.enforcing && p.enforced_for_root);
        assert_eq!((p.retry, p.max_length), (3, Some(40)));
        let text = p.describe();
        assert!(
            text.contains("4 class(es): accepted from 8 characters"),
            "{text}"
        );
        assert!(text.contains("1 class(es): never accepted"), "{text}");
    }

    #[test]
    fn passwdqc_defaults_relaxations_and_config_files() {
        let p = passwdqc("passwd", line("pam_passwdqc.so", ""), &no_files).unwrap();
        assert_eq!(p.min_length, [None, Some(24), Some(8), Some(7)]);
        assert!(p.enforcing && !p.enforced_for_root);
        // enforce=users only spares root in the passwd service.
        let batch = passwdqc("chpasswd", line("pam_passwdqc.so", ""), &no_files).unwrap();
        assert!(batch.enforced_for_root);
        let relaxed = passwdqc(
            "passwd",
            line("pam_passwdqc.so", "min=6,6,6,6,6 enforce=none"),
            &no_files,
        )
        .unwrap();
        assert_eq!(relaxed.min_length, [Some(6); 4]);
        assert!(!relaxed.enforcing);
        let conf = |p: &Path| {
            (p == Path::new("/etc/passwdqc.conf")).then(|| {
                "# site policy\nmin=disabled,disabled,disabled,12,10\nenforce=everyone\n".to_owned()
            })
        };
        let p = passwdqc(
            "passwd",
            line("pam_passwdqc.so", "config=/etc/passwdqc.conf retry=1"),
            &conf,
        )
        .unwrap();
        assert_eq!(p.min_length, [None, None, Some(12), Some(10)]);
        assert!(p.enforced_for_root);
        assert_eq!(p.retry, 1);
        assert!(passwdqc("passwd", line("pam_passwdqc.so", "min=8"), &no_files).is_err());
        assert!(passwdqc(
            "passwd",
            line("pam_passwdqc.so", "config=/nonexistent"),
            &no_files
        )
        .is_err());
    }

    #[test]
    fn pwquality_reads_its_files_and_the_line_overrides_them() {
        let files = vec![(
            PWQUALITY_CONF.to_owned(),
            "# minlen = 8\nminlen = 10\nminclass = 4\n".to_owned(),
        )];
        let p = pwquality(
            "passwd",
            line("pam_pwquality.so", "retry=3 minlen=12 enforce_for_root"),
            &files,
        );
        assert_eq!(p.min_length, [None, None, None, Some(12)]);
        assert!(p.enforcing && p.enforced_for_root);
        assert_eq!(p.retry, 3);
        // Defaults: 8 characters, any classes, not for root.
        let d = pwquality("passwd", line("pam_pwquality.so", ""), &[]);
        assert_eq!(d.min_length, [Some(8); 4]);
        assert!(!d.enforced_for_root);
        // Required classes through negative credits.
        let neg = pwquality(
            "passwd",
            line(
                "pam_pwquality.so",
                "dcredit=-1 ucredit=-1 lcredit=-1 ocredit=-1 minlen=8 enforcing=0",
            ),
            &[],
        );
        assert_eq!(neg.min_length, [None, None, None, Some(8)]);
        assert!(!neg.enforcing);
    }

    #[test]
    fn cracklib_credits_shorten_the_minimum() {
        // minlen=9 with one credit per class: 4 classes reach 9 with 5
        // characters, 1 class with 8.
        let c = cracklib("passwd", line("pam_cracklib.so", ""));
        assert_eq!(c.min_length, [Some(8), Some(7), Some(6), Some(5)]);
        let strict = cracklib(
            "passwd",
            line(
                "pam_cracklib.so",
                "minlen=8 minclass=4 dcredit=0 ucredit=0 lcredit=0 ocredit=0",
            ),
        );
        assert_eq!(strict.min_length, [None, None, None, Some(8)]);
    }

    #[test]
    fn candidates_follow_the_policy() {
        let p = passwdqc(
            "passwd",
            line(
                "pam_passwdqc.so",
                "min=disabled,disabled,disabled,disabled,8",
            ),
            &no_files,
        )
        .unwrap();
        let c = p.candidates().unwrap();
        let shapes: Vec<(usize, usize)> = c
            .weak
            .iter()
            .map(|w| (classes_in(&w.text).len(), w.text.len()))
            .collect();
        assert_eq!(shapes, [(1, 12), (2, 12), (3, 12), (4, 7)]);
        assert_eq!(c.strong.text.len(), 12);
        assert_eq!(
            c.weak[3].label,
            "4 classes (lowercase, digits, uppercase, punctuation), 7 characters"
        );
        // A stricter policy is tried at its own limits.
        let strict = passwdqc(
            "passwd",
            line(
                "pam_passwdqc.so",
                "min=disabled,disabled,disabled,disabled,14",
            ),
            &no_files,
        )
        .unwrap()
        .candidates()
        .unwrap();
        assert_eq!(strict.weak[3].text.len(), 13);
        assert_eq!(strict.strong.text.len(), 18);
        // A laxer one is still tried against the catalog's floor.
        let lax = passwdqc(
            "passwd",
            line("pam_passwdqc.so", "min=6,6,6,6,6"),
            &no_files,
        )
        .unwrap()
        .candidates()
        .unwrap();
        assert_eq!(lax.weak[3].text.len(), CATALOG_MIN_LENGTH - 1);
    }
}
