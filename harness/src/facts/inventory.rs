//! Who can log in: every account of every NSS source (`getent passwd`,
//! `getent shadow`: files, and whatever nsswitch.conf adds), whatever its
//! UID, with the state of its password.
//!
//! The mechanism cases prove what PAM does for a fresh account of the
//! suite's own; the inventory is what the image already holds, which those
//! same rules must be judged against. An account counts as a person's
//! when its shell is a shell and it has a way in by password, whatever its
//! UID range says.

use crate::facts::accounts::{is_login_shell, NAME_PREFIX};
use crate::runtime::command::{run_ok, run_ok_withholding_stdout};
use crate::Evidence;
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;

/// What the password field of an account holds, from shadow when the
/// account has a shadow entry, else from passwd's own field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// A crypt hash that a password can match.
    Hash(String),
    /// A crypt hash in /etc/passwd's second field: readable by everyone.
    HashInPasswd(String),
    /// Nothing at all: with `nullok` in the stack, no password is asked.
    Empty,
    /// `!` before a hash: locked (`passwd -l`, `usermod -L`).
    Locked,
    /// `*`, `!`, `!!`, `x` with no shadow entry: no password can match.
    NoPassword,
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = |h: &str| crate::facts::shadow::ShadowEntry::method_of(h);
        match self {
            Password::Hash(h) => write!(f, "a password ({})", method(h)),
            Password::HashInPasswd(h) => write!(
                f,
                "a password hash in /etc/passwd, readable by every user ({})",
                method(h)
            ),
            Password::Empty => f.write_str("an EMPTY password field"),
            Password::Locked => f.write_str("a locked password"),
            Password::NoPassword => f.write_str("no usable password"),
        }
    }
}

/// One account as NSS resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub password: Password,
    /// Shadow's day of the last change (days since 1970-01-01); `Some(0)`
    /// means the password must be changed at the next login.
    pub last_change: Option<i64>,
    pub max_days: Option<i64>,
    /// The day the account expires, if set.
    pub expires: Option<i64>,
}

impl Account {
    /// A login shell: not nologin, false, sync, halt or shutdown. An empty
    /// shell field is /bin/sh to login(1).
    pub fn has_login_shell(&self) -> bool {
        is_login_shell(&self.shell)
    }

    /// Expired as an account (shadow's eighth field, before `today`).
    pub fn is_expired(&self, today: i64) -> bool {
        self.expires.is_some_and(|day| day <= today)
    }

    /// A password that could let someone in (a hash anywhere, or none
    /// at all), on an account with a login shell that has not expired.
    pub fn can_log_in_by_password(&self, today: i64) -> bool {
        self.has_login_shell()
            && !self.is_expired(today)
            && matches!(
                self.password,
                Password::Hash(_) | Password::HashInPasswd(_) | Password::Empty
            )
    }

    /// The hash a password would be checked against, if any.
    pub fn hash(&self) -> Option<&str> {
        match &self.password {
            Password::Hash(h) | Password::HashInPasswd(h) => Some(h),
            _ => None,
        }
    }

    /// The next login must change the password: `chage -d 0`, or a
    /// maximum age that has run out.
    pub fn must_change_password(&self, today: i64) -> bool {
        match (self.last_change, self.max_days) {
            (Some(0), _) => true,
            (Some(last), Some(max)) if (0..99_999).contains(&max) => last + max < today,
            _ => false,
        }
    }

    /// An account the suite made (its own throw-away accounts of other
    /// test cases running at the same time).
    pub fn is_the_suites(&self) -> bool {
        self.name.starts_with(NAME_PREFIX)
    }
}

/// Every account NSS resolves, in `getent passwd` order.
pub fn read(ev: &Evidence) -> Result<Vec<Account>> {
    let passwd = run_ok(ev, Command::new("getent").arg("passwd"), None)?.stdout;
    // Hashes: kept out of the evidence.
    let shadow = run_ok_withholding_stdout(ev, Command::new("getent").arg("shadow"))?.stdout;
    Ok(parse(&passwd, &shadow))
}

/// The accounts of `getent passwd` text, with the fields of `getent shadow`
/// text where an entry of the same name exists. The first entry of a name
/// wins, as for NSS lookups.
pub fn parse(passwd: &str, shadow: &str) -> Vec<Account> {
    let mut shadow_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in shadow.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 2 {
            shadow_of.entry(f[0]).or_insert(f);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let (Some(name), Some(uid), Some(gid)) = (
            f.first(),
            f.get(2).and_then(|v| v.parse().ok()),
            f.get(3).and_then(|v| v.parse().ok()),
        ) else {
            continue;
        };
        if name.is_empty() || !seen.insert(*name) {
            continue;
        }
        let passwd_field = f.get(1).copied().unwrap_or_default();
        let sh = shadow_of.get(name);
        let day = |i: usize| {
            sh.and_then(|s| s.get(i))
                .and_then(|v| v.parse::<i64>().ok())
        };
        let password = match (passwd_field, sh) {
            // A hash in passwd is used by pam_unix whatever shadow says.
            (p, _) if p.starts_with('$') || (p.len() == 13 && p != "x") => {
                Password::HashInPasswd(p.to_owned())
            }
            ("", _) => Password::Empty,
            (_, Some(s)) => password_of(s.get(1).copied().unwrap_or_default()),
            _ => Password::NoPassword,
        };
        out.push(Account {
            name: (*name).to_owned(),
            uid,
            gid,
            home: f.get(5).copied().unwrap_or_default().to_owned(),
            shell: f.get(6).copied().unwrap_or_default().to_owned(),
            password,
            last_change: day(2),
            max_days: day(4),
            expires: day(7),
        });
    }
    out
}

/// The state of a shadow password field.
fn password_of(field: &str) -> Password {
    match field {
        "" => Password::Empty,
        _ if field.starts_with('!') => Password::Locked,
        _ if field.starts_with('$') || field.len() == 13 => Password::Hash(field.to_owned()),
        _ => Password::NoPassword,
    }
}

/// The day (days since 1970-01-01, UTC) the base system was installed: the
/// oldest package file list of dpkg's database, written when the image was
/// bootstrapped (a package upgraded later rewrites its own list only).
/// `None` on a system without dpkg's database.
pub fn base_install_day() -> Option<i64> {
    let dir = std::fs::read_dir("/var/lib/dpkg/info").ok()?;
    dir.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "list"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() / 86_400) as i64)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        toor:x:0:0::/root:/bin/sh\n\
        op:$6$s$h:998:998::/home/op:/bin/bash\n\
        open::1001:1001::/home/open:\n\
        locked:x:1002:1002::/home/locked:/bin/bash\n\
        gone:x:1003:1003::/home/gone:/bin/bash\n\
        fr1-ab12cd:x:1004:1004::/home/fr1-ab12cd:/bin/sh\n\
        root:x:0:0:duplicate from LDAP:/:/bin/sh\n";
    const SHADOW: &str = "root:$y$j9T$a$b:20000:0:99999:7:::\n\
        daemon:*:20000:0:99999:7:::\n\
        toor:$y$j9T$c$d:0:0:99999:7:::\n\
        locked:!$y$j9T$e$f:20000::::::\n\
        gone:$y$j9T$g$h:20000:::::19000:\n\
        fr1-ab12cd:$y$j9T$i$j:20400:0:99999:7:::\n";

    #[test]
    fn every_account_of_every_source_with_its_password_state() {
        let accounts = parse(PASSWD, SHADOW);
        let by = |n: &str| accounts.iter().find(|a| a.name == n).unwrap();
        assert_eq!(
            accounts.len(),
            8,
            "the second root is NSS's shadowed duplicate"
        );
        assert_eq!(by("root").password, Password::Hash("$y$j9T$a$b".into()));
        assert!(by("root").can_log_in_by_password(20500));
        assert!(!by("daemon").can_log_in_by_password(20500));
        assert_eq!(by("toor").uid, 0);
        assert!(by("toor").must_change_password(20500));
        assert_eq!(by("op").password, Password::HashInPasswd("$6$s$h".into()));
        assert!(by("op").can_log_in_by_password(20500));
        assert_eq!(by("open").password, Password::Empty);
        assert!(by("open").has_login_shell(), "an empty shell is /bin/sh");
        assert_eq!(by("locked").password, Password::Locked);
        assert!(by("gone").is_expired(20500));
        assert!(!by("gone").can_log_in_by_password(20500));
        assert!(by("fr1-ab12cd").is_the_suites());
    }

    #[test]
    fn an_aged_out_password_must_be_changed() {
        let mut a = parse(PASSWD, SHADOW).remove(0);
        a.last_change = Some(20000);
        a.max_days = Some(90);
        assert!(a.must_change_password(20100));
        assert!(!a.must_change_password(20050));
        a.max_days = Some(99_999);
        assert!(!a.must_change_password(30000));
    }
}
