//! The FR-1 table both assessor reports (HTML, Markdown) are built from:
//! the run's records grouped by requirement, in the assessment document's
//! order, with each case's verdict in the assessor's words. Data only; the
//! writers decide the markup.

use crate::identity::Identity;
use crate::runner::{Outcome, Record};
use harness::runner_api::{timed_checks, utc_text};
use harness::Verdict;
use std::time::{Duration, SystemTime};

/// One case's verdict as the report words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseVerdict {
    Passed,
    /// The requirement was found violated.
    Failed,
    /// Nothing could be shown: a missing prerequisite, the time limit, …
    NotDemonstrated,
    /// An NA requirement, reported as skipped.
    NotApplicable,
    /// Skipped for another reason.
    Skipped,
}

impl CaseVerdict {
    pub fn of(record: &Record) -> Self {
        match &record.outcome {
            Outcome::Passed => CaseVerdict::Passed,
            Outcome::Failed(_) => CaseVerdict::Failed,
            Outcome::NotDemonstrated(_) => CaseVerdict::NotDemonstrated,
            Outcome::Skipped(_) if record.case.verdict == Verdict::NotApplicable => {
                CaseVerdict::NotApplicable
            }
            Outcome::Skipped(_) => CaseVerdict::Skipped,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            CaseVerdict::Passed => "passed",
            CaseVerdict::Failed => "failed",
            CaseVerdict::NotDemonstrated => "not demonstrated",
            CaseVerdict::NotApplicable => "NA",
            CaseVerdict::Skipped => "skipped",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, CaseVerdict::Failed | CaseVerdict::NotDemonstrated)
    }
}

/// One row of the FR-1 table.
#[derive(Debug)]
pub struct Requirement<'a> {
    /// `CR1.1 RE1`, `NDR1.6`, …
    pub id: &'a str,
    pub title: &'a str,
    /// The assessment's SL-2 status.
    pub status: Verdict,
    /// The NA reason and user action, if NA.
    pub not_applicable: Option<&'a harness::NotApplicable>,
    pub cases: Vec<&'a Record>,
}

impl Requirement<'_> {
    /// The status cell: the assessment's SL-2 status, and whether this run
    /// failed to demonstrate it.
    pub fn status_text(&self) -> &'static str {
        match (self.status, self.failed()) {
            (Verdict::Met, false) => "Met",
            (Verdict::Met, true) => "Met; NOT demonstrated by this run",
            (Verdict::NotApplicable, false) => "NA",
            (Verdict::NotApplicable, true) => "NA; its mechanism, present, failed",
        }
    }

    /// What a product maker does for this requirement: the NA case's user
    /// action, or for a Met one, what the evidence leaves to the product.
    pub fn user_action(&self) -> &str {
        match self.not_applicable {
            Some(na) => na.user_action,
            None => met_user_action(self.id).unwrap_or(""),
        }
    }

    /// Did any of its cases fail?
    pub fn failed(&self) -> bool {
        self.cases.iter().any(|r| CaseVerdict::of(r).is_failure())
    }
}

/// The records grouped by requirement, in the document's order (CR1.1,
/// CR1.1 RE1, …, CR1.6, NDR1.6, NDR1.6 RE1, …, CR1.14); each
/// requirement's cases in the order given.
pub fn requirements(records: &[Record]) -> Vec<Requirement<'_>> {
    let mut rows: Vec<Requirement> = Vec::new();
    for r in records {
        match rows.iter_mut().find(|row| row.id == r.case.requirement) {
            Some(row) => row.cases.push(r),
            None => rows.push(Requirement {
                id: r.case.requirement,
                title: requirement_title(r.case.requirement).unwrap_or(r.case.title),
                status: r.case.verdict,
                not_applicable: r.case.not_applicable.as_ref(),
                cases: vec![r],
            }),
        }
    }
    rows.sort_by_key(|row| document_order(row.id));
    rows
}

/// The requirement's own name in IEC 62443-4-2 (a case's title names what
/// that case covers, e.g. "Account management (create)"); `None` for an ID
/// outside FR 1, which then takes its first case's title.
pub fn requirement_title(id: &str) -> Option<&'static str> {
    Some(match id {
        "CR1.1" => "Human user identification and authentication",
        "CR1.1 RE1" => "Unique identification and authentication",
        "CR1.1 RE2" => "Multifactor authentication for all interfaces",
        "CR1.2" => "Software process and device identification and authentication",
        "CR1.3" => "Account management",
        "CR1.4" => "Identifier management",
        "CR1.5" => "Authenticator management",
        "CR1.6" | "NDR1.6" => "Wireless access management",
        "NDR1.6 RE1" => "Unique identification and authentication (wireless)",
        "CR1.7" => "Strength of password-based authentication",
        "CR1.7 RE1" => "Password generation and lifetime restrictions for human users",
        "CR1.8" => "Public key infrastructure certificates",
        "CR1.9" => "Strength of public key-based authentication",
        "CR1.9 RE1" => "Hardware security for public key-based authentication",
        "CR1.10" => "Authenticator feedback",
        "CR1.11" => "Unsuccessful login attempts",
        "CR1.12" => "System use notification",
        "CR1.13" | "NDR1.13" => "Access via untrusted networks",
        "NDR1.13 RE1" => "Explicit access request approval",
        "CR1.14" => "Strength of symmetric key-based authentication",
        _ => return None,
    })
}

/// For a Met requirement, what the platform's evidence does not cover and
/// a product maker must do: the suite shows the mechanism works on this
/// image; the product's own accounts, policies and services are theirs.
fn met_user_action(id: &str) -> Option<&'static str> {
    Some(match id {
        "CR1.1" => "List the human accounts the product needs; give each person their own account and keep every login service on PAM; run this suite on the product image",
        "CR1.1 RE1" => "Create accounts only with the system's tools (adduser/useradd), which refuse a name or UID already in use; never share an account between people",
        "CR1.3" => "Define who may create, enable, disable and remove accounts; for a device in a larger system, connect a central directory (e.g. LDAP) where needed",
        "CR1.4" => "Keep to the system's account tools for identifiers; nothing more is needed for local accounts",
        "CR1.5" => "Define the policy for initial and changed authenticators (passwords, certificates, one-time codes) and keep their stores closed to users, including backups and keys the product adds; change every default password (the security image's root password is published) or force its change at the first login (chage -d 0, Isar's force-passwd-change)",
        "CR1.7" => "Set the password policy the product needs in the quality module's configuration (pam_passwdqc min=) and document it in the user manual",
        "CR1.7 RE1" => "Set password lifetimes (chage, /etc/login.defs) to the product's policy",
        "CR1.8" => "Run the product's PKI (CA, enrolment, revocation) on the platform's OpenSSL; keep the trust anchors the product relies on under configuration control",
        "CR1.9" => "Validate certificates (chain, validity, revocation) in the product's own services too, map certificate identities to accounts one to one, and keep private keys readable only by their owner",
        "CR1.10" => "For any other authentication method the product adds, show the same: no echo of the secret, the same answer and timing for an unknown user and a wrong password",
        "CR1.11" => "Keep the lockout (pam_faillock) and remote ban (fail2ban) settings, or set the product's own limits, for every login service",
        _ => return None,
    })
}

/// Sort key of a requirement ID: its number, then its RE, CR before NDR.
/// An ID of another shape sorts last, in its given order.
pub fn document_order(id: &str) -> (u32, u32, u32) {
    let (network, rest) = match id.strip_prefix("NDR") {
        Some(rest) => (1, rest),
        None => (0, id.strip_prefix("CR").unwrap_or(id)),
    };
    let (number, enhancement) = match rest.split_once(" RE") {
        Some((n, re)) => (n, re.trim().parse().unwrap_or(u32::MAX)),
        None => (rest, 0),
    };
    let number = number
        .trim()
        .strip_prefix("1.")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    (number, enhancement, network)
}

/// The run around the records: when, how long, which suite, how called.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub started: SystemTime,
    pub duration: Duration,
    pub suite_version: &'static str,
    pub command_line: String,
}

/// The checks that depend on the clock, over every case of a run: made,
/// or not made and why (never a failure; a slow target or the schedule).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TimedChecks {
    pub made: usize,
    /// `TC_ID: check: why`, for each check not made.
    pub not_made: Vec<String>,
}

impl TimedChecks {
    pub fn of(records: &[Record]) -> Self {
        let mut checks = TimedChecks::default();
        for r in records {
            for (check, not_made) in timed_checks(&r.evidence) {
                match not_made {
                    None => checks.made += 1,
                    Some(why) => checks
                        .not_made
                        .push(format!("{}: {check}: {why}", r.case.id)),
                }
            }
        }
        checks
    }

    /// `timed checks made: N of M`.
    pub fn summary(&self) -> String {
        format!(
            "timed checks made: {} of {}",
            self.made,
            self.made + self.not_made.len()
        )
    }
}

/// Everything a report shows.
pub struct ReportData<'a> {
    pub records: &'a [Record],
    pub identity: &'a Identity,
    pub run: &'a RunFacts,
}

impl ReportData<'_> {
    /// The failed cases, in catalog order.
    pub fn failures(&self) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(|r| CaseVerdict::of(r).is_failure())
    }

    /// One sentence under the title: target, run and counts.
    pub fn headline(&self) -> String {
        let (passed, failed, other) = self.counts();
        format!(
            "Target: {} ({}). Run {} UTC, {:.0} s, cip-iec-fr1-tests {}. \
             {passed} passed, {failed} failed, {other} NA or skipped.",
            self.identity.pretty_name(),
            self.identity.architecture,
            utc_text(self.run.started),
            self.run.duration.as_secs_f64(),
            self.run.suite_version
        )
    }

    /// The summary's title: no failure, or how many.
    pub fn summary_title(&self) -> String {
        match self.failures().count() {
            0 => "No failure: every selected Met test case passed.".to_owned(),
            n => format!("FAILED: {n} test case(s) did not demonstrate their requirement"),
        }
    }

    /// The run and the target as (fact, value) rows.
    pub fn facts(&self) -> Vec<(String, String)> {
        let id = self.identity;
        let mut facts: Vec<(String, String)> = vec![
            ("Run started (UTC)".into(), utc_text(self.run.started)),
            (
                "Duration".into(),
                format!("{:.1} s", self.run.duration.as_secs_f64()),
            ),
            (
                "Suite version".into(),
                format!("cip-iec-fr1-tests {}", self.run.suite_version),
            ),
            ("Command line".into(), self.run.command_line.clone()),
            ("Timed checks".into(), {
                let timed = TimedChecks::of(self.records);
                let mut text = timed.summary();
                if !timed.not_made.is_empty() {
                    text.push_str(&format!(" (not made: {})", timed.not_made.join("; ")));
                }
                text
            }),
            ("Kernel".into(), id.kernel.clone()),
            ("Architecture".into(), id.architecture.clone()),
        ];
        facts.extend(
            id.os_release
                .iter()
                .map(|(k, v)| (format!("os-release {k}"), v.clone())),
        );
        facts
    }

    /// (passed, failed or not demonstrated, NA or skipped) counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for r in self.records {
            match CaseVerdict::of(r) {
                CaseVerdict::Passed => counts.0 += 1,
                v if v.is_failure() => counts.1 += 1,
                _ => counts.2 += 1,
            }
        }
        counts
    }
}

/// A case's failure (or skip) message on one line, for the summary.
pub fn one_line_reason(record: &Record) -> String {
    let text = match &record.outcome {
        Outcome::Passed => "",
        Outcome::Failed(msg) | Outcome::NotDemonstrated(msg) | Outcome::Skipped(msg) => {
            msg.as_str()
        }
    };
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    first.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Wrapped source text (NA reasons, user actions) on one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use harness::{Case, NotApplicable};

    fn body(_: &harness::Evidence) -> anyhow::Result<()> {
        Ok(())
    }

    pub fn met(id: &'static str, requirement: &'static str, outcome: Outcome) -> Record {
        Record {
            case: Case::met(id, requirement, "A title", "proves", body),
            outcome,
            duration: Duration::from_millis(1500),
            evidence: format!("{id} evidence <b>&\n"),
        }
    }

    pub fn na(requirement: &'static str) -> Record {
        Record {
            case: Case::not_applicable(
                requirement,
                requirement,
                "NA title",
                NotApplicable {
                    reason: "not the platform's | job",
                    user_action: "do it\n in the product",
                },
            ),
            outcome: Outcome::Skipped("NA".to_owned()),
            duration: Duration::ZERO,
            evidence: String::new(),
        }
    }

    /// A small run: two cases of CR1.1 (one failed), an NA row listed
    /// before a Met one, an RE and an NDR row.
    pub fn sample() -> Vec<Record> {
        vec![
            met("TC_CR1.1_1", "CR1.1", Outcome::Passed),
            met(
                "TC_CR1.1_2",
                "CR1.1",
                Outcome::Failed("ssh: expected refused, got a shell as fr1-x\nmore".to_owned()),
            ),
            met("TC_CR1.11_1", "CR1.11", Outcome::Passed),
            met("TC_CR1.1-RE1_1", "CR1.1 RE1", Outcome::Passed),
            na("CR1.2"),
            na("NDR1.6"),
            na("CR1.6"),
        ]
    }

    /// Render the [`sample`] run with `render` (an unknown target).
    pub fn render_sample(render: fn(&ReportData) -> String) -> String {
        let records = sample();
        let identity = Identity::default();
        let run = RunFacts {
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_secs(3),
            suite_version: "0.1.0",
            command_line: "cip-iec-fr1-tests --report <x>.html".to_owned(),
        };
        render(&ReportData {
            records: &records,
            identity: &identity,
            run: &run,
        })
    }

    #[test]
    fn requirements_follow_the_document_order_with_their_cases() {
        let records = sample();
        let rows = requirements(&records);
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            ["CR1.1", "CR1.1 RE1", "CR1.2", "CR1.6", "NDR1.6", "CR1.11"]
        );
        assert_eq!(rows[0].cases.len(), 2);
        assert!(rows[0].failed());
        assert_eq!(rows[0].status_text(), "Met; NOT demonstrated by this run");
        assert_eq!(rows[1].status_text(), "Met");
        assert_eq!(rows[2].status_text(), "NA");
        assert!(!rows[1].failed());
        assert_eq!(rows[2].status, Verdict::NotApplicable);
        assert!(rows[2].not_applicable.is_some());
        assert_eq!(rows[2].user_action(), "do it\n in the product");
        // Met rows carry what the product maker still does.
        assert!(rows[0].user_action().contains("own account"));
        assert!(rows[5].user_action().contains("pam_faillock"));
    }

    #[test]
    fn document_order_puts_enhancements_and_network_rows_after_their_requirement() {
        let mut ids = [
            "CR1.14",
            "NDR1.13 RE1",
            "CR1.9 RE1",
            "NDR1.13",
            "CR1.13",
            "CR1.9",
            "CR1.10",
        ];
        ids.sort_by_key(|id| document_order(id));
        assert_eq!(
            ids,
            [
                "CR1.9",
                "CR1.9 RE1",
                "CR1.10",
                "CR1.13",
                "NDR1.13",
                "NDR1.13 RE1",
                "CR1.14"
            ]
        );
    }

    #[test]
    fn verdicts_are_worded_for_the_assessor() {
        let records = sample();
        let words: Vec<_> = records.iter().map(|r| CaseVerdict::of(r).word()).collect();
        assert_eq!(words[..2], ["passed", "failed"]);
        assert_eq!(words[4], "NA");
        let missing = met(
            "TC_CR1.11_3",
            "CR1.11",
            Outcome::NotDemonstrated("CR1.11 not demonstrated: fail2ban is missing".to_owned()),
        );
        assert_eq!(CaseVerdict::of(&missing), CaseVerdict::NotDemonstrated);
        assert_eq!(
            one_line_reason(&records[1]),
            "ssh: expected refused, got a shell as fr1-x"
        );
    }
}
