//! PAM lines that can let someone through a service's `auth` stack without
//! an authenticator: a `sufficient` pam_wheel `trust`, a pam_succeed_if
//! that jumps over pam_unix, a pam_permit, a pam_rootok in a program that
//! runs as root for everybody, …
//!
//! A stack is read as libpam runs it ([`crate::facts::pam::stack`]) and then
//! played through ([`crate::facts::pam_play`]) with every module that checks an authenticator (pam_unix,
//! a second factor, a directory service) *failing*, as it does for a wrong
//! password, and every other module free to succeed, fail or be ignored.
//! Each way through that still ends in PAM_SUCCESS is a [`Grant`]: the
//! lines whose success made it, and the condition under which they succeed
//! (a group, the caller being root, nothing at all). A test case then
//! arranges that condition for a throw-away account and tries a wrong
//! password for real.

use crate::facts::pam::{self, PamLine, PAM_DIR};
use crate::facts::pam_play::{self, Returned};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

/// Modules that check something the user has or knows. With a wrong
/// password (and no valid code, key or token) they fail.
pub(crate) const AUTHENTICATORS: [&str; 20] = [
    "pam_unix.so",
    "pam_google_authenticator.so",
    "pam_oath.so",
    "pam_u2f.so",
    "pam_yubico.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_radius_auth.so",
    "pam_tacplus.so",
    "pam_userdb.so",
    "pam_pwdfile.so",
    "pam_pkcs11.so",
    "pam_p11.so",
    "pam_ssh_agent_auth.so",
    "pam_fprintd.so",
    "pam_unix2.so",
    "pam_sm3.so",
    "pam_tally2.so",
];

/// Modules that decide from the account, the time, the terminal or the
/// caller, never from an authenticator. Anything else that is not an
/// [`AUTHENTICATORS`] entry is taken to check an authenticator (a custom
/// module), and said so in the evidence.
pub(crate) const NON_AUTHENTICATORS: [&str; 28] = [
    "pam_permit.so",
    "pam_deny.so",
    "pam_rootok.so",
    "pam_wheel.so",
    "pam_succeed_if.so",
    "pam_localuser.so",
    "pam_listfile.so",
    "pam_exec.so",
    "pam_access.so",
    "pam_time.so",
    "pam_group.so",
    "pam_env.so",
    "pam_nologin.so",
    "pam_securetty.so",
    "pam_faildelay.so",
    "pam_faillock.so",
    "pam_shells.so",
    "pam_echo.so",
    "pam_motd.so",
    "pam_keyinit.so",
    "pam_mail.so",
    "pam_limits.so",
    "pam_lastlog.so",
    "pam_loginuid.so",
    "pam_selinux.so",
    "pam_systemd.so",
    "pam_cap.so",
    "pam_warn.so",
];

/// Who gets through a [`Grant`] without an authenticator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Everybody (pam_permit, pam_localuser for a local account).
    Anyone,
    /// A program that runs as root (pam_rootok): by design in su, chfn,
    /// runuser (root needs no password to become anyone), a hole in
    /// `login` and `sshd`, which run as root for every applicant.
    CallerIsRoot,
    /// The account being logged in to is in this group (pam_succeed_if
    /// `user ingroup`).
    TargetInGroup(String),
    /// The account asking is in this group (pam_wheel `trust`); `by_uid`:
    /// the module takes the caller from the real UID (`use_uid`), not from
    /// the terminal's login record.
    CallerInGroup { group: String, by_uid: bool },
    /// Something else the module checks (its line says what).
    Other(String),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Anyone => write!(f, "anyone"),
            Condition::CallerIsRoot => write!(f, "a caller running as root"),
            Condition::TargetInGroup(g) => write!(f, "an account in group {g}"),
            Condition::CallerInGroup { group, by_uid } => write!(
                f,
                "a caller in group {group} ({})",
                if *by_uid {
                    "by its real UID"
                } else {
                    "by the terminal's login record"
                }
            ),
            Condition::Other(what) => write!(f, "whoever {what}"),
        }
    }
}

/// Whether `conditions` let only root through `service`: by design where
/// root needs nothing to become anyone (su's pam_rootok), not in programs
/// that run as root for every applicant (console `login`, `sshd`).
pub(crate) fn only_root(service: &str, conditions: &[Condition]) -> bool {
    conditions.contains(&Condition::CallerIsRoot) && !matches!(service, "login" | "sshd")
}

/// A way through a service's auth stack without an authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub service: String,
    /// The lines whose success ended the stack early or jumped over the
    /// authenticator (or, with no such line, the whole stack's successes).
    pub lines: Vec<PamLine>,
    pub conditions: Vec<Condition>,
}

impl Grant {
    /// Only root gets through: root needs no password to become anyone, so
    /// this is by design, except in programs that run as root on behalf of
    /// an applicant who is not (console `login`, `sshd`).
    pub fn only_root(&self) -> bool {
        only_root(&self.service, &self.conditions)
    }

    /// For the evidence: service, lines, condition.
    pub fn describe(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(PamLine::location).collect();
        let who: Vec<String> = self.conditions.iter().map(ToString::to_string).collect();
        format!(
            "service {}: {} lets {} through without an authenticator",
            self.service,
            lines.join(" + "),
            if who.is_empty() {
                "anyone".to_owned()
            } else {
                who.join(" and ")
            }
        )
    }
}

/// What was read, for the evidence.
#[derive(Debug, Default)]
pub struct Survey {
    /// Services whose auth stack was read.
    pub services: Vec<String>,
    pub grants: Vec<Grant>,
    /// Modules neither known as authenticators nor as non-authenticators:
    /// taken to check an authenticator.
    pub assumed_authenticators: BTreeSet<String>,
}

/// Every service file in /etc/pam.d, each auth stack played through.
pub fn survey() -> Result<Survey> {
    survey_in(Path::new(PAM_DIR))
}

/// [`survey`] of the PAM files in `dir`.
pub fn survey_in(dir: &Path) -> Result<Survey> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Editor and package-manager leftovers are not services libpam
        // would open; the common-* files are only ever included.
        .filter(|n| {
            !n.starts_with("common-")
                && !n.ends_with('~')
                && !n.contains(".dpkg-")
                && !n.ends_with(".ucf-dist")
        })
        .collect();
    names.sort();
    let mut out = Survey::default();
    for service in names {
        let stack = pam::stack_in(dir, &service, "auth")
            .with_context(|| format!("reading the auth stack of PAM service {service}"))?;
        for line in stack.iter().filter(|l| !l.is_substack()) {
            if !AUTHENTICATORS.contains(&line.module.as_str())
                && !NON_AUTHENTICATORS.contains(&line.module.as_str())
            {
                out.assumed_authenticators.insert(line.module.clone());
            }
        }
        out.grants.extend(grants_of(&service, &stack)?);
        out.services.push(service);
    }
    // `su -` runs PAM service su-l, which includes su: a grant found in
    // both is one grant, tried through su-l.
    let through_su_l: Vec<(Vec<PamLine>, Vec<Condition>)> = out
        .grants
        .iter()
        .filter(|g| g.service == "su-l")
        .map(|g| (g.lines.clone(), g.conditions.clone()))
        .collect();
    out.grants.retain(|g| {
        g.service != "su"
            || !through_su_l
                .iter()
                .any(|(l, c)| *l == g.lines && *c == g.conditions)
    });
    Ok(out)
}

/// The ways through `stack` without an authenticator, one per distinct
/// set of deciding lines. A stack too large to play through is an error,
/// never "no grant".
pub fn grants_of(service: &str, stack: &[PamLine]) -> Result<Vec<Grant>> {
    let ways = pam_play::every_way(stack, possible_returns).with_context(|| {
        format!("the auth stack of PAM service {service}: its grants are not examined")
    })?;
    let mut found: Vec<Vec<usize>> = Vec::new();
    for (_, played) in ways {
        if played.success && !found.contains(&played.deciding) {
            found.push(played.deciding);
        }
    }
    Ok(found
        .into_iter()
        .map(|lines| grant(service, stack, &lines))
        .collect())
}

fn grant(service: &str, stack: &[PamLine], deciding: &[usize]) -> Grant {
    let lines: Vec<PamLine> = deciding.iter().map(|&i| stack[i].clone()).collect();
    let mut conditions: Vec<Condition> = lines.iter().map(condition_of).collect();
    conditions.sort();
    conditions.dedup();
    Grant {
        service: service.to_owned(),
        lines,
        conditions,
    }
}

/// What a module on this line can return when the password is wrong.
fn possible_returns(line: &PamLine) -> Vec<Returned> {
    use Returned::*;
    if line.module_missing {
        // libpam: PAM_MODULE_UNKNOWN, whatever the module would do.
        return vec![Failure];
    }
    match line.module.as_str() {
        "pam_permit.so" => vec![Success],
        "pam_deny.so" => vec![Failure],
        // Without `trust`, pam_wheel only ever refuses or stays out of it.
        "pam_wheel.so" if line.arg("trust").is_none() => vec![Ignore, Failure],
        // With `expose_authtok` the program is given the password to check:
        // an authenticator.
        "pam_exec.so" if line.arg("expose_authtok").is_some() => vec![Failure],
        m if NON_AUTHENTICATORS.contains(&m) => vec![Success, Ignore, Failure],
        // A second factor with `nullok` stays out of it (or succeeds, in
        // older versions) for an account that has not enrolled: the
        // password is then all that stands in the way. (pam_unix's own
        // `nullok` is about empty passwords, not a wrong one.)
        m if m != "pam_unix.so" && line.arg("nullok").is_some() => vec![Failure, Ignore, Success],
        _ => vec![Failure],
    }
}

/// Why a deciding line succeeds.
pub(crate) fn condition_of(line: &PamLine) -> Condition {
    match line.module.as_str() {
        "pam_permit.so" | "pam_localuser.so" => Condition::Anyone,
        "pam_rootok.so" => Condition::CallerIsRoot,
        "pam_wheel.so" => Condition::CallerInGroup {
            group: line.arg("group").unwrap_or("wheel").to_owned(),
            by_uid: line.arg("use_uid").is_some(),
        },
        "pam_succeed_if.so" => succeed_if_condition(line),
        "pam_access.so" => access_condition(line),
        m => Condition::Other(format!("{m} lets succeed ({})", line.args.join(" "))),
    }
}

/// pam_access admits by the `+` rules of its access file (users, groups,
/// origins: networks, hosts, terminals): they are the condition, as
/// written, for the evidence.
fn access_condition(line: &PamLine) -> Condition {
    let file = line
        .arg("accessfile")
        .unwrap_or("/etc/security/access.conf");
    let rules: Vec<String> = std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('+'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    Condition::Other(format!(
        "pam_access.so admits by {file} ({})",
        if rules.is_empty() {
            "no `+` rule".to_owned()
        } else {
            rules.join("; ")
        }
    ))
}

/// `user ingroup G` (alone, with flags such as `quiet` around it) is a
/// group; any other test is described as written.
fn succeed_if_condition(line: &PamLine) -> Condition {
    const FLAGS: [&str; 6] = [
        "quiet",
        "quiet_fail",
        "quiet_success",
        "debug",
        "use_uid",
        "audit",
    ];
    let test: Vec<&str> = line
        .args
        .iter()
        .map(String::as_str)
        .filter(|a| !FLAGS.contains(a))
        .collect();
    match test.as_slice() {
        ["user", "ingroup", group] => Condition::TargetInGroup((*group).to_owned()),
        _ => Condition::Other(format!("pam_succeed_if.so finds {}", test.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack_of(text: &str) -> Vec<PamLine> {
        pam::tests::auth_stack_of(&[("svc", text)])
    }

    use pam::tests::CIP_COMMON_AUTH;

    #[test]
    fn cips_stack_has_no_way_round_the_password() {
        assert_eq!(
            grants_of("login", &stack_of(CIP_COMMON_AUTH)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn debian_su_lets_only_root_through() {
        let text = format!("auth sufficient pam_rootok.so\n{CIP_COMMON_AUTH}");
        let grants = grants_of("su", &stack_of(&text)).unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].conditions, vec![Condition::CallerIsRoot]);
        assert!(grants[0].only_root());
        assert!(!grants_of("login", &stack_of(&text)).unwrap()[0].only_root());
    }

    #[test]
    fn wheel_trust_is_a_group_grant_and_plain_wheel_is_none() {
        let trust = format!(
            "auth sufficient pam_wheel.so trust use_uid group=operators\n{CIP_COMMON_AUTH}"
        );
        let grants = grants_of("su", &stack_of(&trust)).unwrap();
        assert_eq!(
            grants[0].conditions,
            vec![Condition::CallerInGroup {
                group: "operators".into(),
                by_uid: true
            }]
        );
        let plain = format!("auth sufficient pam_wheel.so\n{CIP_COMMON_AUTH}");
        assert_eq!(grants_of("su", &stack_of(&plain)).unwrap(), vec![]);
    }

    #[test]
    fn a_jump_over_pam_unix_is_found() {
        let text = CIP_COMMON_AUTH.replace(
            "auth [success=2",
            "auth [success=3 default=ignore] pam_succeed_if.so quiet user ingroup staff\nauth [success=2",
        );
        let grants = grants_of("login", &stack_of(&text)).unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(
            grants[0].conditions,
            vec![Condition::TargetInGroup("staff".into())]
        );
    }

    #[test]
    fn pam_permit_in_place_of_pam_unix_lets_anyone_through() {
        let text = CIP_COMMON_AUTH.replace("pam_unix.so nullok", "pam_permit.so");
        let grants = grants_of("login", &stack_of(&text)).unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].conditions, vec![Condition::Anyone]);
    }

    /// libpam dispatches a line whose module is not installed as failed
    /// (PAM_MODULE_UNKNOWN), also a `-` line: a `sufficient` one then lets
    /// nobody through, and a `[success=done default=ignore]` one before
    /// pam_deny stops nothing it would have stopped.
    #[test]
    fn a_line_whose_module_is_missing_fails() {
        let text = format!("-auth sufficient pam_localuser.so\n{CIP_COMMON_AUTH}");
        let mut stack = stack_of(&text);
        assert_eq!(grants_of("login", &stack).unwrap().len(), 1);
        stack[0].module_missing = true;
        assert_eq!(grants_of("login", &stack).unwrap(), vec![]);
    }

    #[test]
    fn a_requisite_condition_before_the_password_grants_nothing() {
        let text = format!("auth requisite pam_succeed_if.so uid >= 1000\n{CIP_COMMON_AUTH}");
        assert_eq!(grants_of("login", &stack_of(&text)).unwrap(), vec![]);
    }

    #[test]
    fn a_stack_too_large_to_play_through_is_an_error_not_a_pass() {
        let text = "auth optional pam_env.so\n".repeat(pam_play::MAX_UNDECIDED + 1);
        assert!(grants_of("login", &stack_of(&text)).is_err());
    }

    #[test]
    fn pam_exec_handed_the_password_is_an_authenticator() {
        let text = "auth sufficient pam_exec.so expose_authtok /usr/local/bin/check\nauth requisite pam_deny.so\n";
        assert_eq!(grants_of("login", &stack_of(text)).unwrap(), vec![]);
        let grants = grants_of("login", &stack_of(&text.replace("expose_authtok ", ""))).unwrap();
        assert!(matches!(grants[0].conditions[0], Condition::Other(_)));
    }
}
