//! TC_CR1.5_2 — CR1.5 authenticator management: periodic and initial change.
//!
//! Proves: `chage -m/-M/-W` values are stored in /etc/shadow and reported by
//! `chage -l`, and the user cannot change them; after `chage -d 0` (the
//! administrator's "change at next login") the right password leads to the
//! change dialogue instead of a shell at every interactive entry point
//! (console `login`, `su`, ssh to the device's own sshd), a wrong password
//! does not; the change is made on the console's PTY, after which the new
//! password logs in and the old one is refused.
//! Negative controls: profiles `account-no-unix` (the account stack ignores
//! password expiry): the right password gives a shell with no change;
//! `sshd-account-phase-skipped` (the same over ssh only).

use anyhow::ensure;
use harness::facts::shadow::{self, chage_list, CHAGE_MAX, CHAGE_MIN, CHAGE_WARN};
use harness::flows::entry_points::EntryPoints;
use harness::flows::login::{login_changing, su_from};
use harness::runtime::command::{run as run_cmd, sh};
use harness::runtime::evidence::or_none;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};

pub const CASE: Case = Case::met(
    "TC_CR1.5_2",
    "CR1.5",
    "Authenticator management (periodic and initial change)",
    "chage ageing values are stored and reported; after chage -d 0 the right password forces a change on the PTY, after which only the new password works",
    run,
)
.fails_under(&[
    Control::Profile("account-no-unix"),
    Control::Profile("sshd-account-phase-skipped"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut user = TestUser::create(ev)?;
    let caller = TestUser::create(ev)?;

    ev.step("chage -m 2 -M 45 -W 9: stored in /etc/shadow and reported by chage -l");
    sh(
        ev,
        "chage",
        &["-m", "2", "-M", "45", "-W", "9", user.name()],
    )?;
    let stored = shadow::entry(user.name())?;
    ensure!(
        (stored.min_days, stored.max_days, stored.warn_days) == (Some(2), Some(45), Some(9)),
        "/etc/shadow holds min/max/warn {}/{}/{} for {}, not 2/45/9",
        or_none(stored.min_days),
        or_none(stored.max_days),
        or_none(stored.warn_days),
        user.name()
    );
    let reported = chage_list(ev, user.name())?;
    for (label, want) in [(CHAGE_MIN, "2"), (CHAGE_MAX, "45"), (CHAGE_WARN, "9")] {
        ensure!(
            reported.get(label).map(String::as_str) == Some(want),
            "chage -l reports {label}: {}, not {want}",
            or_none(reported.get(label))
        );
    }
    ev.ok("minimum 2, maximum 45, warning 9 days: stored and reported");

    ev.step("the user cannot change their own ageing values");
    let by_user = run_cmd(
        ev,
        user.command("chage").args(["-M", "99999", user.name()]),
        None,
    )?;
    ensure!(
        !by_user.success && shadow::entry(user.name())?.max_days == Some(45),
        "`chage -M 99999` run by {} was accepted",
        user.name()
    );
    ev.ok(format!(
        "refused for the user: {}",
        by_user.all_output().trim()
    ));

    ev.step("chage -d 0: the password must be changed at the next login");
    sh(ev, "chage", &["-d", "0", user.name()])?;
    let old = user.password().to_owned();
    // One wrong password (faillock counts it; deny=3 on a CIP image).
    let wrong = strong_password()?;
    su_from(ev, &caller, user.name(), &wrong)?.assert_refused()?;
    ev.ok("a wrong password is refused, without any change dialogue");

    let entries = EntryPoints::open(ev)?;
    entries.each(ev, user.name(), &old, |a| a.assert_change_required())?;
    ev.ok("the right password leads to the change dialogue, not a shell, at every entry point (the dialogue left unanswered)");

    let new = strong_password()?;
    let forced = login_changing(ev, &mut user, &new)?;
    forced.assert_changed_then_shell_as(user.name())?;
    ensure!(
        !forced.new_password_echoed && !forced.attempt.secret_echoed,
        "a password was echoed in the change dialogue"
    );
    ev.ok("login with the right password: change dialogue on the PTY (current, new, retype), then a shell");

    ev.step("after the change: the new password logs in, the old one is refused");
    su_from(ev, &caller, user.name(), user.password())?.assert_shell_as(user.name())?;
    su_from(ev, &caller, user.name(), &old)?.assert_refused()?;
    ev.ok("new password: a shell with no further change; old password: refused");
    Ok(())
}
