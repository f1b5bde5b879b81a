//! TC_CR1.3_2 — CR1.3 account management: modify.
//!
//! Proves: after `usermod -l`, the new name authenticates with the old
//! password and keeps the UID, a wrong password is refused, and the old name
//! no longer resolves.
//! Negative control: profile `pam-permit`, as for TC_CR1.1_1 (any password
//! is accepted, so the refusal half fails here too).

use harness::actors::user::unused_name;
use harness::flows::login::su_from;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};
use nix::unistd::User;

pub const CASE: Case = Case::met(
    "TC_CR1.3_2",
    "CR1.3",
    "Account management (modify)",
    "a renamed account authenticates under its new name only, with its old password",
    run,
)
.fails_under(&[Control::Profile("pam-permit")]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;
    let old_name = user.name().to_owned();
    let new_name = unused_name()?;

    ev.step(format!("rename {old_name} to {new_name} with usermod -l"));
    user.rename(&new_name)?;
    anyhow::ensure!(
        User::from_name(&old_name)?.is_none(),
        "the old name {old_name} still resolves"
    );
    let renamed = User::from_name(&new_name)?
        .ok_or_else(|| anyhow::anyhow!("the new name {new_name} does not resolve"))?;
    anyhow::ensure!(
        renamed.uid == user.uid(),
        "the renamed account changed its UID"
    );
    ev.ok("the old name is gone; the new name resolves to the same UID");

    su_from(ev, &caller, &new_name, user.password())?.assert_shell_as(&new_name)?;
    su_from(ev, &caller, &new_name, &strong_password()?)?.assert_refused()?;
    ev.ok("the new name authenticates with the old password only");
    Ok(())
}
