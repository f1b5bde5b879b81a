//! TC_CR1.5_4 — CR1.5 authenticator management: default authenticators
//! are changed.
//!
//! Proves: no account that can log in by password (any UID, any NSS
//! source) keeps a published default password (the suite's list, each
//! entry with its public source, compared through the system's crypt(3)
//! with the stored hash, never by logging in), has an empty password, or
//! keeps a password set when the image was built and never changed since
//! without being forced to change it at the next login.
//! Controls: in the case, a throw-away account given a password of the
//! list must be found by the same comparison and not once its password is
//! random; profiles `published-default-password` (root's password from
//! Isar's sample configuration), `build-time-password-unforced` (an
//! service account's build-time password, no forced change),
//! `root-empty-password` and `extrausers-default-password` (an account
//! with BeagleBoard's published password that only NSS's extrausers
//! source knows, not the files in /etc).

use harness::facts::default_passwords::{self, for_account, published_match, sample_for};
use harness::facts::inventory::{self, base_install_day, Account};
use harness::facts::shadow::today;
use harness::runtime::case::Findings;
use harness::runtime::command::run_ok;
use harness::runtime::password::{crypt, random_token};
use harness::{Case, Control, Evidence, TestUser};
use std::process::Command;

pub const CASE: Case = Case::met(
    "TC_CR1.5_4",
    "CR1.5",
    "Authenticator management (default authenticators changed)",
    "no account that can log in keeps a published default password, an empty password, or a build-time password it is not forced to change at the next login",
    run,
)
.fails_under(&[
    Control::Profile("published-default-password"),
    Control::Profile("build-time-password-unforced"),
    Control::Profile("root-empty-password"),
    Control::Profile("extrausers-default-password"),
    Control::InTest {
        reason: "a throw-away account given a password of the list is found by the same comparison, and not once its password is random",
    },
]);

/// What a product maker does about a build-time password.
const FORCE_CHANGE: &str = "force a change at the first login (chage -d 0 NAME; in Isar, USER_NAME[flags] += \"force-passwd-change\") or set a password per device";

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let list = default_passwords::list()?;
    ev.note(format!(
        "{} published default passwords in the suite's list (harness/data/default-passwords.tsv)",
        list.len()
    ));
    the_comparison_finds_a_published_password(ev, &list)?;

    let today = today();
    let installed = base_install_day();
    ev.step(format!(
        "every account of every NSS source (getent passwd, getent shadow); the base system was installed on day {} (today: day {today})",
        installed.map_or_else(|| "unknown".to_owned(), |d| d.to_string())
    ));
    let accounts = inventory::read(ev)?;
    let mut findings = Findings::default();
    let mut judged = 0;
    for account in accounts.iter().filter(|a| !a.is_the_suites()) {
        if !account.can_log_in_by_password(today) {
            ev.note(format!(
                "{}: not by password ({})",
                who(account),
                why_not(account, today)
            ));
            continue;
        }
        judged += 1;
        findings.step(judge(ev, account, &list, installed, today));
    }
    anyhow::ensure!(
        judged > 0 || accounts.iter().any(|a| a.name == "root"),
        "not demonstrated: NSS resolves no account at all"
    );
    findings.verdict("default authenticators are still in place")?;
    ev.ok(format!(
        "{judged} account(s) can log in by password; none keeps a published, empty or unforced build-time password"
    ));
    Ok(())
}

/// The case's own control: a throw-away account given a password of the
/// list is found through the inventory, and not once its password is a
/// random one.
fn the_comparison_finds_a_published_password(
    ev: &Evidence,
    list: &[default_passwords::Default],
) -> anyhow::Result<()> {
    let user = TestUser::create(ev)?;
    let (published, source) = sample_for(list, user.name())
        .ok_or_else(|| anyhow::anyhow!("the list has no entry for any account"))?;
    ev.step(format!(
        "control: {} is given a published default password ({source}), set as a hash with usermod -p (the quality policy would refuse it at chpasswd)",
        user.name()
    ));
    set_hash(ev, &user, &published)?;
    let found = |ev: &Evidence| -> anyhow::Result<bool> {
        let me = inventory::read(ev)?
            .into_iter()
            .find(|a| a.name == user.name())
            .ok_or_else(|| anyhow::anyhow!("{} is not in the inventory", user.name()))?;
        let hash = me
            .hash()
            .ok_or_else(|| anyhow::anyhow!("{} has no hash in the inventory", user.name()))?;
        Ok(published_match(&for_account(list, &me.name), &me.name, hash)?.is_some())
    };
    anyhow::ensure!(
        found(ev)?,
        "the comparison did not find the published password of {}: a check that cannot find one proves nothing",
        user.name()
    );
    ev.ok("found: the comparison sees a published password where there is one");
    set_hash(ev, &user, &format!("Fr1-{}", random_token(20)?))?;
    anyhow::ensure!(
        !found(ev)?,
        "the comparison found a random password of {} to be a published one",
        user.name()
    );
    ev.ok("with a random password the same account is not reported");
    Ok(())
}

/// Give `user` the hash of `password` (sha512crypt, a fresh salt) without
/// the PAM password stack.
fn set_hash(ev: &Evidence, user: &TestUser, password: &str) -> anyhow::Result<()> {
    let hash = crypt(password, &format!("$6${}$", random_token(16)?))?;
    run_ok(
        ev,
        Command::new("usermod").args(["-p", &hash, user.name()]),
        None,
    )?;
    Ok(())
}

/// The violations of one account that can log in by password.
fn judge(
    ev: &Evidence,
    account: &Account,
    list: &[default_passwords::Default],
    installed: Option<i64>,
    today: i64,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let Some(hash) = account.hash() else {
        found.push(format!(
            "{} has an empty password field (no authenticator: Debian's pam_unix nullok asks for none); set a password or lock it",
            who(account)
        ));
        return Ok(found);
    };
    let candidates = for_account(list, &account.name);
    match published_match(&candidates, &account.name, hash)? {
        Some(default) => found.push(format!(
            "{} keeps a published default password ({}); change it",
            who(account),
            default.source
        )),
        None => ev.ok(format!(
            "{}: {}, none of the {} published defaults for it",
            who(account),
            account.password,
            candidates.len()
        )),
    }
    match (account.last_change, installed) {
        _ if account.must_change_password(today) => ev.ok(format!(
            "{}: the next login must change the password",
            who(account)
        )),
        (Some(last), Some(installed)) if last <= installed && installed < today => {
            found.push(format!(
                "the password of {} was set when the image was built (last change day {last}, base system installed day {installed}), never changed since, and the next login is not forced to change it: {FORCE_CHANGE}",
                who(account)
            ))
        }
        (Some(last), Some(installed)) if last == installed => ev.note(format!(
            "{}: password set on the day the base system was installed (today): a build-time password cannot be told from one changed later the same day; not judged",
            who(account)
        )),
        (last, _) => ev.ok(format!(
            "{}: password changed after the base system was installed (last change day {})",
            who(account),
            last.map_or_else(|| "unknown".to_owned(), |d| d.to_string())
        )),
    }
    Ok(found)
}

/// "name (UID n)".
fn who(account: &Account) -> String {
    format!("{} (UID {})", account.name, account.uid)
}

/// Why an account cannot log in by password.
fn why_not(account: &Account, today: i64) -> String {
    if !account.has_login_shell() {
        format!("shell {}", account.shell)
    } else if account.is_expired(today) {
        "account expired".to_owned()
    } else {
        account.password.to_string()
    }
}
