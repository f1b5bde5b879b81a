//! Lines that let some accounts (a group, a UID range) or origins through
//! a phase of a service's stack without the module a requirement depends
//! on: a `pam_succeed_if … user ingroup G` that jumps over pam_faillock,
//! a `pam_access` that ends the stack before the second factor, a
//! substack that does either.
//!
//! The stack is played as libpam plays it ([`crate::facts::pam_play`]) for
//! an account the requirement should stop: the required modules fail (the
//! account is locked, expired, the code is wrong), every authenticator
//! succeeds (the right password), and every other module is free to
//! succeed, fail or be ignored. Each way that still ends in success is an
//! [`Exemption`]: the lines that took it past the required modules, and
//! who meets their condition. A test case then gives a throw-away account
//! that condition and runs the requirement's own flow for it.

use crate::facts::pam::PamLine;
use crate::facts::pam_grants::{
    condition_of, only_root, Condition, AUTHENTICATORS, NON_AUTHENTICATORS,
};
use crate::facts::pam_play::{self, Returned};
use anyhow::{Context, Result};

/// A way through a phase without the module a requirement depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub service: String,
    /// `auth`, `account`, `password`.
    pub kind: String,
    /// The modules it gets past (`pam_faillock.so`).
    pub skipped: Vec<String>,
    /// The lines whose success took the stack past them; none when the
    /// required module's failure does not stop the stack at all.
    pub lines: Vec<PamLine>,
    /// Who meets the lines' conditions; [`Condition::Anyone`] when no
    /// condition is needed.
    pub conditions: Vec<Condition>,
}

impl Exemption {
    /// Only root gets past it: by design where root needs nothing to
    /// become anyone (su's pam_rootok), not in programs that run as root
    /// for every applicant (`login`, `sshd`).
    pub fn only_root(&self) -> bool {
        only_root(&self.service, &self.conditions)
    }

    /// The group a throw-away account must be in to meet the condition,
    /// where that is all it takes.
    pub fn group(&self) -> Option<&str> {
        match self.conditions.as_slice() {
            [Condition::TargetInGroup(g)] => Some(g),
            _ => None,
        }
    }

    /// For the evidence: service, phase, lines, who.
    pub fn describe(&self) -> String {
        let who: Vec<String> = self.conditions.iter().map(ToString::to_string).collect();
        let how = if self.lines.is_empty() {
            format!(
                "a failure of {} does not stop the stack",
                self.skipped.join(", ")
            )
        } else {
            self.lines
                .iter()
                .map(PamLine::location)
                .collect::<Vec<_>>()
                .join(" + ")
        };
        format!(
            "PAM service {} ({}): {how} lets {} through without {}",
            self.service,
            self.kind,
            who.join(" and "),
            self.skipped.join(", ")
        )
    }
}

/// The ways through `stack` (the `kind` phase of `service`) that end in
/// success while every line of `modules` fails; none when no line of
/// `modules` is in the stack (the requirement's own test shows that).
pub fn exemptions_from(
    service: &str,
    kind: &str,
    stack: &[PamLine],
    modules: &[&str],
) -> Result<Vec<Exemption>> {
    let required = |l: &PamLine| modules.contains(&l.module.as_str());
    if !stack.iter().any(required) {
        return Ok(Vec::new());
    }
    let ways = pam_play::every_way(stack, |l| choices(l, modules)).with_context(|| {
        format!("the {kind} stack of PAM service {service}: its exemptions are not examined")
    })?;
    let mut found: Vec<Exemption> = Vec::new();
    for (_, played) in ways.into_iter().filter(|(_, p)| p.success) {
        let required_ran: Vec<usize> = played
            .ran
            .iter()
            .copied()
            .filter(|&i| required(&stack[i]))
            .collect();
        let lines: Vec<PamLine> = if required_ran.is_empty() {
            played
                .deciding
                .iter()
                .map(|&i| stack[i].clone())
                .filter(|l| !AUTHENTICATORS.contains(&l.module.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        let mut conditions: Vec<Condition> = lines.iter().map(condition_of).collect();
        if conditions.is_empty() {
            conditions.push(Condition::Anyone);
        }
        conditions.sort();
        conditions.dedup();
        let exemption = Exemption {
            service: service.to_owned(),
            kind: kind.to_owned(),
            skipped: modules.iter().map(|m| (*m).to_owned()).collect(),
            lines,
            conditions,
        };
        if !found.contains(&exemption) {
            found.push(exemption);
        }
    }
    Ok(found)
}

/// What a line can return for an account the requirement should stop,
/// giving the right password.
fn choices(line: &PamLine, required: &[&str]) -> Vec<Returned> {
    use Returned::*;
    if line.module_missing {
        // libpam: PAM_MODULE_UNKNOWN, whatever the module would do.
        return vec![Failure];
    }
    let module = line.module.as_str();
    match module {
        m if required.contains(&m) => vec![Failure],
        m if AUTHENTICATORS.contains(&m) => vec![Success],
        "pam_permit.so" => vec![Success],
        "pam_deny.so" => vec![Failure],
        m if NON_AUTHENTICATORS.contains(&m) => vec![Success, Ignore, Failure],
        // A module the suite does not know may decide anything.
        _ => vec![Success, Failure],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::pam;

    use pam::tests::auth_stack_of as stack_of;

    use pam::tests::CIP_COMMON_AUTH;

    const LOCKOUT: [&str; 1] = ["pam_faillock.so"];

    #[test]
    fn cips_stack_exempts_nobody_from_the_lockout() {
        let stack = stack_of(&[("login", CIP_COMMON_AUTH)]);
        assert_eq!(
            exemptions_from("login", "auth", &stack, &LOCKOUT).unwrap(),
            vec![]
        );
    }

    #[test]
    fn su_exempts_only_root() {
        let text = format!("auth sufficient pam_rootok.so\n{CIP_COMMON_AUTH}");
        let stack = stack_of(&[("su", &text)]);
        let found = exemptions_from("su", "auth", &stack, &LOCKOUT).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].only_root());
    }

    #[test]
    fn a_group_jump_over_preauth_is_an_exemption_for_the_group() {
        let text = format!(
            "auth [success=1 default=ignore] pam_succeed_if.so quiet user ingroup maintainers\n{CIP_COMMON_AUTH}"
        );
        let stack = stack_of(&[("login", &text)]);
        let found = exemptions_from("login", "auth", &stack, &LOCKOUT).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].group(), Some("maintainers"));
        assert_eq!(found[0].lines.len(), 1);
        assert_eq!(found[0].lines[0].module, "pam_succeed_if.so");
    }

    #[test]
    fn an_exemption_behind_a_substack_is_found() {
        // The jump of 1 skips the whole substack, preauth included.
        let stack = stack_of(&[
            (
                "login",
                "auth [success=1 default=ignore] pam_succeed_if.so user ingroup field\n\
                 auth substack lockout\n\
                 auth [success=1 default=ignore] pam_unix.so\n\
                 auth requisite pam_deny.so\n\
                 auth required pam_permit.so\n",
            ),
            ("lockout", "auth required pam_faillock.so preauth\n"),
        ]);
        let found = exemptions_from("login", "auth", &stack, &LOCKOUT).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].group(), Some("field"));
    }

    #[test]
    fn a_lockout_that_does_not_stop_the_stack_exempts_anyone() {
        let text = CIP_COMMON_AUTH.replace(
            "auth required pam_faillock.so preauth",
            "auth optional pam_faillock.so preauth",
        );
        let stack = stack_of(&[("login", &text)]);
        let found = exemptions_from("login", "auth", &stack, &LOCKOUT).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].conditions, vec![Condition::Anyone]);
        assert!(found[0].lines.is_empty());
    }

    #[test]
    fn a_stack_without_the_module_has_no_exemption_to_report() {
        let stack = stack_of(&[("login", "auth required pam_unix.so\n")]);
        assert_eq!(
            exemptions_from("login", "auth", &stack, &LOCKOUT).unwrap(),
            vec![]
        );
    }
}
