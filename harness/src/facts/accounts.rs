//! The account database as files and as resolved by NSS.
//!
//! CR1.1 RE1 and CR1.4 are about identifiers: these helpers read
//! /etc/passwd and /etc/group as they are on disk and find identifiers that
//! are not unique (the account tools run expecting a refusal are
//! `actors::user::expect_refusal`: they change the system when they fail
//! to refuse).
//! [`Accounts`] is the same database as names, groups and the image's
//! human accounts, for asking who a file's grants reach.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

/// Every account the harness creates starts with this, so an operator can
/// recognise (and `--cleanup` can find) leftovers, and the account database
/// never counts them among the image's own.
pub const NAME_PREFIX: &str = "fr1-";

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
            let (name, id, _) =
                id_line(l).with_context(|| format!("no numeric ID in line {l:?}"))?;
            Ok(Entry {
                name: name.to_owned(),
                id,
            })
        })
        .collect()
}

/// A line of /etc/passwd (`name:x:UID:GID:...`) or /etc/group
/// (`name:x:GID:members`): the name, the numeric ID of the third field,
/// and the fourth field (the primary GID, or the member list). `None`
/// when the third field is not a number.
fn id_line(line: &str) -> Option<(&str, u32, &str)> {
    let mut fields = line.split(':');
    let name = fields.next().unwrap_or_default();
    let id = fields.nth(1)?.parse().ok()?;
    Some((name, id, fields.next().unwrap_or_default()))
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

/// A login shell: not nologin, false, true, sync, halt or shutdown. An
/// empty shell field is /bin/sh to login(1).
pub fn is_login_shell(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or_default();
    !matches!(
        base,
        "nologin" | "false" | "true" | "sync" | "halt" | "shutdown"
    )
}

/// The human accounts of the image: UID in [UID_MIN, UID_MAX] of
/// /etc/login.defs (1000..60000 when unset), and any other account but
/// root with a login shell (a person's account made with a system UID is a
/// person's all the same); the suite's own throw-away users excepted.
/// Name, UID and primary GID, from /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    humans: Vec<(String, u32, u32)>,
    /// GID → supplementary member names, from /etc/group.
    members: BTreeMap<u32, Vec<String>>,
    users: BTreeMap<u32, String>,
    groups: BTreeMap<u32, String>,
}

impl Accounts {
    /// /etc/login.defs (shadow's defaults when it cannot be read),
    /// /etc/passwd and /etc/group as they are now.
    pub fn read() -> Result<Self> {
        let login_defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        let group = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
        Ok(Self::parse(&login_defs, &passwd, &group))
    }

    pub fn parse(login_defs: &str, passwd: &str, group: &str) -> Self {
        let (min, max) = uid_range(login_defs);
        let mut accounts = Accounts {
            humans: Vec::new(),
            members: BTreeMap::new(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
        };
        for line in passwd.lines() {
            let Some((name, uid, Ok(gid))) =
                id_line(line).map(|(name, uid, gid)| (name, uid, gid.parse::<u32>()))
            else {
                continue;
            };
            accounts
                .users
                .entry(uid)
                .or_insert_with(|| name.to_string());
            let shell = line.split(':').nth(6).unwrap_or_default();
            let person = (min..=max).contains(&uid) || (uid != 0 && is_login_shell(shell));
            if person && !name.starts_with(NAME_PREFIX) {
                accounts.humans.push((name.to_string(), uid, gid));
            }
        }
        for line in group.lines() {
            let Some((name, gid, members)) = id_line(line) else {
                continue;
            };
            accounts
                .groups
                .entry(gid)
                .or_insert_with(|| name.to_string());
            accounts.members.entry(gid).or_default().extend(
                members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
            );
        }
        accounts
    }

    /// The human accounts in group `gid`, as primary or supplementary group.
    pub fn human_members(&self, gid: u32) -> Vec<String> {
        let supplementary = self.members.get(&gid);
        let mut found: Vec<String> = self
            .humans
            .iter()
            .filter(|(name, _, primary)| {
                *primary == gid || supplementary.is_some_and(|m| m.contains(name))
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// Does an account of /etc/passwd have this UID?
    pub fn has_uid(&self, uid: u32) -> bool {
        self.users.contains_key(&uid)
    }

    /// Does a group of /etc/group have this GID?
    pub fn has_gid(&self, gid: u32) -> bool {
        self.groups.contains_key(&gid)
    }

    pub fn is_human(&self, uid: u32) -> bool {
        self.humans.iter().any(|(_, u, _)| *u == uid)
    }

    pub fn user_name(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| format!("uid {uid}"))
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| format!("gid {gid}"))
    }
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

    #[test]
    fn human_members_by_primary_and_supplementary_group() {
        let passwd = "root:x:0:0::/root:/bin/sh\n\
                      daemon:x:1:1::/:/bin/false\n\
                      operator:x:1001:1001::/home/operator:/bin/bash\n\
                      alice:x:1002:1002::/home/alice:/bin/bash\n\
                      fr1-abcdef:x:1003:1003::/home/fr1-abcdef:/bin/sh\n\
                      svcbackup:x:998:998::/var/backups:/bin/bash\n\
                      nobody:x:65534:65534::/:/bin/false\n";
        let group = "root:x:0:\nshadow:x:42:fr1-abcdef\noperators:x:1500:operator\n\
                     alice:x:1002:\nbackup:x:34:svcbackup\n";
        let accounts = Accounts::parse("UID_MIN 1000\nUID_MAX 60000\n", passwd, group);
        assert!(accounts.human_members(42).is_empty());
        assert_eq!(accounts.human_members(1500), vec!["operator"]);
        assert_eq!(accounts.human_members(1002), vec!["alice"]);
        assert!(accounts.is_human(1001));
        assert!(
            !accounts.is_human(1003),
            "the suite's own users are not humans"
        );
        assert!(!accounts.is_human(65534));
        assert!(
            !accounts.is_human(0),
            "root administers, it is no person's account"
        );
        assert!(
            accounts.is_human(998),
            "a login shell makes a person's account, whatever its UID"
        );
        assert_eq!(accounts.human_members(34), vec!["svcbackup"]);
        assert_eq!(accounts.group_name(1500), "operators");
        assert_eq!(accounts.user_name(7), "uid 7");
    }

    #[test]
    fn uid_range_from_login_defs() {
        assert_eq!(uid_range(""), (1000, 60000));
        assert_eq!(
            uid_range("# UID_MIN 5\nUID_MIN\t\t 2000\nUID_MAX 3000\n"),
            (2000, 3000)
        );
    }
}
