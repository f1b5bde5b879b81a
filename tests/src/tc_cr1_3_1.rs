//! TC_CR1.3_1 — CR1.3 account management: create.
//!
//! Proves: an account created with `useradd` (and with `adduser` where it
//! is installed) resolves, has its home, and can then authenticate for real
//! on a PTY; a wrong password for it is refused.
//! Negative control: profile `pam-permit`, as for TC_CR1.1_1 (any password
//! is accepted, so the refusal half fails here too).

use harness::actors::user::Creator;
use harness::flows::login::su_from;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};
use nix::unistd::User;

pub const CASE: Case = Case::met(
    "TC_CR1.3_1",
    "CR1.3",
    "Account management (create)",
    "a newly created account resolves and authenticates on a PTY; a wrong password is refused",
    run,
)
.fails_under(&[Control::Profile("pam-permit")]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let caller = TestUser::create(ev)?;
    let wrong = strong_password()?;
    let mut creators = vec![Creator::Useradd];
    if harness::runtime::command::find_program("adduser").is_some() {
        creators.push(Creator::Adduser);
    } else {
        ev.note("adduser is not installed; accounts are created with useradd only");
    }
    for creator in creators {
        ev.step(format!("create an account with {creator}"));
        let user = TestUser::create_with(ev, creator)?;
        let resolved = User::from_name(user.name())?
            .ok_or_else(|| anyhow::anyhow!("{} does not resolve after creation", user.name()))?;
        anyhow::ensure!(
            resolved.uid == user.uid(),
            "{} resolves to another UID",
            user.name()
        );
        anyhow::ensure!(
            user.home().is_dir(),
            "{} has no home directory",
            user.name()
        );
        ev.ok(format!(
            "{} resolves (uid {}) and has {}",
            user.name(),
            user.uid(),
            user.home().display()
        ));

        su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
        su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
        ev.ok(format!(
            "account made by {creator} authenticates with its password only"
        ));
    }
    Ok(())
}
