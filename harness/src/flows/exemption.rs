//! PAM lines that spare some accounts a requirement (see
//! [`crate::facts::pam_exemptions`]), found in the services a case drives
//! and exercised: a throw-away account that meets the line's condition
//! (a member of its group) is put in the state the requirement must stop
//! (locked, expired, …) and tries the right password through that service.
//! It must be refused. A condition the suite cannot give an account (an
//! origin other than its own, a module it does not know) is judged from
//! the stack: the case fails, naming the line.

use crate::facts::pam;
use crate::facts::pam_exemptions::{exemptions_from, Exemption};
use crate::flows::dialogue::{Attempt, AuthOutcome};
use crate::{Evidence, TestUser};
use anyhow::Result;

/// The exemptions from `modules` in the `kind` phase of each service,
/// each noted in the evidence; root's way through su (pam_rootok) is by
/// design and left out.
pub fn find(
    ev: &Evidence,
    services: &[&str],
    kind: &str,
    modules: &[&str],
) -> Result<Vec<Exemption>> {
    let mut found: Vec<Exemption> = Vec::new();
    for service in services {
        let stack = pam::stack(service, kind)?;
        for exemption in exemptions_from(service, kind, &stack, modules)? {
            if exemption.only_root() {
                ev.note(format!(
                    "by design: {} (root needs no password to become anyone)",
                    exemption.describe()
                ));
            } else {
                ev.note(format!("exemption: {}", exemption.describe()));
                found.push(exemption);
            }
        }
    }
    if found.is_empty() {
        ev.ok(format!(
            "no line of the {kind} stacks of {} gets an account past {}",
            services.join(", "),
            modules.join(", ")
        ));
    }
    Ok(found)
}

/// A throw-away member of the exemption's group, brought into the state
/// the requirement must stop by `prepare` (`what` says which), must be
/// refused the right password by `attempt` (the exemption's service).
/// Returns the violation, if any.
pub fn exercise(
    ev: &Evidence,
    exemption: &Exemption,
    what: &str,
    prepare: impl FnOnce(&TestUser) -> Result<()>,
    attempt: impl Fn(&TestUser, &str) -> Result<Attempt>,
) -> Result<Vec<String>> {
    let Some(group) = exemption.group() else {
        return Ok(vec![format!(
            "{} (judged from the stack, not tried: the suite gives no throw-away account, and sends no traffic from any address but its own, that meets it)",
            exemption.describe()
        )]);
    };
    if nix::unistd::Group::from_name(group)?.is_none() {
        return Ok(vec![format!(
            "{} (group {group} does not exist today: any account put in it later is spared)",
            exemption.describe()
        )]);
    }
    let member = TestUser::create(ev)?;
    member.join_group(group)?;
    ev.step(format!(
        "{}, a member of {group}, {what}: the right password with {}",
        member.name(),
        exemption.service
    ));
    prepare(&member)?;
    Ok(match attempt(&member, member.password())?.outcome {
        AuthOutcome::Shell { .. } => vec![format!(
            "{}: exercised, {} (in {group}, {what}) got in with the right password",
            exemption.describe(),
            member.name()
        )],
        _ => {
            ev.ok(format!(
                "exercised: {} (in {group}, {what}) is refused all the same; the line does not spare it",
                member.name()
            ));
            Vec::new()
        }
    })
}
