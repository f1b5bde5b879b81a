//! What a test case is: the catalog row (ID, requirement, title, verdict) and
//! the body that produces the evidence.

use crate::Evidence;
use std::fmt;

/// The assessment's verdict for the requirement a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    NotApplicable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "Met",
            Verdict::NotApplicable => "NA",
        })
    }
}

/// Why a requirement is NA and what the product maker has to do instead,
/// quoted from the FR-1 assessment document.
#[derive(Debug, Clone)]
pub struct NotApplicable {
    pub reason: &'static str,
    pub user_action: &'static str,
}

/// The body of a Met test case. It returns `Ok(())` when every acceptance and
/// every refusal held; an error otherwise (or [`Skip`] when a prerequisite
/// is missing).
pub type Body = fn(&Evidence) -> anyhow::Result<()>;

/// One catalog row, as a runnable trial.
#[derive(Debug, Clone)]
pub struct Case {
    /// Test-case ID, used as the trial name (`TC_CR1.3_2`, or `CR1.2` for NA rows).
    pub id: &'static str,
    /// Requirement ID (`CR1.3`, `CR1.1 RE1`, `NDR1.6`).
    pub requirement: &'static str,
    /// Requirement title from IEC 62443-4-2.
    pub title: &'static str,
    pub verdict: Verdict,
    /// What the case proves, in one sentence (catalog "must prove").
    pub proves: &'static str,
    pub body: Option<Body>,
    pub not_applicable: Option<NotApplicable>,
    /// Shared system resources the case changes or depends on (a PAM file,
    /// "faillock", "fail2ban", …). Cases naming the same resource never run
    /// at the same time; all others may run in parallel.
    pub resources: &'static [&'static str],
    /// The case must run with no other case at the same time (timing
    /// measurements, for example).
    pub alone: bool,
}

impl Case {
    /// A Met requirement's test case.
    pub const fn met(
        id: &'static str,
        requirement: &'static str,
        title: &'static str,
        proves: &'static str,
        body: Body,
    ) -> Self {
        Case {
            id,
            requirement,
            title,
            verdict: Verdict::Met,
            proves,
            body: Some(body),
            not_applicable: None,
            resources: &[],
            alone: false,
        }
    }

    /// An NA requirement: reported as skipped with its reason and user action.
    /// A [`Case::with_probe`] body may record informational facts first.
    pub const fn not_applicable(
        id: &'static str,
        requirement: &'static str,
        title: &'static str,
        na: NotApplicable,
    ) -> Self {
        Case {
            id,
            requirement,
            title,
            verdict: Verdict::NotApplicable,
            proves: "",
            body: None,
            not_applicable: Some(na),
            resources: &[],
            alone: false,
        }
    }

    /// Declare the shared resources this case changes or depends on.
    pub const fn uses(mut self, resources: &'static [&'static str]) -> Self {
        self.resources = resources;
        self
    }

    /// Run this case with no other case at the same time.
    pub const fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// For an NA requirement: a body that only records facts in the
    /// evidence (is a banner configured, is a TPM present). Its result never
    /// changes the verdict, which stays "skipped: NA".
    pub const fn with_probe(mut self, probe: Body) -> Self {
        self.body = Some(probe);
        self
    }
}

/// Returned (as an error) by a body whose prerequisite is missing, so the
/// runner reports a skip with this reason instead of a failure. Like LTP's
/// TCONF: the image cannot run the check, which is not the same as failing it.
#[derive(Debug)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped: {}", self.0)
    }
}

impl std::error::Error for Skip {}

/// Skip the current case with a reason, e.g. `return skip("sshd not installed (openssh-server)")`.
pub fn skip<T>(reason: impl Into<String>) -> anyhow::Result<T> {
    Err(Skip(reason.into()).into())
}
