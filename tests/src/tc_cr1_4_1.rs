//! TC_CR1.4_1 — CR1.4 identifier management.
//!
//! Proves: names and IDs are unique across /etc/passwd and /etc/group and
//! resolve consistently (NSS, `id`); creating a user with an existing name
//! or UID is refused; a renamed account keeps its UID; a deleted account's
//! name no longer resolves.
//! Negative control: profile `duplicate-uid` (a UID shared in /etc/passwd).

use harness::actors::user::expect_refusal;
use harness::actors::user::unused_name;
use harness::facts::accounts::{duplicates, read_id_file};
use harness::runtime::command::{run as run_cmd, sh};
use harness::{Case, Control, Evidence, TestUser};
use nix::unistd::{Group, User};
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.4_1",
    "CR1.4",
    "Identifier management",
    "user and group identifiers are unique, resolve consistently, survive a rename and vanish on deletion",
    run,
)
.fails_under(&[
    Control::Profile("duplicate-uid"),
]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    ev.step("names and IDs in /etc/passwd and /etc/group are unique");
    let users = read_id_file("/etc/passwd")?;
    let groups = read_id_file("/etc/group")?;
    for (file, entries) in [("/etc/passwd", &users), ("/etc/group", &groups)] {
        let dup = duplicates(entries);
        anyhow::ensure!(
            dup.is_empty(),
            "{file} identifiers are not unique: {}",
            dup.join("; ")
        );
    }
    ev.ok("every user and group name and ID is unique");

    ev.step("every account resolves through NSS to the ID on file");
    for e in &users {
        let resolved = User::from_name(&e.name)?
            .ok_or_else(|| anyhow::anyhow!("{} in /etc/passwd does not resolve", e.name))?;
        anyhow::ensure!(
            resolved.uid.as_raw() == e.id,
            "{} resolves to uid {} but /etc/passwd says {}",
            e.name,
            resolved.uid,
            e.id
        );
    }
    ev.ok(format!("{} accounts resolve consistently", users.len()));

    let mut user = TestUser::create(ev)?;
    let id = sh(ev, "id", &["-u", user.name()])?;
    anyhow::ensure!(
        id.stdout.trim() == user.uid().to_string(),
        "`id -u` disagrees with the account database"
    );
    let group = Group::from_gid(user.gid())?.ok_or_else(|| {
        anyhow::anyhow!(
            "the primary group {} of {} does not resolve",
            user.gid(),
            user.name()
        )
    })?;
    ev.ok(format!(
        "{} has uid {} and group {} ({})",
        user.name(),
        user.uid(),
        group.name,
        group.gid
    ));

    ev.step("an existing name or UID cannot be given to a new account");
    expect_refusal(ev, Command::new("useradd").arg(user.name()), None)?;
    let fresh = unused_name()?;
    let uid = user.uid().to_string();
    expect_refusal(
        ev,
        Command::new("useradd").args(["--uid", &uid, &fresh]),
        Some(&fresh),
    )?;

    ev.step("a renamed account keeps its UID");
    let new_name = unused_name()?;
    user.rename(&new_name)?;
    let renamed = User::from_name(&new_name)?
        .ok_or_else(|| anyhow::anyhow!("{new_name} does not resolve after the rename"))?;
    anyhow::ensure!(renamed.uid == user.uid(), "rename changed the UID");
    ev.ok(format!("{new_name} kept uid {}", user.uid()));

    ev.step("a deleted account's name no longer resolves");
    user.delete()?;
    anyhow::ensure!(
        User::from_name(&new_name)?.is_none(),
        "{new_name} still resolves after deletion"
    );
    let id = run_cmd(ev, Command::new("id").arg(&new_name), None)?;
    anyhow::ensure!(!id.success, "`id {new_name}` still succeeds after deletion");
    ev.ok(format!("{new_name} no longer resolves"));
    Ok(())
}
