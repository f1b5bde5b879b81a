//! TC_CR1.1_2 — CR1.1 human user identification and authentication, remote.
//!
//! Proves: `ssh user@DEVICE` to the device's own running sshd (its real
//! port, `UsePAM`, `AuthenticationMethods`, PAM stack and `Match` blocks;
//! never edited or restarted) from a test network of the case's own, with
//! the password typed at the server's prompt on a PTY: the right password
//! gives a shell whose `id -un` is the user, a wrong one is refused, and an
//! account with an empty password cannot log in with it.
//! Negative controls: profile `pam-permit` (pam_unix.so replaced by
//! pam_permit.so in common-auth) — the wrong password gets a shell;
//! profile `sshd-permit-empty-passwords` (`PermitEmptyPasswords yes` in an
//! sshd drop-in) — the account with the empty password gets a shell.

use harness::flows::device_sshd::RemoteLogins;
use harness::flows::ssh::assert_prompted;
use harness::runtime::command::sh;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.1_2",
    "CR1.1",
    "Human user identification and authentication (remote)",
    "ssh to the device's own sshd accepts the right password typed on a PTY and refuses a wrong or empty one",
    run,
)
.fails_under(&[
    Control::Profile("pam-permit"),
    Control::Profile("sshd-permit-empty-passwords"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let sshd = RemoteLogins::open(ev)?;
    let user = TestUser::create(ev)?;
    let wrong = strong_password()?;

    ev.step(format!(
        "ssh to {} with the right password, typed at the server's prompt",
        sshd.describe()
    ));
    let right = sshd.password(ev, user.name(), user.password())?;
    right.assert_shell_as(user.name())?;
    ev.ok("right password: a shell as the user");

    // One wrong attempt: it counts in the faillock tally (deny=3 on a CIP
    // image), which the TestUser clears when it is removed.
    ev.step("ssh with a wrong password");
    sshd.password(ev, user.name(), &wrong)?.assert_refused()?;
    ev.ok("wrong password: refused");
    // Checked after the refusal, so a stack that lets everyone in fails
    // with "the wrong password got a shell", the catalog's wording.
    assert_prompted(&right)?;
    ev.ok("the shell came after the server asked for the password and it was typed on the PTY");

    // pam_unix runs with nullok on Debian, so whether an empty password
    // logs in over ssh is decided by sshd's PermitEmptyPasswords.
    ev.step("an account whose password is empty, ssh with the empty password");
    let empty = TestUser::create(ev)?;
    sh(ev, "passwd", &["--delete", empty.name()])?;
    sshd.password(ev, empty.name(), "")?.assert_refused()?;
    ev.ok("an account with an empty password cannot log in over ssh");
    Ok(())
}
