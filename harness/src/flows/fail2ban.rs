//! fail2ban as the image runs it: asking the running server, never
//! starting, stopping or reconfiguring it.
//!
//! Everything goes through `fail2ban-client`: whether the server answers,
//! what a jail watches and when it bans, which addresses it has banned. The
//! only change a test makes is lifting a ban it caused ([`Ban`]).

use crate::runtime::command::{find_program, run, run_ok, succeeds_quietly};
use crate::runtime::evidence::utc_text;
use crate::runtime::journal::{self, Undo};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

pub const CLIENT: &str = "fail2ban-client";

/// Is fail2ban installed?
pub fn installed() -> bool {
    find_program(CLIENT).is_some()
}

fn client(ev: &Evidence, args: &[&str]) -> Result<crate::runtime::command::Ran> {
    run(ev, Command::new(CLIENT).args(args), None)
}

/// Does a fail2ban server answer on its socket?
pub fn server_running(ev: &Evidence) -> Result<bool> {
    let r = client(ev, &["ping"])?;
    Ok(r.success && r.stdout.contains("pong"))
}

/// The jails the configuration enables (`fail2ban-client -d` parses the
/// configuration as the server would, without asking the server).
pub fn configured_jails(ev: &Evidence) -> Result<Vec<String>> {
    let r = client(ev, &["-d"])?;
    if !r.success {
        bail!(
            "fail2ban cannot read its configuration: {}",
            r.all_output().trim()
        );
    }
    Ok(parse_dump_jails(&r.stdout))
}

/// `['add', 'sshd', 'auto']` lines of a configuration dump.
fn parse_dump_jails(dump: &str) -> Vec<String> {
    dump.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("['add', '")?;
            Some(rest.split('\'').next()?.to_owned())
        })
        .collect()
}

/// What `fail2ban-client status JAIL` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JailStatus {
    /// Log files the jail reads (file backends).
    pub files: Vec<String>,
    /// Journal matches (systemd backend).
    pub journal_matches: Option<String>,
    pub banned: Vec<String>,
    pub total_failed: u64,
}

impl JailStatus {
    pub fn is_banned(&self, address: IpAddr) -> bool {
        let a = address.to_string();
        self.banned.contains(&a)
    }
}

/// The running jail's status; `None` when the server has no such jail.
pub fn status(ev: &Evidence, jail: &str) -> Result<Option<JailStatus>> {
    let r = client(ev, &["status", jail])?;
    if !r.success {
        return Ok(None);
    }
    Ok(Some(parse_status(&r.stdout)))
}

fn parse_status(text: &str) -> JailStatus {
    let mut s = JailStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim_start_matches(['|', '`', '-', ' ']).trim();
        let value = value.trim();
        match key {
            "File list" => s.files = value.split_whitespace().map(str::to_owned).collect(),
            "Journal matches" => s.journal_matches = Some(value.to_owned()),
            "Banned IP list" => s.banned = value.split_whitespace().map(str::to_owned).collect(),
            "Total failed" => s.total_failed = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    s
}

/// One setting of a running jail (`fail2ban-client get JAIL WHAT`), as
/// printed.
pub fn get(ev: &Evidence, jail: &str, what: &str) -> Result<String> {
    Ok(
        run_ok(ev, Command::new(CLIENT).args(["get", jail, what]), None)?
            .stdout
            .trim()
            .to_owned(),
    )
}

/// Whom a running jail never bans beyond the device itself: its
/// `ignoreip` entries other than loopback (a network or a host name), and
/// an `ignorecommand` (it decides per address: no reading of it can tell
/// whom it spares). `ignoreself` spares the device's own addresses only.
/// Each as `SETTING VALUE`.
pub fn exemptions(ev: &Evidence, jail: &str) -> Result<Vec<String>> {
    let mut found: Vec<String> = ignored_entries(&get(ev, jail, "ignoreip")?)
        .into_iter()
        .filter(|entry| !is_loopback_entry(entry))
        .map(|entry| format!("ignoreip {entry}"))
        .collect();
    let command = get(ev, jail, "ignorecommand")?;
    if !command.is_empty() && command != "None" {
        found.push(format!("ignorecommand {command}"));
    }
    Ok(found)
}

/// The entries of `fail2ban-client get JAIL ignoreip` output ("These IP
/// addresses/networks are ignored:" then `|- ENTRY` lines and a last
/// `` `- ENTRY ``; or "No IP address/network is ignored").
fn ignored_entries(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("|- ").or_else(|| l.strip_prefix("`- ")))
        .map(|e| e.trim().to_owned())
        .collect()
}

/// An `ignoreip` entry that spares only this machine's loopback: inside
/// 127.0.0.0/8, or ::1 alone.
fn is_loopback_entry(entry: &str) -> bool {
    let (address, prefix) = match entry.split_once('/') {
        Some((a, p)) => match p.parse::<u8>() {
            Ok(p) => (a, Some(p)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback() && prefix.is_none_or(|p| p >= 8),
        Ok(IpAddr::V6(a)) => a.is_loopback() && prefix.is_none_or(|p| p == 128),
        Err(_) => entry == "localhost",
    }
}

/// A numeric setting (`maxretry`, `findtime`, `bantime`).
pub fn get_number(ev: &Evidence, jail: &str, what: &str) -> Result<i64> {
    let text = get(ev, jail, what)?;
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("fail2ban-client get {jail} {what}: unexpected {text:?}"))
}

/// The window in which a ban must hold: fail2ban bans an address for
/// `bantime` seconds from the moment it bans it, and it cannot ban before
/// the first failure that earns the ban. So a ban lasts at least until
/// that failure's start + `bantime`, whenever the suite notices it; a
/// check after that moment that finds the address free says nothing
/// (the ban may have run out on a slow target). A negative `bantime` bans
/// for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanWindow {
    /// The earliest moment the ban may end by itself; `None`: never.
    pub holds_until: Option<SystemTime>,
}

impl BanWindow {
    /// For failures that started at `first_failure`, with the jail's `bantime`.
    pub fn new(first_failure: SystemTime, bantime: i64) -> Self {
        BanWindow {
            holds_until: u64::try_from(bantime)
                .ok()
                .map(|secs| first_failure + Duration::from_secs(secs)),
        }
    }

    /// Must the ban still hold for a check that ended at `checked`?
    /// When not, the reason to report the check as not made.
    pub fn must_hold(&self, checked: SystemTime) -> Result<(), String> {
        match self.holds_until {
            Some(until) if checked >= until => Err(format!(
                "the check ended at {}, after the ban may have run out by itself ({}, bantime counted from the first failure): the target was too slow for it",
                utc_text(checked),
                utc_text(until)
            )),
            _ => Ok(()),
        }
    }
}

/// What it took to get an address banned ([`provoke_ban`]).
#[derive(Debug, Clone)]
pub struct Provoked {
    /// Failed logins made.
    pub failures: i64,
    /// From the first failure to the ban being listed.
    pub took: Duration,
    /// How long the ban must hold.
    pub window: BanWindow,
}

/// How long a server that dropped a connection before asking anything
/// (OpenSSH's own PerSourcePenalties refuse a failing source for a while)
/// is given before the next attempt.
const DROPPED_PAUSE: Duration = Duration::from_secs(3);

/// Fail logins from `address` (`fail_once` makes one, with a wrong
/// password) until `jail` lists the address as banned: at most `maxretry`
/// refused logins, then up to `ban_timeout` for fail2ban to act, counted
/// from the later of the last failure and the last time fail2ban's own
/// count of failures rose (a loaded target reads its log late: the wait
/// runs from what fail2ban has seen, not from what was sent; at most
/// `COUNTING_WINDOWS` of them after the last failure). A connection
/// the server drops before it decides (its own penalty on a failing
/// source) is no failed login: it is tried again after a pause. An error
/// when no ban comes, naming how many failures were made and whether
/// fail2ban counted any of them.
pub fn provoke_ban(
    ev: &Evidence,
    jail: &str,
    address: IpAddr,
    maxretry: i64,
    bantime: i64,
    ban_timeout: Duration,
    mut fail_once: impl FnMut() -> Result<crate::flows::dialogue::Attempt>,
) -> Result<Provoked> {
    let started = Instant::now();
    let window = BanWindow::new(SystemTime::now(), bantime);
    let mut counted = FailureCount::new(quiet_status(jail).map(|s| s.total_failed));
    let mut failures = 0;
    let (mut last_failure, mut last_counted) = (Instant::now(), Instant::now());
    loop {
        let status = quiet_status(jail);
        if status.as_ref().is_some_and(|s| s.is_banned(address)) {
            if failures > maxretry {
                ev.note(format!(
                    "banned after {failures} failures, more than maxretry={maxretry}: fail2ban did not count every failed login (a jail that matches the journal by unit can miss the lines of a short-lived sshd-session on a busy device)"
                ));
            }
            return Ok(Provoked {
                failures,
                took: started.elapsed(),
                window,
            });
        }
        if counted.rose_to(status.map(|s| s.total_failed)) {
            last_counted = Instant::now();
        }
        // Other sources' failures also raise the count (a device on a
        // network): past a few windows after the last failure made, the
        // wait ends whatever the count does.
        if last_failure.max(last_counted).elapsed() > ban_timeout
            || last_failure.elapsed() > ban_timeout * COUNTING_WINDOWS
        {
            bail!(
                "after {failures} failed ssh logins from {address} (maxretry={maxretry}), fail2ban had not banned it {} s after the last of them: {}",
                last_failure.elapsed().as_secs(),
                counted.describe()
            );
        }
        if failures >= maxretry {
            // fail2ban may not see every failure: under load journald can
            // store an sshd-session line after the process has gone,
            // without the unit the jail's journalmatch selects. Once its
            // count has settled without a ban, one more failure at a time,
            // up to twice maxretry; the evidence says how many it took.
            let settled = last_failure.max(last_counted).elapsed() > ban_timeout / SETTLED_PARTS;
            if failures >= maxretry * 2 || !settled {
                crate::runtime::deadline::sleep(Duration::from_millis(500));
                continue;
            }
            ev.note(format!(
                "{address} is not banned {} s after {failures} failures (maxretry={maxretry}) and fail2ban's count has settled ({}): one more failure, in case fail2ban did not see one of them",
                last_failure.elapsed().as_secs(),
                counted.describe()
            ));
        }
        match fail_once() {
            Ok(attempt) => {
                attempt.assert_refused()?;
                failures += 1;
                last_failure = Instant::now();
            }
            // Out of time, a missing program, or the run stopping: no
            // dropped connection, so no second try.
            Err(e)
                if e.is::<crate::runtime::deadline::TimeLimit>()
                    || e.is::<crate::runtime::case::Skip>()
                    || crate::runtime::deadline::stopped() =>
            {
                return Err(e)
            }
            Err(e) => {
                ev.note(format!(
                    "the connection from {address} ended before sshd decided ({e:#}); tried again in {} s",
                    DROPPED_PAUSE.as_secs()
                ));
                crate::runtime::deadline::sleep(DROPPED_PAUSE);
            }
        }
    }
}

/// After `ban_timeout / SETTLED_PARTS` without a ban or a rise of the
/// count, fail2ban is taken to have counted all it will of the failures
/// made so far.
const SETTLED_PARTS: u32 = 3;

/// At most this many `ban_timeout`s after the last failure made, however
/// long fail2ban keeps counting.
const COUNTING_WINDOWS: u32 = 4;

/// The jail's "Total failed" while failures are provoked: whether
/// fail2ban is still working through them, and what it saw in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FailureCount {
    before: Option<u64>,
    now: Option<u64>,
}

impl FailureCount {
    fn new(before: Option<u64>) -> Self {
        FailureCount {
            before,
            now: before,
        }
    }

    /// Records a new reading; true when the count rose since the last one.
    fn rose_to(&mut self, reading: Option<u64>) -> bool {
        let rose = matches!((self.now, reading), (Some(old), Some(new)) if new > old)
            || (self.now.is_none() && reading.is_some());
        if reading.is_some() {
            self.now = reading;
        }
        rose
    }

    fn describe(&self) -> String {
        match (self.before, self.now) {
            (Some(before), Some(now)) if now > before => format!(
                "it counted {} failure(s) meanwhile (Total failed {before} -> {now}) but banned nobody for them",
                now - before
            ),
            (Some(before), Some(_)) => format!(
                "it counted none of them (Total failed stayed {before}): the jail does not see sshd's failures (its log source or filter)"
            ),
            _ => "its server did not answer `fail2ban-client status`".to_owned(),
        }
    }
}

/// The names of the jail's actions (`nftables`, `iptables-multiport`, …).
pub fn actions(ev: &Evidence, jail: &str) -> Result<Vec<String>> {
    let text = get(ev, jail, "actions")?;
    // "The jail sshd has the following actions:\nnftables"
    Ok(text
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect())
}

/// A property of one of the jail's actions (`port`, `type`), if it has it.
pub fn action_property(ev: &Evidence, jail: &str, action: &str, property: &str) -> Option<String> {
    let r = client(ev, &["get", jail, "action", action, property]).ok()?;
    (r.success && !r.stdout.trim().is_empty()).then(|| r.stdout.trim().to_owned())
}

/// The TCP port an action's `port` property names first (`ssh`, `22`,
/// `ssh,2222`, `1000:2000`), service names looked up in /etc/services.
pub fn first_port(property: &str) -> Option<u16> {
    let first = property.split(',').next()?.trim();
    let first = first.split([':', '-']).next()?.trim();
    if let Ok(n) = first.parse() {
        return Some(n);
    }
    let services = std::fs::read_to_string("/etc/services").ok()?;
    service_port(&services, first)
}

fn service_port(services: &str, name: &str) -> Option<u16> {
    services.lines().find_map(|l| {
        let l = l.split('#').next()?;
        let mut words = l.split_whitespace();
        let service = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        let aliases: Vec<&str> = words.collect();
        ((service == name || aliases.contains(&name)) && proto == "tcp")
            .then(|| port.parse().ok())
            .flatten()
    })
}

/// How long fail2ban may still take to ban an address after the failures
/// that earn the ban were logged: it reads its log file about once a
/// second (polling backend), then runs one firewall action; more under load.
pub const LATE_BAN: Duration = Duration::from_secs(5);

/// Is `address` banned in `jail` now, or within `within` (a ban fail2ban
/// is still about to make from failures already logged)? Asks
/// `fail2ban-client status` quietly, without evidence: the journal's
/// replay uses it too. No answer from the server counts as no ban.
pub fn banned_within(jail: &str, address: &str, within: Duration) -> bool {
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let deadline = Instant::now() + within;
    loop {
        let Some(status) = quiet_status(jail) else {
            return false;
        };
        if status.is_banned(address) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `fail2ban-client status JAIL`, quietly (no evidence, for polling loops
/// and the journal's replay); `None` when the server does not answer.
fn quiet_status(jail: &str) -> Option<JailStatus> {
    let out = Command::new(CLIENT)
        .args(["status", jail])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_status(&String::from_utf8_lossy(&out.stdout)))
}

/// The lines of `text` that name the IPv4 `address` as a whole word (in a
/// log line, an nftables set element; `198.18.0.5:22` names it too), trimmed.
pub fn lines_naming(text: &str, address: IpAddr) -> Vec<String> {
    let a = address.to_string();
    text.lines()
        .filter(|l| {
            l.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|w| w == a)
        })
        .map(|l| l.trim().to_owned())
        .collect()
}

/// What the jail read about `address`: a note per log file (`files`, from
/// [`JailStatus::files`]), or for a jail that reads the journal the
/// journal's last 10 minutes, with how many of its lines name the address
/// and the last 20 of them (fail2ban's own lines about it included: what
/// it found, whether it banned). A source that cannot be read counts as
/// empty.
pub fn note_log_lines(ev: &Evidence, status: &JailStatus, address: IpAddr) {
    let mut sources: Vec<(String, String)> = status
        .files
        .iter()
        .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap_or_default()))
        .collect();
    // fail2ban's own log, where it is a file (Debian's default logtarget).
    let own = "/var/log/fail2ban.log";
    if std::path::Path::new(own).is_file() && !status.files.iter().any(|f| f == own) {
        sources.push((
            own.to_owned(),
            std::fs::read_to_string(own).unwrap_or_default(),
        ));
    }
    if status.journal_matches.is_some() {
        let journal = Command::new("journalctl")
            .args([
                "--no-pager",
                "-q",
                "-o",
                "short-precise",
                "--since",
                "-10min",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        sources.push(("the journal (last 10 min)".to_owned(), journal));
    }
    for (name, text) in sources {
        let lines = lines_naming(&text, address);
        let mut block = format!("{name}: {} line(s) about {address}", lines.len());
        for l in lines.iter().rev().take(20).rev() {
            block.push_str("\n  | ");
            block.push_str(l);
        }
        ev.note(block);
    }
}

/// Is `nft` installed, so that the ruleset a ban action changes can be shown?
pub fn nft_installed() -> bool {
    find_program("nft").is_some()
}

/// The nftables ruleset's lines that name `address`, once the ruleset
/// holds it (`present`) or no longer does, or `within` has passed: fail2ban
/// lists a ban (or its end) before its action has changed the firewall.
/// Polled quietly ([`list_ruleset_unwatched`]); the last look, with
/// `nft list ruleset` in the evidence, is what is returned.
pub fn ruleset_lines_naming(
    ev: &Evidence,
    address: IpAddr,
    present: bool,
    within: Duration,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let out = list_ruleset_unwatched()?;
        let found = !lines_naming(&String::from_utf8_lossy(&out.stdout), address).is_empty();
        if found == present {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rules = run_ok(ev, Command::new("nft").args(["list", "ruleset"]), None)?.stdout;
    Ok(lines_naming(&rules, address))
}

/// `nft list ruleset`, run directly as a child of the suite with a plain
/// `Command`: no evidence entry (it is polled several times a second) and,
/// deliberately, no deadline, unlike every [`crate::runtime::command::run`].
///
/// The acceptance test `time_limit.rs`
/// (`a_case_stuck_beyond_the_harness_stops_the_run_which_still_undoes_everything`)
/// depends on exactly this call: it makes `nft list ruleset` hang when its
/// parent is the suite, so that TC_CR1.11_3 gets stuck where the harness
/// cannot cut it and the runner's backstop must stop the run. Routing this
/// call through a watched wait, or through a shell, would leave that test
/// without a stuck case.
fn list_ruleset_unwatched() -> Result<std::process::Output> {
    Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .context("running nft list ruleset")
}

/// A ban a test caused: lifted again when dropped (if still in place).
pub struct Ban {
    jail: String,
    address: IpAddr,
    lifted: bool,
    journal: journal::Entry,
    ev: Evidence,
}

impl Ban {
    /// Take responsibility for `address` being banned in `jail` (call it
    /// before provoking the ban, so a failure half-way, or an interrupted
    /// run through the undo journal, still lifts it).
    pub fn expect(ev: &Evidence, jail: &str, address: IpAddr) -> Result<Self> {
        let journal = journal::record(&Undo::Unban {
            jail: jail.to_owned(),
            address: address.to_string(),
        })?;
        Ok(Ban {
            jail: jail.to_owned(),
            address,
            lifted: false,
            journal,
            ev: ev.clone(),
        })
    }

    /// The ban ended by itself (its `bantime` ran out): nothing to lift.
    pub fn ran_out(&mut self) {
        self.lifted = true;
        self.journal.done();
    }

    /// `fail2ban-client set JAIL unbanip ADDRESS`.
    pub fn lift(&mut self) -> Result<()> {
        self.lifted = true;
        run_ok(
            &self.ev,
            Command::new(CLIENT).args(["set", &self.jail, "unbanip", &self.address.to_string()]),
            None,
        )?;
        self.journal.done();
        Ok(())
    }
}

impl Drop for Ban {
    fn drop(&mut self) {
        if self.lifted {
            return;
        }
        // The case may have ended before the ban it provoked (it failed
        // half-way): the failures it logged may still earn one.
        if banned_within(&self.jail, &self.address.to_string(), LATE_BAN) {
            match self.lift() {
                Ok(()) => self.ev.cleanup(format!(
                    "lifted the ban of {} in jail {}",
                    self.address, self.jail
                )),
                Err(e) => self.ev.cleanup(format!(
                    "FAILED to lift the ban of {} in jail {}: {e:#}",
                    self.address, self.jail
                )),
            }
        }
        // Only now: a run killed during the wait above leaves the ban to
        // the journal's replay. A ban that could not be lifted is in the
        // evidence; the replay would not fare better.
        self.journal.done();
    }
}

/// The journal's undo of [`Undo::Unban`] after a killed run: lift the ban,
/// waiting for one that is still due ([`LATE_BAN`]). Says what it did.
pub(crate) fn lift_leftover_ban(jail: &str, address: &str) -> Result<Option<String>> {
    let lifted = banned_within(jail, address, LATE_BAN)
        && succeeds_quietly(
            Command::new("fail2ban-client").args(["set", jail, "unbanip", address]),
        );
    Ok(lifted.then(|| format!("lifted the ban of {address} in fail2ban jail {jail}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ignoreip_spares_only_loopback_or_names_what_else_it_spares() {
        use super::{ignored_entries, is_loopback_entry};
        let text = "These IP addresses/networks are ignored:\n|- 127.0.0.1/8\n|- ::1\n|- 10.0.0.0/8\n|- localhost\n`- plant-gw.example";
        let entries = ignored_entries(text);
        assert_eq!(
            entries,
            [
                "127.0.0.1/8",
                "::1",
                "10.0.0.0/8",
                "localhost",
                "plant-gw.example"
            ]
        );
        let exempt: Vec<&String> = entries.iter().filter(|e| !is_loopback_entry(e)).collect();
        assert_eq!(exempt, ["10.0.0.0/8", "plant-gw.example"]);
        assert!(ignored_entries("No IP address/network is ignored").is_empty());
        // Wider than loopback, or not a prefix length.
        assert!(!is_loopback_entry("127.0.0.1/7"));
        assert!(!is_loopback_entry("::1/64"));
        assert!(!is_loopback_entry("127.0.0.1/255.0.0.0"));
    }

    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_ban_must_hold_for_bantime_from_the_first_failure() {
        let first = UNIX_EPOCH + Duration::from_secs(5000);
        let window = BanWindow::new(first, 600);
        assert!(window.must_hold(first + Duration::from_secs(599)).is_ok());
        let why = window
            .must_hold(first + Duration::from_secs(600))
            .unwrap_err();
        assert!(why.contains("too slow"), "{why}");
        let forever = BanWindow::new(first, -1);
        assert!(forever
            .must_hold(first + Duration::from_secs(1_000_000))
            .is_ok());
    }

    #[test]
    fn the_ban_wait_restarts_while_fail2ban_counts_failures() {
        let mut count = FailureCount::new(Some(6));
        assert!(!count.rose_to(Some(6)));
        assert!(
            count.describe().contains("counted none"),
            "{}",
            count.describe()
        );
        assert!(count.rose_to(Some(7)));
        assert!(!count.rose_to(None), "a missed reading is no progress");
        assert!(count.rose_to(Some(9)));
        assert!(count.describe().contains("6 -> 9"), "{}", count.describe());
        let mut silent = FailureCount::new(None);
        assert!(silent.describe().contains("did not answer"));
        assert!(silent.rose_to(Some(0)), "a server that answers again");
    }

    #[test]
    fn status_output_is_parsed() {
        let text = "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t1\n\
                    |  |- Total failed:\t6\n|  `- File list:\t/var/log/auth.log\n`- Actions\n\
                    \x20  |- Currently banned:\t1\n   |- Total banned:\t1\n\
                    \x20  `- Banned IP list:\t192.0.2.2 192.0.2.10\n";
        let s = parse_status(text);
        assert_eq!(s.files, ["/var/log/auth.log"]);
        assert_eq!(s.total_failed, 6);
        assert!(s.is_banned("192.0.2.2".parse().unwrap()));
        assert!(!s.is_banned("192.0.2.1".parse().unwrap()));
        assert_eq!(s.journal_matches, None);
        let j = parse_status("|  `- Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd\n");
        assert_eq!(
            j.journal_matches.as_deref(),
            Some("_SYSTEMD_UNIT=ssh.service + _COMM=sshd")
        );
    }

    #[test]
    fn ports_are_resolved() {
        let services = "ftp\t\t21/tcp\nssh\t\t22/tcp\t\t\t# SSH\nhttp\t80/tcp\t\twww\n";
        assert_eq!(service_port(services, "ssh"), Some(22));
        assert_eq!(service_port(services, "www"), Some(80));
        assert_eq!(service_port(services, "nope"), None);
        assert_eq!(first_port("2222,ssh"), Some(2222));
        assert_eq!(first_port("1000:2000"), Some(1000));
    }

    #[test]
    fn lines_name_an_address_only_as_a_whole_word() {
        let address: IpAddr = "198.18.0.5".parse().unwrap();
        let text = "  elements = { 198.18.0.5 }\nfrom 198.18.0.50 port 22\nFailed password from 198.18.0.5:4711\n";
        assert_eq!(
            lines_naming(text, address),
            [
                "elements = { 198.18.0.5 }",
                "Failed password from 198.18.0.5:4711"
            ]
        );
    }

    #[test]
    fn enabled_jails_are_read_from_the_dump() {
        let dump = "['set', 'loglevel', 'INFO']\n['add', 'sshd', 'auto']\n['set', 'sshd', 'maxretry', 5]\n['add', 'recidive', 'polling']\n";
        assert_eq!(parse_dump_jails(dump), ["sshd", "recidive"]);
    }
}
