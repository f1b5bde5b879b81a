//! TC_CR1.5_3 — CR1.5 authenticator management: stored authenticators are
//! protected.
//!
//! Proves: an unprivileged user cannot open /etc/shadow or /etc/gshadow for
//! reading nor for writing (tried as that user: the kernel must answer
//! "permission denied"; a mode bit is not enough), while /etc/passwd opens
//! for reading; passwords are stored as salted hashes, not as text; the
//! user cannot change another user's password with `passwd OTHER`, but can
//! change their own.
//! Negative control: profile `shadow-644` (`chmod 644 /etc/shadow`): the
//! user reads the hashes.

use anyhow::{bail, ensure};
use harness::access::{try_open, Access, Opened};
use harness::login::su_from;
use harness::passwd::{passwd_for, passwd_own};
use harness::password::strong_password;
use harness::shadow;
use harness::{Case, Evidence, TestUser};
use std::path::Path;

pub const CASE: Case = Case::met(
    "TC_CR1.5_3",
    "CR1.5",
    "Authenticator management (protection of stored authenticators)",
    "an unprivileged user can neither read nor write /etc/shadow and /etc/gshadow, nor change another user's password; the user reads /etc/passwd and changes their own password",
    run,
);

const PROTECTED: [&str; 2] = ["/etc/shadow", "/etc/gshadow"];

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut user = TestUser::create(ev)?;
    let other = TestUser::create(ev)?;

    ev.step(format!(
        "as {}: open the shadow files for reading and for writing",
        user.name()
    ));
    let mut exposed = Vec::new();
    for file in PROTECTED.iter().map(Path::new).filter(|p| p.exists()) {
        for access in [Access::Read, Access::Write] {
            match try_open(ev, &user, file, access)? {
                Opened::Denied(message) => ev.ok(format!(
                    "{} for {}: denied ({message})",
                    file.display(),
                    access.verb()
                )),
                Opened::Allowed => {
                    exposed.push(format!("{} for {}", file.display(), access.verb()))
                }
            }
        }
    }
    if !exposed.is_empty() {
        bail!(
            "the unprivileged user {} could open {}",
            user.name(),
            exposed.join(" and ")
        );
    }

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
