//! TC_CR1.5_3 — CR1.5 authenticator management: stored authenticators are
//! protected.
//!
//! Proves: every store of password hashes (/etc/shadow, /etc/gshadow, their
//! backups `shadow-` and `gshadow-`, pam_unix's /etc/security/opasswd, and
//! every other file a walk of the device finds holding a hash: a copy of
//! shadow anywhere, a hash in a passwd line's second field) is closed to
//! users: an unprivileged user cannot open any of them for
//! reading nor for writing (tried as that user: the kernel must answer
//! "permission denied"; a mode bit is not enough), and every group the
//! file's mode or ACL grants access to is tried by a throw-away member; a
//! grant to any group but the one made for the file (`shadow`, for setgid
//! helpers) fails the case whether or not it has members today, a member
//! of `shadow` that can log in (any UID: a login shell is enough) fails it,
//! and so does an ACL entry for such an account. /etc/passwd opens for reading; passwords are stored as salted
//! hashes, not as text; the user cannot change another user's password with
//! `passwd OTHER`, but can change their own.
//! Negative controls: profile `shadow-644` (`chmod 644 /etc/shadow`: the
//! user reads the hashes); profile `shadow-backup-readable` (the backup
//! /etc/shadow- rewritten under umask 022, mode 644, /etc/shadow untouched);
//! profile `shadow-acl-to-empty-group` (an ACL entry lets a new group with
//! no member read /etc/shadow); profile `shadow-member-with-system-uid` (a
//! login account made with a system UID, member of `shadow`); profile
//! `shadow-copy-in-var-backups` (a copy of /etc/shadow left readable in
//! /var/backups); profile `password-hash-in-passwd` (a product account
//! whose hash is in /etc/passwd itself).

use anyhow::ensure;
use harness::actors::access::{try_open, Access, Opened};
use harness::facts::shadow;
use harness::flows::login::su_from;
use harness::flows::passwd::{passwd_for, passwd_own};
use harness::flows::secret_files::{
    before_run, check_stores, device_walk, password_stores, record_before_run,
};
use harness::runtime::case::Findings;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};
use std::path::Path;

pub const CASE: Case = Case::met(
    "TC_CR1.5_3",
    "CR1.5",
    "Authenticator management (protection of stored authenticators)",
    "an unprivileged user, the members of any group but shadow, and shadow's members only where none can log in, can neither read nor write the password stores (shadow, gshadow, their backups, opasswd), nor change another user's password; the user reads /etc/passwd and changes their own password",
    run,
)
.fails_under(&[
    Control::Profile("shadow-644"),
    Control::Profile("shadow-backup-readable"),
    Control::Profile("shadow-acl-to-empty-group"),
    Control::Profile("shadow-member-with-system-uid"),
    Control::Profile("shadow-copy-in-var-backups"),
    Control::Profile("password-hash-in-passwd"),
])
// The stores as the image has them, before any case's useradd rewrites the
// backups; the device walked before any case adds an account.
.before_run(record_before_run);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut user = TestUser::create(ev)?;
    let other = TestUser::create(ev)?;

    let stores = password_stores();
    ensure!(
        !stores.is_empty(),
        "not demonstrated: the image has no /etc/shadow, /etc/gshadow or backup of them"
    );
    ev.step(format!(
        "as {} (in no extra group) and as a member of each group granted access: open the password stores {} for reading and for writing",
        user.name(),
        stores
            .iter()
            .map(|store| store.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    ev.note(device_walk().summary());
    let mut findings = Findings::default();
    findings.step(as_before_the_run(ev));
    check_stores(ev, &user, &stores, &mut findings);
    findings.verdict("stored password hashes are exposed")?;
    ev.ok("every password store is closed to unprivileged users and to groups with human members");

    ev.step("positive half: the same user opens /etc/passwd for reading");
    ensure!(
        try_open(ev, &user, Path::new("/etc/passwd"), Access::Read)? == Opened::Allowed,
        "{} cannot read /etc/passwd: the open above proves nothing",
        user.name()
    );
    ev.ok("/etc/passwd opens for reading: the denials above are about the shadow files");

    ev.step("the stored password is a salted hash, not the password");
    let stored = shadow::entry(user.name())?;
    ensure!(
        !stored.hash.contains(user.password()) && stored.hash.starts_with('$'),
        "the stored password of {} is not a crypt hash ({})",
        user.name(),
        stored.hash_method()
    );
    ev.ok(format!("stored as {}", stored.hash_method()));

    ev.step(format!(
        "{} tries to change the password of {}",
        user.name(),
        other.name()
    ));
    let attempt = passwd_for(
        ev,
        &user,
        other.name(),
        user.password(),
        &strong_password()?,
    )?;
    let message = attempt.assert_rejected()?;
    ev.ok(format!(
        "refused, and the stored hash of {} is unchanged: {message}",
        other.name()
    ));
    su_from(ev, &user, other.name(), other.password())?.assert_shell_as(other.name())?;
    ev.ok(format!("{}'s own password still logs in", other.name()));

    ev.step("positive half: the user changes their own password");
    passwd_own(ev, &mut user, &strong_password()?)?.assert_changed()?;
    su_from(ev, &other, user.name(), user.password())?.assert_shell_as(user.name())?;
    ev.ok("own password changed through passwd, and the new one logs in");
    Ok(())
}

/// The stores as the image had them before the run's first account change
/// (the shadow tools rewrite the backups then, with the live file's mode):
/// what an unprivileged identity could open at that moment.
fn as_before_the_run(ev: &Evidence) -> anyhow::Result<Vec<String>> {
    let Some((identity, stores)) = before_run() else {
        anyhow::bail!("not demonstrated: the password stores were not recorded before the run changed any account");
    };
    ev.step(format!(
        "before any test case changed an account: the password stores, opened for reading and for writing as an unprivileged identity ({identity})"
    ));
    let mut violations = Vec::new();
    let mut unproven = Vec::new();
    for store in stores {
        ev.note(format!("before the run: {}", store.state));
        violations.extend(store.group_grants.iter().cloned());
        match &store.opened {
            Ok(allowed) if allowed.is_empty() => ev.ok(format!(
                "before the run: {} denied for reading and for writing",
                store.path.display()
            )),
            Ok(allowed) => violations.push(format!(
                "before the run changed any account, an unprivileged identity could open {} for {} ({})",
                store.path.display(),
                allowed.join(" and "),
                store.state
            )),
            Err(why) => unproven.push(format!("{}: {why}", store.path.display())),
        }
    }
    if !unproven.is_empty() {
        // A store that could not be tried never hides one found open.
        let why = format!("not demonstrated before the run: {}", unproven.join("; "));
        anyhow::ensure!(!violations.is_empty(), "{why}");
        ev.note(why);
    }
    Ok(violations)
}
