//! Trying a [`Grant`] for real: a throw-away account is put in the
//! condition the grant names (a member of its group, a caller in its
//! group), then logs in with a wrong password through the program that
//! uses the PAM service (`login`, `su -`, the device's sshd).

use crate::facts::pam_grants::{Condition, Grant};
use crate::flows::device_sshd::RemoteLogins;
use crate::flows::dialogue::AuthOutcome;
use crate::flows::entry_points::{EntryPoint, Flow};
use crate::runtime::password::strong_password;
use crate::{Evidence, TestUser};
use anyhow::Result;
use nix::unistd::Group;

/// What came of trying a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trial {
    /// A wrong password got past authentication: the grant is real.
    GotIn { flow: String },
    /// The condition was arranged, and the wrong password was refused.
    Refused { flow: String },
    /// The suite cannot try it (no flow for the service, a condition it
    /// cannot arrange); the configuration is the evidence.
    NotTried(String),
    /// Nobody meets the condition (it names a group that does not exist).
    Unmeetable(String),
}

/// Try `grant` once. `remote` is the device's sshd, for grants of the
/// `sshd` service (`None`: the image has no sshd to try).
pub fn try_grant(ev: &Evidence, grant: &Grant, remote: Option<&RemoteLogins>) -> Result<Trial> {
    let entry = match grant.service.as_str() {
        "login" => EntryPoint::Login,
        // `su -` is PAM service su-l, which includes su on Debian.
        "su-l" => EntryPoint::Su,
        "sshd" if remote.is_some() => EntryPoint::Ssh,
        "sshd" => return Ok(Trial::NotTried("the device's sshd is not reachable".into())),
        other => {
            return Ok(Trial::NotTried(format!(
                "the suite drives no program of PAM service {other}"
            )))
        }
    };
    let target = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let mut arranged = true;
    for condition in &grant.conditions {
        match condition {
            Condition::Anyone | Condition::CallerIsRoot => {}
            Condition::TargetInGroup(group) => {
                if !group_exists(group)? {
                    return Ok(Trial::Unmeetable(format!("group {group} does not exist")));
                }
                target.join_group(group)?;
                ev.note(format!("{} joins group {group}", target.name()));
            }
            Condition::CallerInGroup { group, by_uid } => {
                if entry != EntryPoint::Su {
                    return Ok(Trial::NotTried(format!(
                        "pam_wheel in PAM service {} asks about a caller the suite does not start",
                        grant.service
                    )));
                }
                if !by_uid {
                    return Ok(Trial::NotTried(
                        "pam_wheel without use_uid looks the caller up in the terminal's \
                         login record, which the suite's su has none of"
                            .into(),
                    ));
                }
                let Some(group) = wheel_group(group)? else {
                    return Ok(Trial::Unmeetable(format!("group {group} does not exist")));
                };
                caller.join_group(&group)?;
                ev.note(format!(
                    "{} (the caller) joins group {group}",
                    caller.name()
                ));
            }
            Condition::Other(what) => {
                ev.note(format!("not arranged: {what}"));
                arranged = false;
            }
        }
    }
    let wrong = strong_password()?;
    let attempt = Flow::at(entry, &caller, remote)?.password(ev, target.name(), &wrong)?;
    target.clear_failures()?;
    Ok(match attempt.outcome {
        AuthOutcome::Shell { .. } | AuthOutcome::ChangeRequired => {
            Trial::GotIn { flow: attempt.flow }
        }
        AuthOutcome::Refused { .. } if arranged => Trial::Refused { flow: attempt.flow },
        AuthOutcome::Refused { .. } => Trial::NotTried(format!(
            "{} refused the wrong password, but the condition could not be arranged",
            attempt.flow
        )),
    })
}

fn group_exists(name: &str) -> Result<bool> {
    Ok(Group::from_name(name)?.is_some())
}

/// The group pam_wheel checks: the one named, or without `group=` the
/// `wheel` group, and where there is none, the group of GID 0.
fn wheel_group(named: &str) -> Result<Option<String>> {
    if group_exists(named)? {
        return Ok(Some(named.to_owned()));
    }
    if named != "wheel" {
        return Ok(None);
    }
    Ok(Group::from_gid(nix::unistd::Gid::from_raw(0))?.map(|g| g.name))
}
