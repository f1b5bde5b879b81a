//! TC_CR1.1_1 — CR1.1 human user identification and authentication, local.
//!
//! Proves: on a PTY, `login` and `su -` (run by another unprivileged user)
//! with the right password give a shell whose `id -un` is the user; the same
//! flows with a wrong password are refused. And no PAM service lets anyone
//! through without an authenticator: every service's auth stack in
//! /etc/pam.d (includes followed) is played through with the password
//! failing; each line that still lets someone in (a `sufficient`
//! pam_wheel `trust`, a pam_succeed_if jumping over pam_unix, a pam_permit,
//! a pam_rootok in `login`/`sshd`) is listed, and tried for real where the
//! suite drives the service: a throw-away account is put in the line's
//! condition (the group it names) and must still be refused with a wrong
//! password. A line in a service the suite cannot drive fails from the
//! configuration alone; pam_rootok in su, chfn, runuser… (root needs no
//! password to become anyone) is by design. No console door opens without
//! one either: every getty unit with its drop-ins (no `--autologin`, no
//! `--skip-login`, login(1) and no `-f`), the debug shell not enabled,
//! emergency and rescue shells asking root's password, inittab's gettys,
//! no kernel command line a boot takes asking for a shell (debug shell,
//! `init=/bin/sh`, an initramfs shell).
//! Nor an empty password: a throw-away account with an empty password
//! field tries `login` and `su` with no password (never a failed try on
//! an existing account); where either lets it in (Debian's pam_unix
//! `nullok`), every account that can log in (any UID, any NSS source) with
//! an empty password field is a violation, named.
//! Negative controls: profile `pam-permit` (pam_unix.so replaced by
//! pam_permit.so in common-auth) — the wrong password gets a shell;
//! profile `su-wheel-trust` (`auth sufficient pam_wheel.so trust use_uid
//! group=operators` in /etc/pam.d/su) — a caller in group operators gets
//! any account with a wrong password; profile `console-autologin` (a
//! getty@tty1 drop-in with `--autologin root`); profile
//! `root-empty-password` (`passwd -d root`: root logs in at the console
//! with no password); profile `kernel-cmdline-debug-shell` (GRUB's
//! defaults give every boot `systemd.debug_shell`).

use harness::facts::consoles;
use harness::facts::inventory::{self, Password};
use harness::facts::pam_grants::survey;
use harness::facts::shadow::today;
use harness::flows::device_sshd::RemoteLogins;
use harness::flows::dialogue::AuthOutcome;
use harness::flows::grant_trial::{try_grant, Trial};
use harness::flows::login::{login, login_prompts, su_from, su_prompts};
use harness::runtime::case::Findings;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.1_1",
    "CR1.1",
    "Human user identification and authentication (local)",
    "login and su on a PTY accept the right password and refuse a wrong one; no PAM line lets an account through without an authenticator, tried as a member of each group such a line names; no account that can log in has an empty password the stacks accept; no console door (getty, debug, emergency or rescue shell, a kernel command line asking for a shell) opens without one",
    run,
)
.fails_under(&[
    Control::Profile("pam-permit"),
    Control::Profile("su-wheel-trust"),
    Control::Profile("console-autologin"),
    Control::Profile("root-empty-password"),
    Control::Profile("kernel-cmdline-debug-shell"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let wrong = strong_password()?;
    let mut found = Findings::default();

    ev.step("console login with the right password, then with a wrong one");
    login(ev, user.name(), user.password())?.assert_shell_as(user.name())?;
    login(ev, user.name(), &wrong)?.assert_refused()?;
    ev.ok("login: right password gives a shell as the user, wrong password is refused");

    ev.step("su - started by another unprivileged user, right then wrong password");
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
    ev.ok("su: right password gives a shell as the user, wrong password is refused");

    ev.step("every PAM service's auth stack, played through with the password failing");
    let pam = survey()?;
    ev.note(format!("auth stacks read: {}", pam.services.join(", ")));
    if !pam.assumed_authenticators.is_empty() {
        ev.note(format!(
            "modules taken to check an authenticator: {}",
            pam.assumed_authenticators
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let remote = match pam.grants.iter().any(|g| g.service == "sshd") {
        true if std::path::Path::new(harness::actors::sshd_match::SSHD).is_file() => {
            Some(RemoteLogins::open(ev)?)
        }
        _ => None,
    };
    for grant in &pam.grants {
        if grant.only_root() {
            ev.ok(format!(
                "{} — by design: root needs no password to become anyone",
                grant.describe()
            ));
            continue;
        }
        ev.note(grant.describe());
        match try_grant(ev, grant, remote.as_ref()) {
            Ok(Trial::GotIn { flow }) => found.violation(format!(
                "{flow}: a wrong password got in ({})",
                grant.describe()
            )),
            Ok(Trial::Refused { flow }) => ev.ok(format!(
                "{flow}: with the condition met, the wrong password was still refused"
            )),
            Ok(Trial::Unmeetable(why)) => ev.ok(format!("nobody meets it: {why}")),
            Ok(Trial::NotTried(why)) => {
                found.violation(format!("{} (not tried: {why})", grant.describe()))
            }
            Err(e) => found.step(Err(e)),
        }
    }
    if pam.grants.is_empty() {
        ev.ok("no line in any service lets anyone through without an authenticator");
    }

    found.step(empty_passwords(ev, &caller));

    ev.step("every console door: getty units and their drop-ins, the debug shell, the emergency and rescue shells, inittab, the kernel command lines a boot takes");
    let doors: Vec<_> = consoles::survey()
        .into_iter()
        .filter(|d| !d.files.is_empty())
        .collect();
    if doors.is_empty() {
        ev.note("no console unit and no inittab: no systemd or sysvinit console to log in at");
    }
    for door in doors {
        let files = door
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        match &door.bypass {
            Some(how) => found.violation(format!("{} {how} ({files})", door.name)),
            None => ev.ok(format!("{}: {} ({files})", door.name, door.runs)),
        }
    }
    if consoles::kernel_command_lines().is_empty() {
        ev.note("no kernel command line to judge: no boot loader configuration in the image, and /proc/cmdline is read only where PID 1 is the image's own init outside a container");
    }
    found.verdict("someone gets in without an authenticator")
}

/// Empty passwords: what `login` and `su` do with one, tried by a
/// throw-away account of the case's own (a failed try on an existing
/// account would count toward locking it), then every account that can
/// log in with one. The violations, one per such account, when either
/// flow lets an empty password in.
fn empty_passwords(ev: &Evidence, caller: &TestUser) -> anyhow::Result<Vec<String>> {
    ev.step("empty passwords: a throw-away account with an empty password field tries login and su with none");
    let mut empty = TestUser::create(ev)?;
    empty.delete_password()?;
    let mut accepting = Vec::new();
    for attempt in [
        login_prompts(ev, empty.name(), &[""])?,
        su_prompts(ev, caller, empty.name(), &[""])?,
    ] {
        match &attempt.outcome {
            AuthOutcome::Shell { .. } => {
                ev.note(format!("{}: an empty password gets in", attempt.flow));
                accepting.push(attempt.flow);
            }
            other => ev.note(format!("{}: {other}", attempt.flow)),
        }
    }

    ev.step("every account that can log in (any UID, any NSS source) with an empty password field");
    let today = today();
    let holders: Vec<_> = inventory::read(ev)?
        .into_iter()
        .filter(|a| !a.is_the_suites() && a.password == Password::Empty)
        .filter(|a| a.has_login_shell() && !a.is_expired(today))
        .collect();
    if holders.is_empty() {
        ev.ok("no account that can log in has an empty password field");
    }
    let mut found = Vec::new();
    for account in holders {
        let who = format!("{} (UID {})", account.name, account.uid);
        if accepting.is_empty() {
            ev.ok(format!(
                "{who}: an empty password field, which neither login nor su accepts"
            ));
        } else {
            found.push(format!(
                "{who} logs in with no authenticator: its password field is empty, and {} let an empty password in; set a password or lock the account",
                accepting.join(" and ")
            ));
        }
    }
    Ok(found)
}
