//! TC_CR1.1-RE1_1 — CR1.1 RE1 unique identification and authentication.
//!
//! Proves: `useradd` refuses a duplicate name and a duplicate UID;
//! `usermod -l` to an existing name is refused; every account in
//! /etc/passwd has a unique name and UID, and so does every account NSS
//! resolves from any source (`getent passwd`: a second UID 0 from another
//! database is as much another root as one in /etc/passwd).
//! Negative control: profile `duplicate-uid` (a second account shares the
//! UID of a human account in /etc/passwd).

use harness::actors::user::expect_refusal;
use harness::actors::user::unused_name;
use harness::facts::accounts::{duplicates, read_id_file, Entry};
use harness::facts::inventory;
use harness::{Case, Control, Evidence, TestUser};
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.1-RE1_1",
    "CR1.1 RE1",
    "Unique identification and authentication",
    "duplicate names and UIDs are refused by the account tools and absent from /etc/passwd",
    run,
)
.fails_under(&[Control::Profile("duplicate-uid")]);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let a = TestUser::create(ev)?;
    let b = TestUser::create(ev)?;
    let uid = a.uid().to_string();

    ev.step("useradd with a name that exists must be refused");
    expect_refusal(ev, Command::new("useradd").arg(a.name()), None)?;

    ev.step("useradd with a UID that exists must be refused");
    let fresh = unused_name()?;
    expect_refusal(
        ev,
        Command::new("useradd").args(["--uid", &uid, &fresh]),
        Some(&fresh),
    )?;

    ev.step("usermod -l to a name that exists must be refused");
    expect_refusal(
        ev,
        Command::new("usermod").args(["-l", b.name(), a.name()]),
        None,
    )?;

    ev.step("every account in /etc/passwd has a unique name and UID");
    let dup = duplicates(&read_id_file("/etc/passwd")?);
    anyhow::ensure!(
        dup.is_empty(),
        "/etc/passwd identifiers are not unique: {}",
        dup.join("; ")
    );
    ev.ok("/etc/passwd: every name and every UID is unique");

    ev.step("every account NSS resolves from any source (getent passwd) has a UID of its own: no second UID 0, no alias of another account");
    let resolved: Vec<Entry> = inventory::read(ev)?
        .into_iter()
        .map(|a| Entry {
            name: a.name,
            id: a.uid,
        })
        .collect();
    let dup = duplicates(&resolved);
    anyhow::ensure!(
        dup.is_empty(),
        "the accounts NSS resolves are not unique: {}",
        dup.join("; ")
    );
    ev.ok(format!(
        "{} accounts resolved, each name with a UID of its own",
        resolved.len()
    ));
    Ok(())
}
