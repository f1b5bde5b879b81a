//! TC_CR1.1_2 — CR1.1 human user identification and authentication, remote.
//!
//! Proves: `ssh user@127.0.0.1` to a private sshd that runs the system's own
//! sshd policy (a copy of /etc/ssh/sshd_config with its drop-ins) and PAM
//! stack (/etc/pam.d/sshd), with the password typed at the server's prompt
//! on a PTY: the right password gives a shell whose `id -un` is the user, a
//! wrong one is refused, and an account with an empty password cannot log in
//! with it.
//! Negative controls: profile `pam-permit` (pam_unix.so replaced by
//! pam_permit.so in common-auth) — the wrong password gets a shell;
//! `PermitEmptyPasswords yes` in an sshd drop-in — the account with the
//! empty password gets a shell.

use harness::command::sh;
use harness::password::strong_password;
use harness::ssh::{assert_prompted, ssh_password};
use harness::{Case, Evidence, PrivateSshd, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.1_2",
    "CR1.1",
    "Human user identification and authentication (remote)",
    "ssh to a sshd with the system's policy and PAM stack accepts the right password typed on a PTY and refuses a wrong or empty one",
    run,
);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let sshd = PrivateSshd::start(ev)?;
    let user = TestUser::create(ev)?;
    let wrong = strong_password()?;

    ev.step("ssh with the right password, typed at the server's prompt");
    let right = ssh_password(ev, &sshd, user.name(), user.password())?;
    right.assert_shell_as(user.name())?;
    ev.ok("right password: a shell as the user");

    // One wrong attempt: it counts in the faillock tally (deny=3 on a CIP
    // image), which the TestUser clears when it is removed.
    ev.step("ssh with a wrong password");
    ssh_password(ev, &sshd, user.name(), &wrong)?.assert_refused()?;
    ev.ok("wrong password: refused");
    // Checked after the refusal, so a stack that lets everyone in fails
    // with "the wrong password got a shell", the catalog's wording.
    assert_prompted(&right)?;
    ev.ok("the shell came after the server asked for the password and it was typed on the PTY");
    note_server_view(ev, &sshd, user.name());

    // pam_unix runs with nullok on Debian, so whether an empty password
    // logs in over ssh is decided by sshd's PermitEmptyPasswords.
    ev.step("an account whose password is empty, ssh with the empty password");
    let empty = TestUser::create(ev)?;
    sh(ev, "passwd", &["--delete", empty.name()])?;
    ssh_password(ev, &sshd, empty.name(), "")?.assert_refused()?;
    ev.ok("an account with an empty password cannot log in over ssh");
    note_server_view(ev, &sshd, empty.name());
    Ok(())
}

/// What sshd itself logged about `name` (accepted method, failures), so the
/// evidence shows the server's side of each decision.
fn note_server_view(ev: &Evidence, sshd: &PrivateSshd, name: &str) {
    let log = sshd.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(name)
                && (l.contains("Accepted") || l.contains("Failed") || l.contains("PAM"))
        })
        .collect();
    if !lines.is_empty() {
        ev.note(format!("sshd's log on {name}: {}", lines.join(" | ")));
    }
}
