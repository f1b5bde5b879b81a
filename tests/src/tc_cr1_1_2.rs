//! TC_CR1.1_2 — CR1.1 human user identification and authentication, remote.
//!
//! Proves: `ssh user@DEVICE` to the device's own running sshd (its real
//! port, `UsePAM`, `AuthenticationMethods`, PAM stack and `Match` blocks;
//! never edited or restarted) from a test network of the case's own, with
//! the password typed at the server's prompt on a PTY, at every address
//! and port of every sshd process that listens (each with its own command
//! line and configuration file) and of every other SSH server (dropbear,
//! …: any TCP listener that greets like one; host keys by ssh-keyscan):
//! the right password gives a shell whose
//! `id -un` is the user, a wrong one is refused, and an account with an
//! empty password cannot log in with it; nor from
//! anywhere else: every connection the configuration tells apart (each
//! `Match` block's, each port's, root's) is evaluated with `sshd -T -C`
//! and must not permit empty passwords (the suite never connects from
//! another network).
//! Negative controls: profile `pam-permit` (pam_unix.so replaced by
//! pam_permit.so in common-auth) — the wrong password gets a shell;
//! profile `sshd-permit-empty-passwords` (`PermitEmptyPasswords yes` in an
//! sshd drop-in) — the account with the empty password gets a shell;
//! profile `sshd-permit-empty-passwords-in-match` (the same inside a
//! `Match Address 10.0.0.0/8` block) — that block permits them; profile
//! `second-sshd-instance` (a second sshd, `-f` a file of its own, port
//! 2222, empty passwords permitted) — the empty password gets in there;
//! profile `dropbear-blank-passwords` (Debian's dropbear on port 2022 with
//! `-B`, blank passwords allowed) — the empty password gets in at a door
//! that is not sshd.

use anyhow::Context;
use harness::actors::sshd_match::{effective_configs_of, setting};
use harness::facts::sshd_instances;
use harness::flows::device_sshd::{Doors, RemoteLogins};
use harness::flows::ssh::assert_prompted;
use harness::runtime::case::Findings;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};
use std::net::SocketAddrV4;

pub const CASE: Case = Case::met(
    "TC_CR1.1_2",
    "CR1.1",
    "Human user identification and authentication (remote)",
    "ssh to the device's own sshd, every instance on every port, and to every other SSH server, accepts the right password typed on a PTY and refuses a wrong or empty one; no connection sshd tells apart (Match blocks, ports, root) permits empty passwords",
    run,
)
.fails_under(&[
    Control::Profile("pam-permit"),
    Control::Profile("sshd-permit-empty-passwords"),
    Control::Profile("sshd-permit-empty-passwords-in-match"),
    Control::Profile("second-sshd-instance"),
    Control::Profile("dropbear-blank-passwords"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let sshd = RemoteLogins::open_doors(ev, Doors::EverySshServer)?;
    let user = TestUser::create(ev)?;
    let mut empty = TestUser::create(ev)?;
    empty.delete_password()?;
    // Every sshd instance, on every address and port it listens on: a
    // second daemon with a configuration of its own is a door like the
    // first.
    for &target in sshd.targets() {
        at_one_port(ev, &sshd, target, &user, &empty)?;
    }

    let mut found = Findings::default();
    for runs in sshd_instances::configurations()? {
        ev.step(format!(
            "every connection {} tells apart (Match blocks, ports, root), evaluated with sshd -T -C: PermitEmptyPasswords",
            runs.label
        ));
        let (evaluations, _members) = effective_configs_of(ev, &runs)?;
        for evaluation in &evaluations {
            let who = &evaluation.spec.why;
            match setting(&evaluation.config, "permitemptypasswords").as_deref() {
                Some("no") => ev.ok(format!("{who}: PermitEmptyPasswords no")),
                other => found.violation(format!(
                    "{}, {who} (sshd -T -C {}): PermitEmptyPasswords {}: with pam_unix's nullok, an account with an empty password logs in from there",
                    runs.label,
                    evaluation.spec.arg(),
                    other.unwrap_or("unset")
                )),
            }
        }
    }
    found.verdict("sshd lets an empty password in")
}

/// Right password in, wrong and empty ones refused, at `target`.
fn at_one_port(
    ev: &Evidence,
    sshd: &RemoteLogins,
    target: SocketAddrV4,
    user: &TestUser,
    empty: &TestUser,
) -> anyhow::Result<()> {
    let wrong = strong_password()?;
    ev.step(format!(
        "ssh to the device's sshd at {target} with the right password, typed at the server's prompt"
    ));
    let right = sshd.prompts_at(ev, target, user.name(), &[user.password()])?;
    right.assert_shell_as(user.name())?;
    ev.ok("right password: a shell as the user");

    // One wrong attempt per port, after a success (which clears the
    // faillock tally: deny=3 on a CIP image); the TestUser clears it when
    // it is removed.
    ev.step(format!("ssh to {target} with a wrong password"));
    sshd.prompts_at(ev, target, user.name(), &[&wrong])?
        .assert_refused()?;
    ev.ok("wrong password: refused");
    // Checked after the refusal, so a stack that lets everyone in fails
    // with "the wrong password got a shell", the catalog's wording.
    assert_prompted(&right)?;
    ev.ok("the shell came after the server asked for the password and it was typed on the PTY");

    // pam_unix runs with nullok on Debian, so whether an empty password
    // logs in over ssh is decided by sshd's PermitEmptyPasswords.
    ev.step(format!(
        "an account whose password is empty, ssh to {target} with the empty password"
    ));
    sshd.prompts_at(ev, target, empty.name(), &[""])?
        .assert_refused()
        .with_context(|| format!("an account with an empty password logs in at {target}"))?;
    ev.ok("an account with an empty password cannot log in over ssh");
    Ok(())
}
