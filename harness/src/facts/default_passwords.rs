//! Published default passwords: the list shipped with the suite
//! (harness/data/default-passwords.tsv, compiled in), each entry with its
//! public source, and the comparison of an account's stored hash with the
//! entries for it through the system's own crypt(3). Nothing is ever tried
//! by logging in: a failed try on an existing account would count toward
//! locking it.

use crate::runtime::password::hash_matches;
use anyhow::{bail, Context, Result};

const LIST: &str = include_str!("../../data/default-passwords.tsv");

/// Stands for the account's own name in the list's password column.
const OWN_NAME: &str = "{account}";

/// One published default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Default {
    password: String,
    /// `None`: any account.
    accounts: Option<Vec<String>>,
    pub source: String,
}

impl Default {
    /// Is this the default of `account`?
    fn applies_to(&self, account: &str) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == account))
    }

    /// The password this entry stands for on `account`.
    fn password_for(&self, account: &str) -> String {
        self.password.replace(OWN_NAME, account)
    }
}

/// The list shipped with the suite.
pub fn list() -> Result<Vec<Default>> {
    parse(LIST)
        .context("the suite's list of default passwords (harness/data/default-passwords.tsv)")
}

fn parse(text: &str) -> Result<Vec<Default>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let [password, accounts, source] = line.split('\t').collect::<Vec<_>>()[..] else {
            bail!("line {}: not three tab-separated columns: {line:?}", n + 1);
        };
        if password.is_empty() || source.trim().is_empty() {
            bail!("line {}: a password and its source are needed", n + 1);
        }
        out.push(Default {
            password: password.to_owned(),
            accounts: (accounts != "*")
                .then(|| accounts.split(',').map(|a| a.trim().to_owned()).collect()),
            source: source.trim().to_owned(),
        });
    }
    Ok(out)
}

/// The entries for `account` (its own and those for any account).
pub fn for_account<'a>(list: &'a [Default], account: &str) -> Vec<&'a Default> {
    list.iter().filter(|d| d.applies_to(account)).collect()
}

/// The first of `candidates` whose password `stored` is the hash of, for
/// `account`; an error when crypt(3) cannot compute the stored hash's
/// method (the comparison could not be made).
pub fn published_match<'a>(
    candidates: &[&'a Default],
    account: &str,
    stored: &str,
) -> Result<Option<&'a Default>> {
    for candidate in candidates {
        if hash_matches(&candidate.password_for(account), stored)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// A password of the list, for `account`, to give a throw-away account in
/// the case's own refusal half (the comparison must find it).
pub fn sample_for(list: &[Default], account: &str) -> Option<(String, String)> {
    list.iter()
        .find(|d| d.accounts.is_none() && !d.password.contains(OWN_NAME))
        .map(|d| (d.password_for(account), d.source.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Isar's meta-isar/conf/local.conf.sample root password: sha512crypt
    /// of "root", 10000 rounds.
    const ISAR_ROOT: &str = "$6$rounds=10000$RXeWrnFmkY$DtuS/OmsAS2cCEDo0BF5qQsizIrq6jPgXnwv3PHqREJeKd1sXdHX/ayQtuQWVDHe0KIO0/sVH8dvQm1KthF0d/";

    #[test]
    fn the_shipped_list_parses_and_names_a_source_for_every_entry() {
        let list = list().unwrap();
        assert!(list.len() >= 10);
        assert!(list.iter().all(|d| !d.source.is_empty()));
        let root = for_account(&list, "root");
        assert!(root.iter().any(|d| d.password == "CIPsecurity@123"));
        assert!(!for_account(&list, "operator")
            .iter()
            .any(|d| d.password == "CIPsecurity@123"));
    }

    #[test]
    fn a_stored_hash_is_matched_through_crypt_and_a_wrong_one_is_not() {
        let list = list().unwrap();
        let found = published_match(&for_account(&list, "root"), "root", ISAR_ROOT).unwrap();
        assert!(found.is_some_and(|d| d.source.contains("Isar")));
        // The same password under another account's name is found as
        // the account's own name only when it is that account's name.
        assert!(
            published_match(&for_account(&list, "isar"), "isar", ISAR_ROOT)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn own_name_entries_stand_for_the_account() {
        let list = parse("{account}\t*\tuser = password\n").unwrap();
        assert_eq!(list[0].password_for("op"), "op");
        assert!(parse("x\t*\n").is_err());
    }
}
