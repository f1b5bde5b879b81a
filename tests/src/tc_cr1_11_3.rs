//! TC_CR1.11_3 — CR1.11 unsuccessful login attempts, remote ban.
//!
//! Proves: with the image's fail2ban configuration, as the running fail2ban
//! applies it, repeated failed ssh logins from one address get that address
//! banned: `fail2ban-client status sshd` lists it, the nftables ruleset
//! holds it, and a new connection from it to the port the jail protects is
//! refused, while another address still connects and logs in. The ban is
//! lifted again (`fail2ban-client set sshd unbanip`) and the address
//! connects again.
//!
//! Set-up on a single node: a network namespace of the test's own, joined by
//! a veth pair (TEST-NET-1 addresses that stay on this machine), plays the
//! remote host with two addresses. A private sshd with the system's policy
//! and PAM stack also listens on this host's end of the pair and logs
//! through syslog like the system sshd, so the jail reads its failures from
//! the log it watches. The test never starts, stops or reconfigures
//! fail2ban; it only lifts the ban it caused.
//!
//! Negative control: profile `fail2ban-jail-disabled` (the sshd jail set to
//! `enabled = false`) — nothing is banned.

use anyhow::{bail, Context};
use harness::case::skip;
use harness::command::{find_program, run_ok};
use harness::fail2ban::{self, Ban, BanWindow};
use harness::netns::PeerNamespace;
use harness::password::strong_password;
use harness::ssh::{ssh_prompts_via, Route};
use harness::{Case, Evidence, PrivateSshd, TestUser};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

pub const CASE: Case = Case::met(
    "TC_CR1.11_3",
    "CR1.11",
    "Unsuccessful login attempts (remote ban)",
    "repeated failed ssh logins from one address get it banned by fail2ban (status and nftables); it is refused while another address still works; the ban is lifted afterwards",
    run,
)
// About 15 s of ssh failure delays and waiting for the ban: started
// early (see Case::slow).
.uses(&["fail2ban"])
.slow();

const JAIL: &str = "sshd";
/// How long fail2ban may take to act on the last failure: it reads its log
/// file at least once a second (polling backend), and a ban is one nft call.
const BAN_TIMEOUT: Duration = Duration::from_secs(30);
/// fail2ban lists a ban (or its end) before its action has changed the
/// firewall: how long the ruleset may lag behind.
const ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection attempt that neither connects nor is refused in this time
/// counts as refused (a ban that drops instead of rejecting).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    if !fail2ban::installed() {
        return skip("fail2ban is not installed (package fail2ban)");
    }
    ev.step("the image's fail2ban configuration, and the running server");
    let jails = fail2ban::configured_jails(ev)?;
    if !jails.iter().any(|j| j == JAIL) {
        bail!(
            "fail2ban's configuration does not enable the {JAIL} jail (enabled jails: {jails:?}): failed ssh logins never get an address banned"
        );
    }
    if !fail2ban::server_running(ev)? {
        bail!(
            "the {JAIL} jail is configured but fail2ban is not running (on a systemd image see `systemctl status fail2ban`; fail2ban does not start when a jail's log file is missing)"
        );
    }
    let Some(status) = fail2ban::status(ev, JAIL)? else {
        bail!("fail2ban runs but its {JAIL} jail is not active");
    };
    if let Some(matches) = &status.journal_matches {
        // Not a skip: the remote ban is a Met requirement, and its
        // evidence is missing on such an image.
        bail!(
            "the {JAIL} jail reads the systemd journal (matches: {matches}); this case provokes the failures through a private sshd, which runs outside ssh.service, so the jail never sees them and the ban cannot be shown (a file-backed jail, e.g. /var/log/auth.log, is checked)"
        );
    }
    let maxretry = fail2ban::get_number(ev, JAIL, "maxretry")?;
    let findtime = fail2ban::get_number(ev, JAIL, "findtime")?;
    let bantime = fail2ban::get_number(ev, JAIL, "bantime")?;
    ev.note(format!(
        "jail {JAIL}: reads {}; maxretry={maxretry} findtime={findtime} s bantime={bantime} s",
        status.files.join(", ")
    ));
    if maxretry < 1 {
        bail!("the {JAIL} jail has maxretry={maxretry}");
    }
    let actions = fail2ban::actions(ev, JAIL)?;
    let Some(action) = actions.first() else {
        bail!("the {JAIL} jail has no action: it bans nobody");
    };
    let all_ports =
        fail2ban::action_property(ev, JAIL, action, "type").is_some_and(|t| t == "allports");
    let port_property = fail2ban::action_property(ev, JAIL, action, "port");
    ev.note(format!(
        "jail {JAIL}: actions {actions:?}; {action} blocks {}",
        if all_ports {
            "every port".to_owned()
        } else {
            format!("port(s) {}", port_property.as_deref().unwrap_or("?"))
        }
    ));

    let net = PeerNamespace::create(ev)?;
    let host = net.host_address();
    let [banned, other] = net.client_addresses();
    let sshd = PrivateSshd::builder()
        .listen_also(IpAddr::V4(host))
        .log_to_syslog()
        // OpenSSH >= 9.8 would itself refuse the failing address for a while
        // (PerSourcePenalties) and log that instead of authentication
        // failures. This private sshd is ours; the ban under test is
        // fail2ban's.
        .option_if_supported(
            "PerSourcePenaltyExemptList",
            format!("127.0.0.1,{}", net.subnet()),
        )
        .start(ev)?;
    // The port the ban must close: the jail's (the system sshd's), or with
    // an all-ports action any port, e.g. the private sshd's.
    let port = if all_ports {
        sshd.port()
    } else {
        let text = port_property.unwrap_or_else(|| "ssh".to_owned());
        fail2ban::first_port(&text).with_context(|| {
            format!(
                "cannot resolve the jail's port {text:?}: /etc/services has no such service (package netbase), so nft cannot resolve it either and the ban action fails"
            )
        })?
    };
    let _listener = listener_on(ev, host, port)?;
    let target = SocketAddrV4::new(host, port);

    ev.step(format!(
        "before any ban: {banned} and {other} both connect to {target}"
    ));
    for from in [banned, other] {
        if let Err(e) = net.try_connect(from, target, CONNECT_TIMEOUT)? {
            bail!("{from} cannot connect to {target} before any ban ({e}): the test network does not work");
        }
    }
    ev.ok(format!("{banned} and {other} connect to {target}"));

    let attacked = TestUser::create(ev)?;
    let visitor = TestUser::create(ev)?;
    let wrong = strong_password()?;
    let mut ban = Ban::expect(ev, JAIL, IpAddr::V4(banned))?;
    let from_banned = Route {
        netns: Some(net.name().to_owned()),
        from: Some(IpAddr::V4(banned)),
        to: Some(IpAddr::V4(host)),
    };
    ev.step(format!(
        "failed ssh logins from {banned} as {} (wrong password), until fail2ban bans {banned} (maxretry={maxretry})",
        attacked.name()
    ));
    let started = Instant::now();
    let window = BanWindow::new(SystemTime::now(), bantime);
    let mut failures = 0;
    let mut is_banned = false;
    while failures < maxretry && !is_banned {
        ssh_prompts_via(ev, &sshd, &from_banned, attacked.name(), &[&wrong])?.assert_refused()?;
        failures += 1;
        is_banned = banned_now(ev, banned)?;
    }
    let deadline = Instant::now() + BAN_TIMEOUT;
    while !is_banned && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        is_banned = banned_now(ev, banned)?;
    }
    note_log_lines(ev, &status.files, banned);
    if !is_banned {
        bail!(
            "after {failures} failed ssh logins from {banned}, fail2ban did not ban it within {} s",
            BAN_TIMEOUT.as_secs()
        );
    }
    ev.ok(format!(
        "fail2ban-client status {JAIL} lists {banned} as banned, {:.1} s after the first of {failures} failed logins",
        started.elapsed().as_secs_f64()
    ));
    if find_program("nft").is_some() {
        // fail2ban lists a ban before its action has run.
        let rules = ruleset_once(ev, banned, true)?;
        if !rules.is_empty() {
            ev.ok(format!(
                "the nftables ruleset holds {banned}: {}",
                rules.join(" | ")
            ));
        } else if let Err(why) = window.must_hold(SystemTime::now()) {
            ev.note(format!("check of the ruleset while banned not made: {why}"));
        } else {
            bail!(
                "fail2ban lists {banned} as banned, but {} s later the nftables ruleset still does not contain it",
                ACTION_TIMEOUT.as_secs()
            );
        }
    } else {
        ev.note("nft is not installed: the ruleset cannot be shown");
    }

    ev.step(format!(
        "while banned: {banned} is refused at {target}; {other} still connects and logs in"
    ));
    match net.try_connect(banned, target, CONNECT_TIMEOUT)? {
        Ok(()) => match window.must_hold(SystemTime::now()) {
            Err(why) => ev.note(format!("check of the refusal while banned not made: {why}")),
            Ok(()) => bail!("{banned} is listed as banned but still connects to {target}"),
        },
        Err(e) => ev.ok(format!("{banned} -> {target}: refused ({e})")),
    }
    if let Err(e) = net.try_connect(other, target, CONNECT_TIMEOUT)? {
        bail!("the ban of {banned} also cut {other} off ({e}): it is not specific to the address");
    }
    let from_other = Route {
        from: Some(IpAddr::V4(other)),
        ..from_banned.clone()
    };
    ssh_prompts_via(
        ev,
        &sshd,
        &from_other,
        visitor.name(),
        &[visitor.password()],
    )?
    .assert_shell_as(visitor.name())?;
    ev.ok(format!(
        "{other} still connects to {target} and logs in over ssh with the right password"
    ));

    ev.step(format!("lift the ban of {banned}"));
    if !banned_now(ev, banned)? && window.must_hold(SystemTime::now()).is_err() {
        // Nothing left to lift; unbanip would refuse an address not banned.
        ban.ran_out();
        ev.note(format!(
            "the ban of {banned} had run out by itself (bantime={bantime} s)"
        ));
    } else {
        ban.lift()?;
    }
    if banned_now(ev, banned)? {
        bail!("{banned} is still banned after unbanip");
    }
    if find_program("nft").is_some() && !ruleset_once(ev, banned, false)?.is_empty() {
        bail!("the nftables ruleset still holds {banned} after unbanip");
    }
    if let Err(e) = net.try_connect(banned, target, CONNECT_TIMEOUT)? {
        bail!("{banned} still cannot connect to {target} after unbanip ({e})");
    }
    ev.ok(format!(
        "after unbanip {banned} is no longer listed, not in the ruleset, and connects again"
    ));
    Ok(())
}

fn banned_now(ev: &Evidence, address: Ipv4Addr) -> anyhow::Result<bool> {
    Ok(fail2ban::status(ev, JAIL)?.is_some_and(|s| s.is_banned(IpAddr::V4(address))))
}

/// The ruleset lines that hold `address`, once it holds it (`present`) or
/// no longer does, or ACTION_TIMEOUT has passed. Polled quietly; the last
/// look goes into the evidence.
fn ruleset_once(ev: &Evidence, address: Ipv4Addr, present: bool) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + ACTION_TIMEOUT;
    while Instant::now() < deadline {
        let out = Command::new("nft").args(["list", "ruleset"]).output()?;
        let found = !lines_with(&String::from_utf8_lossy(&out.stdout), address).is_empty();
        if found == present {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let rules = run_ok(ev, Command::new("nft").args(["list", "ruleset"]), None)?.stdout;
    Ok(lines_with(&rules, address))
}

/// The lines of `text` that name `address` as a whole word.
fn lines_with(text: &str, address: Ipv4Addr) -> Vec<String> {
    let a = address.to_string();
    text.lines()
        .filter(|l| {
            l.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .any(|w| w == a)
        })
        .map(|l| l.trim().to_owned())
        .collect()
}

/// Something must listen on the protected port at this host's end of the
/// pair, or "refused" would prove nothing. The system sshd may (it listens
/// on every address); otherwise the test listens there itself, on its own
/// address only, until it ends.
fn listener_on(ev: &Evidence, host: Ipv4Addr, port: u16) -> anyhow::Result<Option<TcpListener>> {
    match TcpListener::bind((host, port)) {
        Ok(l) => {
            ev.note(format!(
                "nothing listened on {host}:{port}; the test listens there itself (a plain TCP socket on its own address, closed at the end)"
            ));
            Ok(Some(l))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            ev.note(format!(
                "{host}:{port} is served already (the system sshd listens on all addresses)"
            ));
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {host}:{port}")),
    }
}

/// The lines of the jail's log files about `address`: what fail2ban read.
fn note_log_lines(ev: &Evidence, files: &[String], address: Ipv4Addr) {
    let a = address.to_string();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines = lines_with(&text, address);
        let mut block = format!("{f}: {} line(s) about {a}", lines.len());
        for l in lines.iter().rev().take(20).rev() {
            block.push_str("\n  | ");
            block.push_str(l);
        }
        ev.note(block);
    }
}
