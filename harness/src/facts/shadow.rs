//! The stored authenticator: an account's /etc/shadow entry (password hash
//! and ageing fields) as it is on disk, and the ageing as `chage -l`
//! reports it.
//!
//! Password changes are verified here rather than trusted from a program's
//! message: a change must have replaced the stored hash, a refusal must have
//! left it as it was.

use crate::runtime::command::run_ok;
use crate::Evidence;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SHADOW: &str = "/etc/shadow";

/// One line of /etc/shadow. Day counts are days since 1970-01-01; `None`
/// for an empty field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub name: String,
    pub hash: String,
    pub last_change: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub warn_days: Option<i64>,
    pub inactive_days: Option<i64>,
    pub expires: Option<i64>,
}

impl ShadowEntry {
    /// The hash method, from the `$id$` prefix (`yescrypt`, `sha512crypt`,
    /// …), or why the field is not a hash at all.
    pub fn hash_method(&self) -> &'static str {
        Self::method_of(&self.hash)
    }

    /// The hash method of a password field (see [`Self::hash_method`]).
    pub fn method_of(field: &str) -> &'static str {
        let h = field.trim_start_matches('!');
        match h.split('$').nth(1) {
            _ if h.is_empty() => "empty (no password)",
            _ if h == "*" || h == "x" => "no usable password",
            Some("y") => "yescrypt",
            Some("gy") => "gost-yescrypt",
            Some("7") => "scrypt",
            Some("6") => "sha512crypt",
            Some("5") => "sha256crypt",
            Some("2b" | "2a" | "2y") => "bcrypt",
            Some("1") => "md5crypt (weak)",
            _ if h.len() == 13 => "DES crypt (weak)",
            _ => "unknown",
        }
    }
}

/// The /etc/shadow entry of `name` (read as root).
pub fn entry(name: &str) -> Result<ShadowEntry> {
    let text = std::fs::read_to_string(SHADOW).with_context(|| format!("reading {SHADOW}"))?;
    parse_entry(&text, name).with_context(|| format!("{name} has no entry in {SHADOW}"))
}

fn parse_entry(text: &str, name: &str) -> Option<ShadowEntry> {
    let line = text.lines().find(|l| l.split(':').next() == Some(name))?;
    let f: Vec<&str> = line.split(':').collect();
    let day = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
    Some(ShadowEntry {
        name: name.to_owned(),
        hash: f.get(1).copied().unwrap_or_default().to_owned(),
        last_change: day(2),
        min_days: day(3),
        max_days: day(4),
        warn_days: day(5),
        inactive_days: day(6),
        expires: day(7),
    })
}

/// Today as shadow counts it: days since 1970-01-01 (UTC).
pub fn today() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

/// `chage -l NAME` (as root, messages in English), as label → value:
/// "Minimum number of days between password change" → "2".
pub fn chage_list(ev: &Evidence, name: &str) -> Result<BTreeMap<String, String>> {
    let ran = run_ok(
        ev,
        Command::new("chage")
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .args(["-l", name]),
        None,
    )?;
    Ok(parse_chage_list(&ran.stdout))
}

fn parse_chage_list(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The labels of `chage -l` (shadow-utils, C locale).
pub const CHAGE_MIN: &str = "Minimum number of days between password change";
pub const CHAGE_MAX: &str = "Maximum number of days between password change";
pub const CHAGE_WARN: &str = "Number of days of warning before password expires";
pub const CHAGE_LAST: &str = "Last password change";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_lines_parse_with_empty_fields() {
        let text = "root:$y$j9T$abc$def:20000:0:99999:7:::\nfr1-ab12cd:!$6$salt$hash:20100:2:45:9::20500:\n";
        let e = parse_entry(text, "fr1-ab12cd").unwrap();
        assert_eq!(e.last_change, Some(20100));
        assert_eq!(
            (e.min_days, e.max_days, e.warn_days),
            (Some(2), Some(45), Some(9))
        );
        assert_eq!((e.inactive_days, e.expires), (None, Some(20500)));
        assert_eq!(e.hash_method(), "sha512crypt");
        assert_eq!(parse_entry(text, "root").unwrap().hash_method(), "yescrypt");
        assert!(parse_entry(text, "fr1").is_none());
    }

    #[test]
    fn chage_output_is_read_by_label() {
        let out = "Last password change\t\t\t\t\t: Nov 27, 2026\n\
                   Minimum number of days between password change\t\t: 2\n\
                   Maximum number of days between password change\t\t: 45\n\
                   Number of days of warning before password expires\t: 9\n";
        let m = parse_chage_list(out);
        assert_eq!(m[CHAGE_MIN], "2");
        assert_eq!(m[CHAGE_MAX], "45");
        assert_eq!(m[CHAGE_WARN], "9");
        assert_eq!(m[CHAGE_LAST], "Nov 27, 2026");
    }
}
