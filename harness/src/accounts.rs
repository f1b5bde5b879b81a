//! The account database as files and as resolved by NSS.
//!
//! CR1.1 RE1 and CR1.4 are about identifiers: these helpers read
//! /etc/passwd and /etc/group as they are on disk and find identifiers that
//! are not unique, and run the account tools expecting a refusal.

use crate::command::{command_line, run};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::process::Command;

/// One line of /etc/passwd or /etc/group: name and numeric ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub id: u32,
}

/// Name and ID of every line of a passwd- or group-format file.
pub fn read_id_file(path: &str) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    parse_id_file(&text).with_context(|| format!("parsing {path}"))
}

fn parse_id_file(text: &str) -> Result<Vec<Entry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut fields = l.split(':');
            let name = fields.next().unwrap_or_default().to_owned();
            let id = fields
                .nth(1)
                .and_then(|f| f.parse().ok())
                .with_context(|| format!("no numeric ID in line {l:?}"))?;
            Ok(Entry { name, id })
        })
        .collect()
}

/// The accounts a person can log in to: root, and every account of
/// /etc/passwd with a UID in login.defs' [UID_MIN, UID_MAX] (1000..60000
/// unless set) whose shell is not nologin or false.
pub fn login_accounts() -> Result<Vec<nix::unistd::User>> {
    let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
    let (min, max) = uid_range(&defs);
    let mut out = Vec::new();
    for entry in read_id_file("/etc/passwd")? {
        if entry.id != 0 && !(min..=max).contains(&entry.id) {
            continue;
        }
        let Some(user) = nix::unistd::User::from_name(&entry.name)? else {
            continue;
        };
        let shell = user.shell.to_string_lossy();
        if !(shell.ends_with("/nologin") || shell.ends_with("/false")) {
            out.push(user);
        }
    }
    Ok(out)
}

/// UID_MIN and UID_MAX from login.defs text, with shadow's defaults.
pub fn uid_range(login_defs: &str) -> (u32, u32) {
    let value = |key: &str, default: u32| {
        login_defs
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                if f.next() != Some(key) {
                    return None;
                }
                f.next()?.parse().ok()
            })
            .next_back()
            .unwrap_or(default)
    };
    (value("UID_MIN", 1000), value("UID_MAX", 60000))
}

/// Names that occur more than once, and IDs that occur more than once
/// (with the names sharing them). Empty when every identifier is unique.
pub fn duplicates(entries: &[Entry]) -> Vec<String> {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_id: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for e in entries {
        *by_name.entry(&e.name).or_default() += 1;
        by_id.entry(e.id).or_default().push(&e.name);
    }
    let mut found: Vec<String> = by_name
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, n)| format!("name {name} appears {n} times"))
        .collect();
    found.extend(
        by_id
            .into_iter()
            .filter(|(_, names)| names.len() > 1)
            .map(|(id, names)| format!("ID {id} is shared by {}", names.join(", "))),
    );
    found
}

/// Run an account tool that must refuse (non-zero exit), and make sure it
/// left nothing behind: if the account `must_not_exist` appeared anyway it
/// is removed (it carries a generated name, so it is ours) and the refusal
/// is reported as missing.
pub fn expect_refusal(
    ev: &Evidence,
    cmd: &mut Command,
    must_not_exist: Option<&str>,
) -> Result<()> {
    let line = command_line(cmd);
    let ran = run(ev, cmd, None)?;
    let leaked = match must_not_exist {
        Some(name) if nix::unistd::User::from_name(name)?.is_some() => {
            let _ = run(
                ev,
                Command::new("userdel").args(["--remove", "--force", name]),
                None,
            );
            Some(name)
        }
        _ => None,
    };
    if ran.success || leaked.is_some() {
        bail!(
            "`{line}` was accepted (exit status {}){}: it must be refused",
            crate::evidence::or_none(ran.code),
            leaked.map_or(String::new(), |n| format!(" and created {n}"))
        );
    }
    ev.ok(format!(
        "refused as required: `{line}` -> {}",
        ran.all_output().trim()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shared_ids_and_repeated_names() {
        let e = parse_id_file("root:x:0:0::/root:/bin/sh\nal:x:1000:1000::/h:/bin/sh\nbo:x:1000:1000::/h:/bin/sh\nal:x:1001:1::/:/x\n").unwrap();
        let d = duplicates(&e);
        assert_eq!(
            d,
            vec!["name al appears 2 times", "ID 1000 is shared by al, bo"]
        );
    }

    #[test]
    fn unique_files_have_no_duplicates() {
        let e = parse_id_file("root:x:0:\nusers:x:100:a,b\n").unwrap();
        assert!(duplicates(&e).is_empty());
    }
}
