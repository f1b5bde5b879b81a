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

use crate::facts::pam::{self, PamLine};
use crate::runtime::password::{shaped_passphrase, shaped_password, strong_password_of_len};
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
    /// Passphrases, when the module tells them apart (passwdqc).
    pub passphrase: Option<PassphraseRule>,
    /// `min_length` is exactly what the module accepts (passwdqc), not
    /// only a bound below which it refuses (the credit-based modules,
    /// whose dictionary checks and per-class credits make the shortest
    /// accepted password depend on which characters it has).
    pub exact: bool,
    /// The module refuses (rather than only warns about) a weak password
    /// that a user sets for themselves.
    pub enforcing: bool,
    /// It refuses a weak password that root sets (`chpasswd`, `passwd USER`).
    pub enforced_for_root: bool,
    /// How many times the module asks again after a refusal.
    pub retry: u32,
}

/// pam_passwdqc's passphrases: `passphrase=` words or more, with at
/// least two classes (lowercase and the spaces between the words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassphraseRule {
    /// Shortest accepted passphrase (`min=` N2); `None`: `disabled`.
    pub min_length: Option<usize>,
    /// How many words make a passphrase (`passphrase=`).
    pub words: usize,
}

/// What a try must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Refused,
    Accepted,
}

/// One password to try, with the rule that says how it must end.
#[derive(Debug, Clone)]
pub struct Try {
    /// E.g. "2 classes (lowercase, digits), 11 characters".
    pub label: String,
    pub text: String,
    pub expect: Expect,
    /// Why: "one character below the configured minimum of 12 for 2-class
    /// passwords".
    pub why: String,
}

/// The tries derived from a policy (refusals first), and what the policy
/// cannot promise (recorded, never asserted).
#[derive(Debug, Clone)]
pub struct Plan {
    pub tries: Vec<Try>,
    pub notes: Vec<String>,
}

/// A password to try, with what makes it what it is.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// E.g. "1 class (lowercase), 12 characters".
    pub label: String,
    pub text: String,
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
        if let Some(rule) = self.passphrase {
            let _ = write!(
                s,
                "\n  passphrases ({} words or more): {}",
                rule.words,
                match rule.min_length {
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

    /// The reference length of the catalog: the 4-class minimum, never
    /// below [`CATALOG_MIN_LENGTH`].
    pub fn reference_length(&self) -> usize {
        reference_length(self.min_length(4))
    }

    /// The passwords to try against this policy, as configured and against
    /// the catalog's floor (see [`plan`]).
    pub fn plan(&self) -> Result<Plan> {
        plan(&Model {
            min_length: self.min_length,
            passphrase: self.passphrase,
            max_length: self.max_length,
            exact: self.exact,
            inexact: "the module's credits and dictionary checks make the shortest \
                      accepted password depend on the characters chosen",
            source: "configured",
            floor_only: false,
        })
    }

    /// A random 4-class password at a comfortable length, which the policy
    /// must accept.
    pub fn strong(&self) -> Result<Candidate> {
        let len = comfortable_length(self.reference_length(), self.max_length);
        Ok(Candidate {
            label: format!("4 classes, {len} random characters"),
            text: strong_password_of_len(len)?,
        })
    }
}

/// The tries when the stack has no quality module: only the catalog's
/// floor (1 to 3 classes and a passphrase refused at 8 characters, 4
/// classes refused at 7 and accepted at a comfortable length).
pub fn catalog_floor_plan() -> Result<Plan> {
    plan(&Model {
        min_length: [None, None, None, Some(CATALOG_MIN_LENGTH)],
        passphrase: Some(PassphraseRule {
            min_length: None,
            words: 3,
        }),
        max_length: None,
        exact: false,
        inexact: "no module sets a minimum",
        source: "catalog's",
        floor_only: true,
    })
}

/// The numbers a plan is derived from.
struct Model {
    min_length: [Option<usize>; 4],
    passphrase: Option<PassphraseRule>,
    max_length: Option<usize>,
    exact: bool,
    /// Why acceptance at a minimum is not asserted when not `exact`.
    inexact: &'static str,
    /// Whose minima these are, for the evidence ("configured").
    source: &'static str,
    /// No module: only the catalog's floor is tried.
    floor_only: bool,
}

/// Why a try at the catalog's floor must be refused.
fn floor_why(kind: &Kind, reference: usize, configured: Option<usize>) -> String {
    let mut why = format!(
        "the catalog requires {} of {} characters to be refused (reference length {reference})",
        kind.name, kind.floor
    );
    if let Some(n) = configured {
        why.push_str(&format!("; configured minimum: {n}"));
    }
    why
}

fn reference_length(four_classes: Option<usize>) -> usize {
    four_classes
        .unwrap_or(CATALOG_MIN_LENGTH)
        .max(CATALOG_MIN_LENGTH)
}

fn comfortable_length(reference: usize, max: Option<usize>) -> usize {
    let long = reference + LENGTH_MARGIN;
    max.map_or(long, |m| long.min(m))
}

/// What is tried for one kind of password (a class count, or passphrases).
struct Kind {
    /// "2-class passwords", "passphrases of 3 words".
    name: String,
    /// Its minimum as configured; `None`: never accepted.
    min: Option<usize>,
    /// The catalog's floor: at this length the kind must be refused.
    floor: usize,
    /// Shortest length this kind can be built with.
    shortest: usize,
    /// Builds one of this kind at a length, with its label.
    make: Box<dyn Fn(usize) -> Result<(String, String)>>,
    /// Whether an accepted try at the minimum is asserted.
    assert_accepted: bool,
}

/// For each class count and for passphrases: with a configured minimum
/// `n`, one of `n - 1` characters is refused and one of `n` accepted
/// (where the model is exact and `n` is within `max=`); with none, one at
/// a comfortable length is refused. On top, the catalog's floor: 1 to 3
/// classes and passphrases are refused at the reference length (the
/// 4-class minimum, never below 8), a 4-class password one character
/// shorter than the reference is refused; fewer classes may be accepted
/// only when longer. Refusals come first.
fn plan(model: &Model) -> Result<Plan> {
    let reference = reference_length(model.min_length[3]);
    let kinds = kinds(model, reference);
    let mut planner = Planner {
        model,
        reference,
        comfortable: comfortable_length(reference, model.max_length),
        tries: Vec::new(),
        notes: Vec::new(),
    };
    let mut accepted_four = false;
    for (index, kind) in kinds.iter().enumerate() {
        let accepted_at_minimum = planner.try_kind(kind)?;
        accepted_four |= accepted_at_minimum && index == 3;
    }
    // A 4-class password must be accepted somewhere: where the exact
    // minimum was not tried (below the floor, or a credit-based module),
    // at a length that satisfies both the catalog and the module.
    // (With no 4-class minimum at all, nothing can be set: this try then
    // fails, as it must.)
    if !accepted_four {
        planner.try_strong(&kinds[3])?;
    }
    let Planner {
        mut tries, notes, ..
    } = planner;
    tries.sort_by_key(|t| t.expect == Expect::Accepted);
    Ok(Plan { tries, notes })
}

/// The kinds a plan tries: 1 to 4 classes, then passphrases where the
/// model has them.
fn kinds(model: &Model, reference: usize) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = (1..=4)
        .map(|classes| Kind {
            name: format!("{classes}-class passwords"),
            min: model.min_length[classes - 1],
            floor: if classes == 4 {
                reference - 1
            } else {
                reference
            },
            shortest: classes,
            make: Box::new(move |len| {
                let c = shaped(classes, len)?;
                Ok((c.label, c.text))
            }),
            // Where the model is only a bound, a 4-class password is still
            // shown to be accepted, at a comfortable length (see plan).
            assert_accepted: model.exact,
        })
        .collect();
    // With one word a passphrase is any 2-class password with a letter:
    // the 2-class tries cover it.
    if let Some(rule) = model.passphrase.filter(|rule| rule.words >= 2) {
        let words = rule.words;
        kinds.push(Kind {
            name: format!("passphrases of {words} words"),
            min: rule.min_length,
            floor: reference,
            shortest: 2 * words - 1,
            make: Box::new(move |len| {
                Ok((
                    format!("passphrase of {words} words (lowercase, spaces), {len} characters"),
                    shaped_passphrase(words, len)?,
                ))
            }),
            assert_accepted: model.exact,
        });
    }
    kinds
}

/// The tries and notes of a plan while it is being made.
struct Planner<'a> {
    model: &'a Model,
    reference: usize,
    comfortable: usize,
    tries: Vec<Try>,
    notes: Vec<String>,
}

impl Planner<'_> {
    fn add(&mut self, kind: &Kind, len: usize, expect: Expect, why: String) -> Result<()> {
        let (label, text) = (kind.make)(len)?;
        self.tries.push(Try {
            label,
            text,
            expect,
            why,
        });
        Ok(())
    }

    /// The tries for one kind; true when one of them is an acceptance at
    /// its minimum.
    fn try_kind(&mut self, kind: &Kind) -> Result<bool> {
        let source = self.model.source;
        let name = &kind.name;
        let Some(n) = self.settable_minimum(kind) else {
            self.try_never_accepted(kind)?;
            return Ok(false);
        };
        if n > kind.shortest {
            let why = format!("one character below the {source} minimum of {n} for {name}");
            self.add(kind, n - 1, Expect::Refused, why)?;
        }
        if n <= kind.floor {
            // The configuration itself is below the catalog's floor: this
            // try shows whether the module really accepts it.
            let why = floor_why(kind, self.reference, Some(n));
            self.add(kind, kind.floor, Expect::Refused, why)?;
            Ok(false)
        } else if !kind.assert_accepted {
            self.notes.push(format!(
                "{name}: refusal below {n} characters tried; acceptance at exactly {n} \
                 not asserted: {}",
                self.model.inexact
            ));
            Ok(false)
        } else {
            let why = format!("the {source} minimum for {name} is {n}");
            self.add(kind, n, Expect::Accepted, why)?;
            Ok(true)
        }
    }

    /// The kind's minimum, `None` when it is never accepted. A minimum
    /// above max= means never: no such password can be set.
    fn settable_minimum(&mut self, kind: &Kind) -> Option<usize> {
        match kind.min {
            Some(n) if self.model.max_length.is_some_and(|max| n > max) => {
                self.notes.push(format!(
                    "{}: the {} minimum of {n} is above the longest accepted \
                     length, so no such password can be set; tried as never accepted",
                    kind.name, self.model.source
                ));
                None
            }
            other => other,
        }
    }

    /// A kind the policy never accepts: refused at the catalog's floor
    /// (no module) or at a comfortable length.
    fn try_never_accepted(&mut self, kind: &Kind) -> Result<()> {
        if self.model.floor_only {
            let why = floor_why(kind, self.reference, None);
            self.add(kind, kind.floor, Expect::Refused, why)
        } else {
            let why = format!(
                "the {} policy never accepts {}",
                self.model.source, kind.name
            );
            let len = self.comfortable.max(kind.shortest);
            self.add(kind, len, Expect::Refused, why)
        }
    }

    /// The strong 4-class password CR1.7 needs accepted.
    fn try_strong(&mut self, four_classes: &Kind) -> Result<()> {
        let len = if self.model.exact && four_classes.min.is_some() {
            self.reference
        } else {
            self.comfortable
        };
        self.add(
            four_classes,
            len,
            Expect::Accepted,
            format!("CR1.7 needs a strong password to be accepted: 4 classes, {len} characters"),
        )
    }
}

fn shaped(classes: usize, len: usize) -> Result<Candidate> {
    let names: Vec<&str> = crate::runtime::password::CharClass::ALL[..classes]
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
    let settings = passwdqc_settings(&line, read)?;
    let get = |k: &str| lookup(&settings, k);
    let min = passwdqc_min(get("min"))?;
    let enforce = get("enforce").unwrap_or("users").to_owned();
    let max_length = get("max").and_then(|m| m.parse().ok());
    let retry = get("retry").and_then(|r| r.parse().ok()).unwrap_or(3);
    // `passphrase=0` turns passphrases off.
    let passphrase = match get("passphrase").and_then(|w| w.parse::<usize>().ok()) {
        Some(0) => None,
        words => Some(PassphraseRule {
            min_length: min[2],
            words: words.unwrap_or(3),
        }),
    };
    Ok(QualityPolicy {
        module: QualityModule::Passwdqc,
        service: service.to_owned(),
        line,
        // N2 is for passphrases (several words): not a class count. With
        // `passphrase=1` any 2-class password with a letter is a
        // passphrase, so N2 (never above N1) is then the 2-class minimum.
        min_length: [
            min[0],
            if passphrase.is_some_and(|p| p.words == 1) {
                min[2]
            } else {
                min[1]
            },
            min[3],
            min[4],
        ],
        max_length,
        passphrase,
        exact: true,
        enforcing: enforce != "none",
        enforced_for_root: passwdqc_enforced_for_root(&enforce, service),
        retry,
        settings,
    })
}

/// pam_passwdqc's settings: its built-in defaults, then the PAM line's
/// options in order, a `config=FILE` read in place.
fn passwdqc_settings(line: &PamLine, read: &dyn Fn(&Path) -> Option<String>) -> Result<Settings> {
    // The module's built-in defaults (passwdqc.conf(5)).
    let mut settings = built_in(&[
        ("min", "disabled,24,11,8,7"),
        ("max", "40"),
        ("enforce", "users"),
        ("retry", "3"),
        ("similar", "deny"),
        ("passphrase", "3"),
    ]);
    let from_line = format!("{}:{}", line.file.display(), line.number);
    for (k, v) in line_options(line) {
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
    Ok(settings)
}

/// `min=N0,N1,N2,N3,N4`, `disabled` as `None`.
fn passwdqc_min(value: Option<&str>) -> Result<Vec<Option<usize>>> {
    let min: Vec<Option<usize>> = value
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect();
    anyhow::ensure!(
        min.len() == 5,
        "pam_passwdqc min= needs five values, found {value:?}"
    );
    // pam_passwdqc itself refuses a min= whose values grow ("Invalid
    // parameter value"; `disabled` is the largest), and every password
    // change then fails: the model relies on it.
    let as_number = |n: &Option<usize>| n.unwrap_or(usize::MAX);
    anyhow::ensure!(
        min.windows(2).all(|w| as_number(&w[0]) >= as_number(&w[1])),
        "pam_passwdqc min={} is invalid: its values must not grow from left to right",
        value.unwrap_or_default()
    );
    Ok(min)
}

/// `enforce=users` lets root off with a warning only in the `passwd`
/// service (pam_passwdqc's check is uid 0 *and* service "passwd"); root's
/// chpasswd is held to the policy unless `enforce=none`.
fn passwdqc_enforced_for_root(enforce: &str, service: &str) -> bool {
    match enforce {
        "everyone" => true,
        "users" => service != "passwd",
        _ => false,
    }
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
        passphrase: None,
        exact: false,
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
        passphrase: None,
        exact: false,
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
    use crate::runtime::password::classes_in;
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
            module_missing: false,
            level: 0,
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
    fn passwdqc_min_needs_five_values_that_do_not_grow() {
        assert_eq!(
            passwdqc_min(Some("disabled, 24,11,8,7")).unwrap(),
            [None, Some(24), Some(11), Some(8), Some(7)]
        );
        assert_eq!(
            passwdqc_min(Some("disabled,disabled,disabled,disabled,8")).unwrap(),
            [None, None, None, None, Some(8)]
        );
        let short = passwdqc_min(Some("8")).unwrap_err().to_string();
        assert!(short.contains(r#"five values, found Some("8")"#), "{short}");
        assert!(passwdqc_min(None).is_err());
        let growing = passwdqc_min(Some("6,6,6,6,8")).unwrap_err().to_string();
        assert!(growing.contains("min=6,6,6,6,8 is invalid"), "{growing}");
        assert!(passwdqc_min(Some("8,8,8,disabled,8")).is_err());
    }

    #[test]
    fn passwdqc_spares_root_only_in_passwd_with_enforce_users() {
        assert!(passwdqc_enforced_for_root("everyone", "passwd"));
        assert!(!passwdqc_enforced_for_root("users", "passwd"));
        assert!(passwdqc_enforced_for_root("users", "chpasswd"));
        assert!(!passwdqc_enforced_for_root("none", "chpasswd"));
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

    /// Each try in order, as `R` (refused) or `A` (accepted), the class
    /// count or `pp` and the word count for a passphrase, `@`, its length.
    fn shapes(plan: &Plan) -> String {
        plan.tries
            .iter()
            .map(|t| {
                let expect = if t.expect == Expect::Refused {
                    'R'
                } else {
                    'A'
                };
                let kind = if t.label.starts_with("passphrase") {
                    format!("pp{}", t.text.split(' ').count())
                } else {
                    classes_in(&t.text).len().to_string()
                };
                format!("{expect}{kind}@{}", t.text.len())
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The plan for a passwdqc line with `args`, checked against
    /// `expected` (see [`shapes`]).
    fn assert_plan(args: &str, expected: &str) -> Plan {
        let plan = plan_of(args);
        assert_eq!(shapes(&plan), expected, "{args}");
        plan
    }

    fn plan_of(args: &str) -> Plan {
        passwdqc("passwd", line("pam_passwdqc.so", args), &no_files)
            .unwrap()
            .plan()
            .unwrap()
    }

    #[test]
    fn the_cip_policy_is_tried_per_class_and_with_a_passphrase() {
        let plan = assert_plan(
            "min=disabled,disabled,disabled,disabled,8 similar=deny random=0 enforce=everyone retry=3",
            "R1@12 R2@12 R3@12 R4@7 Rpp3@12 A4@8",
        );
        assert_eq!(
            plan.tries[3].why,
            "one character below the configured minimum of 8 for 4-class passwords"
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        // A stricter 4-class minimum is tried at its own limits.
        let strict = plan_of("min=disabled,disabled,disabled,disabled,14");
        assert!(shapes(&strict).ends_with("R4@13 Rpp3@18 A4@14"));
    }

    #[test]
    fn minima_below_the_catalog_floor_are_tried_at_the_floor() {
        // passwdqc-relaxed: every class (and passphrases) from 6.
        assert_plan(
            "min=6,6,6,6,6",
            "R1@5 R1@8 R2@5 R2@8 R3@5 R3@8 R4@5 R4@7 Rpp3@5 Rpp3@8 A4@8",
        );
        // passwdqc-short-passphrase: two words (and 3 classes) from 8.
        let short = assert_plan(
            "min=disabled,disabled,8,8,8 passphrase=2",
            "R1@12 R2@12 R3@7 R3@8 R4@7 Rpp2@7 Rpp2@8 A4@8",
        );
        assert!(short.tries[6].why.starts_with(
            "the catalog requires passphrases of 2 words of 8 characters to be refused"
        ));
        // passphrase=0: no passphrase tries.
        let none = plan_of("min=disabled,disabled,8,8,8 passphrase=0");
        assert!(!none.tries.iter().any(|t| t.label.starts_with("passphrase")));
        // passphrase=1: every 2-class password with a letter is a passphrase.
        assert_plan(
            "min=disabled,24,12,12,8 passphrase=1",
            "R1@12 R2@11 R3@11 R4@7 A2@12 A3@12 A4@8",
        );
        // A min= that grows is refused by the module itself.
        assert!(passwdqc(
            "passwd",
            line("pam_passwdqc.so", "min=disabled,disabled,8,disabled,8"),
            &no_files
        )
        .is_err());
    }

    #[test]
    fn longer_minima_for_fewer_classes_are_accepted_at_their_length() {
        // passwdqc's built-in min=disabled,24,11,8,7: 3 classes at 8 is
        // below the floor; 2 classes and passphrases compensate by length.
        assert_plan(
            "",
            "R1@12 R2@23 R3@7 R3@8 R4@6 R4@7 Rpp3@10 A2@24 App3@11 A4@8",
        );
        // A minimum above max= cannot be set: said, not tried.
        let capped = plan_of("min=disabled,30,12,10,8 max=20");
        assert!(capped
            .notes
            .iter()
            .any(|n| n.contains("2-class passwords: the configured minimum of 30")));
        assert!(capped.tries.iter().all(|t| t.text.len() <= 20));
    }

    #[test]
    fn credit_modules_assert_refusals_and_a_comfortable_acceptance() {
        let c = cracklib(
            "passwd",
            line(
                "pam_cracklib.so",
                "retry=3 minlen=8 maxrepeat=3 ucredit=-1 lcredit=-1 dcredit=-1 ocredit=-1 difok=3",
            ),
        )
        .plan()
        .unwrap();
        assert_eq!(shapes(&c), "R1@12 R2@12 R3@12 R4@7 A4@12");
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        // No module: the catalog's floor only, at the reference length.
        assert_eq!(
            shapes(&catalog_floor_plan().unwrap()),
            "R1@8 R2@8 R3@8 R4@7 Rpp3@8 A4@12"
        );
    }

    #[test]
    fn the_strong_password_fits_the_policy() {
        let p = passwdqc(
            "passwd",
            line(
                "pam_passwdqc.so",
                "min=disabled,disabled,disabled,disabled,14",
            ),
            &no_files,
        )
        .unwrap();
        let strong = p.strong().unwrap();
        assert_eq!(strong.text.len(), 18);
        assert_eq!(classes_in(&strong.text).len(), 4);
    }
}
