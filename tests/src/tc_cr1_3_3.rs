//! TC_CR1.3_3 — CR1.3 account management: disable and enable.
//!
//! Proves, at every interactive entry point the image offers (console
//! `login`, `su` from another account, ssh to the device's own sshd from a
//! test address): an expired account (`usermod --expiredate 1`) and a locked
//! one (`passwd -l`) are refused with the *right* password; re-enabling each
//! makes the same logins succeed again. Then who else the account phase
//! spares: the account stack of each entry point's PAM service is played
//! as libpam plays it for an expired account; a line that gets a group
//! past pam_unix is exercised with an expired throw-away member at that
//! entry point (it must be refused), any other such line fails the case.
//! Negative controls: profiles `account-no-unix` (the account stack does not
//! run pam_unix.so, so expiry is not enforced anywhere),
//! `sshd-account-phase-skipped` (sshd's own PAM stack skips the account
//! phase: expired accounts get in over ssh only) and
//! `account-phase-spares-group` (members of a group jump over pam_unix in
//! common-account: expired and locked members still get in).

use harness::flows::entry_points::EntryPoints;
use harness::flows::exemption;
use harness::runtime::case::Findings;
use harness::runtime::command::sh;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.3_3",
    "CR1.3",
    "Account management (disable and enable)",
    "disabled accounts are refused with the right password at every entry point (login, su, ssh) and work again once enabled",
    run,
)
.fails_under(&[
    Control::Profile("account-no-unix"),
    Control::Profile("sshd-account-phase-skipped"),
    Control::Profile("account-phase-spares-group"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let entries = EntryPoints::open(ev)?;
    let (name, password) = (user.name(), user.password());

    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("enabled account: the right password gives a shell at every entry point");

    ev.step("disable by expiry: usermod --expiredate 1");
    sh(ev, "usermod", &["--expiredate", "1", name])?;
    entries.each(ev, name, password, |a| a.assert_refused())?;
    ev.ok("expired account: refused with the right password at every entry point");
    sh(ev, "usermod", &["--expiredate", "", name])?;
    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("expiry removed: the account works again at every entry point");

    ev.step("disable by locking the password: passwd -l");
    sh(ev, "passwd", &["-l", name])?;
    // A locked password fails authentication, which pam_faillock counts
    // (deny=3 on a CIP image): the tally is emptied after each refusal, so
    // every one is the lock's and the unlock below is not held up.
    entries.each(ev, name, password, |a| {
        user.clear_failures()?;
        a.assert_refused()
    })?;
    ev.ok("locked account: refused with the right password at every entry point");
    sh(ev, "passwd", &["-u", name])?;
    entries.each(ev, name, password, |a| a.assert_shell_as(name))?;
    ev.ok("unlocked: the account works again at every entry point");

    ev.step("who else the account phase spares: each entry point's account stack played as libpam plays it, for an expired account");
    let mut findings = Findings::default();
    for spared in exemption::find(ev, &entries.pam_services(), "account", &["pam_unix.so"])? {
        let Some(entry) = entries.of_service(&spared.service) else {
            continue;
        };
        findings.step(exemption::exercise(
            ev,
            &spared,
            "expired (usermod --expiredate 1)",
            |member| sh(ev, "usermod", &["--expiredate", "1", member.name()]).map(drop),
            |member, password| entries.password(ev, entry, member.name(), password),
        ));
    }
    findings.verdict("the account phase spares some accounts")
}
