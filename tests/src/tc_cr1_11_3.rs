//! TC_CR1.11_3 — CR1.11 unsuccessful login attempts, remote ban.
//!
//! Proves: with the image's fail2ban configuration, as the running fail2ban
//! applies it, repeated failed ssh logins to the device's own sshd from one
//! address get that address banned: `fail2ban-client status sshd` lists it,
//! the nftables ruleset holds it, and a new connection from it to every
//! port the device's sshd listens on is refused, while another address
//! still connects and logs in. The ban is lifted again (`fail2ban-client
//! set sshd unbanip`) and the address connects again. And the running jail
//! spares nobody else: its `ignoreip` holds loopback at most and it has no
//! `ignorecommand` (evaluated: the suite never connects from elsewhere).
//!
//! Set-up on a single node: a network namespace of the test's own, joined by
//! a veth pair (benchmarking addresses, 198.18.0.0/15, that stay on this
//! machine), plays the remote host with two addresses. The failures go to the device's own
//! sshd (ssh.service: its real ports, PAM stack and Match blocks), so they
//! reach the jail through the jail's own log source, a file or the journal.
//! The test never starts, stops, edits or reconfigures sshd or fail2ban;
//! it only lifts the ban it caused, with throw-away accounts. `maxretry`
//! failures are made; when fail2ban's count has settled without a ban, one
//! more at a time, up to twice `maxretry` (a jail that matches the journal
//! by unit can miss a short-lived sshd-session's lines on a busy device),
//! and the evidence says how many the ban took.
//!
//! Negative controls: profiles `fail2ban-jail-disabled` (the sshd jail set
//! to `enabled = false`: nothing is banned), `fail2ban-jail-blind` (the
//! jail reads a log sshd never writes to: it counts no failure),
//! `fail2ban-removed` (not demonstrated, never skipped) and
//! `sshd-port-unprotected` (sshd also listens on a port the ban leaves
//! open), `second-sshd-instance` (a second sshd of its own configuration
//! on a port the ban leaves open), `fail2ban-ignoreip-private-ranges` (the
//! jail's `ignoreip` spares the private address ranges).

use anyhow::{bail, Context};
use harness::actors::netns::PeerNamespace;
use harness::flows::device_sshd::{list, DeviceSshd};
use harness::flows::fail2ban::{self, Ban, BanWindow, JailStatus};
use harness::flows::ssh::{ssh_prompts_via, ssh_prompts_within, Route};
use harness::runtime::case::skip;
use harness::runtime::password::strong_password;
use harness::{Case, Control, Evidence, TestUser};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime};

pub const CASE: Case = Case::met(
    "TC_CR1.11_3",
    "CR1.11",
    "Unsuccessful login attempts (remote ban)",
    "repeated failed ssh logins from one address get it banned by fail2ban (status and nftables); it is refused while another address still works; the ban is lifted afterwards; the running jail spares no address but the device's own",
    run,
)
.fails_under(&[
    Control::Profile("fail2ban-jail-disabled"),
    Control::Profile("fail2ban-jail-blind"),
    Control::Profile("fail2ban-removed"),
    Control::Profile("sshd-port-unprotected"),
    Control::Profile("second-sshd-instance"),
    Control::Profile("fail2ban-ignoreip-private-ranges"),
])
// About 15 s of ssh failure delays and waiting for the ban: started
// early (see Case::slow).
.uses(&["fail2ban"])
.slow();

const JAIL: &str = "sshd";
/// How long fail2ban may take to act on the last failure it saw: it reads
/// its log at least once a second, and a ban is one nft call. Counted from
/// the later of the last failure and the last rise of the jail's own
/// failure count, so a target that reads its log late is waited for.
const BAN_TIMEOUT: Duration = Duration::from_secs(30);
/// fail2ban lists a ban (or its end) before its action has changed the
/// firewall: how long the ruleset may lag behind.
const ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// A failing login the ban cuts off half-way (its client's packets are
/// rejected from then on) never ends by itself: how long it is waited for.
/// (sshd keeps its side of it until the test network's removal ends it.)
/// A refusal over ssh takes about 2-3 s, 8 s under QEMU without KVM.
const CUT_OFF_ATTEMPT: Duration = Duration::from_secs(15);
/// A connection attempt that neither connects nor is refused in this time
/// counts as refused (a ban that drops instead of rejecting).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    if !fail2ban::installed() {
        return skip("fail2ban is not installed (package fail2ban)");
    }
    ev.step("the image's fail2ban configuration, and the running server");
    let jail = running_jail(ev)?;
    check_ban_action(ev)?;

    let net = PeerNamespace::create(ev)?;
    let (banned, other) = (net.client_addresses()[0], net.client_addresses()[1]);
    let sshd = DeviceSshd::find(ev, net.host_address())?;
    let targets = sshd.targets().to_vec();
    ev.step(format!(
        "before any ban: {banned} and {other} both connect to the device's sshd ({})",
        list(&targets)
    ));
    for target in &targets {
        for from in [banned, other] {
            if let Err(e) = net.try_connect(from, *target, CONNECT_TIMEOUT)? {
                bail!("{from} cannot connect to the device's sshd at {target} before any ban ({e}): the test network does not work");
            }
        }
    }
    ev.ok(format!(
        "{banned} and {other} connect to {}",
        list(&targets)
    ));

    let attacked = TestUser::create(ev)?;
    let visitor = TestUser::create(ev)?;
    let mut ban = Ban::expect(ev, JAIL, IpAddr::V4(banned))?;
    let window = provoke_the_ban(ev, &jail, &net, &sshd, banned, &attacked)?;
    while_banned(ev, &net, &sshd, (banned, other), &visitor, window)?;
    lift_the_ban(ev, &net, &targets, banned, &mut ban, &jail, window)?;

    // Judged, never tried: the suite connects from its own test network
    // only.
    ev.step(format!(
        "whom the running {JAIL} jail never bans: ignoreip, ignorecommand (fail2ban-client get)"
    ));
    let exempt = fail2ban::exemptions(ev, JAIL)?;
    if !exempt.is_empty() {
        bail!(
            "the {JAIL} jail never bans some addresses beyond the device itself ({}): failed logins from there are never stopped",
            exempt.join("; ")
        );
    }
    ev.ok("it spares no address but the device's own (loopback, ignoreself)");
    Ok(())
}

/// The running jail as the test needs it.
struct Jail {
    status: JailStatus,
    maxretry: i64,
    bantime: i64,
}

/// The image's configuration enables the jail, the server runs it, and it
/// bans after at least one failure.
fn running_jail(ev: &Evidence) -> anyhow::Result<Jail> {
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
    let maxretry = fail2ban::get_number(ev, JAIL, "maxretry")?;
    let findtime = fail2ban::get_number(ev, JAIL, "findtime")?;
    let bantime = fail2ban::get_number(ev, JAIL, "bantime")?;
    ev.note(format!(
        "jail {JAIL}: reads {}; maxretry={maxretry} findtime={findtime} s bantime={bantime} s",
        match &status.journal_matches {
            Some(matches) => format!("the systemd journal ({matches})"),
            None => status.files.join(", "),
        }
    ));
    if maxretry < 1 {
        bail!("the {JAIL} jail has maxretry={maxretry}");
    }
    Ok(Jail {
        status,
        maxretry,
        bantime,
    })
}

/// The jail has an action, and the port it blocks is one the firewall can
/// resolve.
fn check_ban_action(ev: &Evidence) -> anyhow::Result<()> {
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
    if !all_ports {
        // A service name the firewall cannot resolve makes every ban
        // action fail, whatever fail2ban lists.
        let text = port_property.unwrap_or_else(|| "ssh".to_owned());
        fail2ban::first_port(&text).with_context(|| {
            format!(
                "cannot resolve the jail's port {text:?}: /etc/services has no such service (package netbase), so nft cannot resolve it either and the ban action fails"
            )
        })?;
    }
    Ok(())
}

/// Failed logins from `banned` until fail2ban lists it, then the nftables
/// ruleset holding it. The window in which the ban must hold.
fn provoke_the_ban(
    ev: &Evidence,
    jail: &Jail,
    net: &PeerNamespace,
    sshd: &DeviceSshd,
    banned: Ipv4Addr,
    attacked: &TestUser,
) -> anyhow::Result<BanWindow> {
    let wrong = strong_password()?;
    ev.step(format!(
        "failed ssh logins from {banned} to the device's sshd at {} as {} (wrong password), until fail2ban bans {banned} (maxretry={})",
        sshd.target(),
        attacked.name(),
        jail.maxretry
    ));
    let provoked = fail2ban::provoke_ban(
        ev,
        JAIL,
        IpAddr::V4(banned),
        jail.maxretry,
        jail.bantime,
        BAN_TIMEOUT,
        || {
            let route = route(net, sshd, banned);
            ssh_prompts_within(
                ev,
                sshd,
                &route,
                attacked.name(),
                &[&wrong],
                CUT_OFF_ATTEMPT,
            )
        },
    );
    fail2ban::note_log_lines(ev, &jail.status, IpAddr::V4(banned));
    let provoked = provoked?;
    ev.ok(format!(
        "fail2ban-client status {JAIL} lists {banned} as banned, {:.1} s after the first of {} failed logins",
        provoked.took.as_secs_f64(),
        provoked.failures
    ));
    let window = provoked.window;
    if !fail2ban::nft_installed() {
        ev.note("nft is not installed: the ruleset cannot be shown");
        return Ok(window);
    }
    let rules = fail2ban::ruleset_lines_naming(ev, IpAddr::V4(banned), true, ACTION_TIMEOUT)?;
    if !rules.is_empty() {
        ev.ok(format!(
            "the nftables ruleset holds {banned}: {}",
            rules.join(" | ")
        ));
        ev.timed("the ruleset holds the address while banned", Ok(()));
    } else if let Err(why) = window.must_hold(SystemTime::now()) {
        ev.timed("the ruleset holds the address while banned", Err(&why));
    } else {
        bail!(
            "fail2ban lists {banned} as banned, but {} s later the nftables ruleset still does not contain it",
            ACTION_TIMEOUT.as_secs()
        );
    }
    Ok(window)
}

/// `banned` is refused on every port; `other` still connects and logs in.
fn while_banned(
    ev: &Evidence,
    net: &PeerNamespace,
    sshd: &DeviceSshd,
    (banned, other): (Ipv4Addr, Ipv4Addr),
    visitor: &TestUser,
    window: BanWindow,
) -> anyhow::Result<()> {
    ev.step(format!(
        "while banned: {banned} is refused on every port the device's sshd listens on; {other} still connects and logs in"
    ));
    let targets = sshd.targets();
    for target in targets {
        match net.try_connect(banned, *target, CONNECT_TIMEOUT)? {
            Ok(()) => match window.must_hold(SystemTime::now()) {
                Err(why) => ev.timed(&format!("refused on port {} while banned", target.port()), Err(&why)),
                Ok(()) => bail!(
                    "{banned} is listed as banned but still connects to the device's sshd at {target}: the ban does not cover that port"
                ),
            },
            Err(e) => {
                ev.ok(format!("{banned} -> {target}: refused ({e})"));
                ev.timed(&format!("refused on port {} while banned", target.port()), Ok(()));
            }
        }
        if let Err(e) = net.try_connect(other, *target, CONNECT_TIMEOUT)? {
            bail!("the ban of {banned} also cut {other} off from {target} ({e}): it is not specific to the address");
        }
    }
    ssh_prompts_via(
        ev,
        sshd,
        &route(net, sshd, other),
        visitor.name(),
        &[visitor.password()],
    )?
    .assert_shell_as(visitor.name())?;
    ev.ok(format!(
        "{other} still connects to {} and logs in over ssh at {} with the right password",
        list(targets),
        sshd.target()
    ));
    Ok(())
}

/// `fail2ban-client set sshd unbanip`, unless the ban already ran out; the
/// address is then neither listed nor in the ruleset and connects again.
fn lift_the_ban(
    ev: &Evidence,
    net: &PeerNamespace,
    targets: &[SocketAddrV4],
    banned: Ipv4Addr,
    ban: &mut Ban,
    jail: &Jail,
    window: BanWindow,
) -> anyhow::Result<()> {
    ev.step(format!("lift the ban of {banned}"));
    if !banned_now(ev, banned)? && window.must_hold(SystemTime::now()).is_err() {
        // Nothing left to lift; unbanip would refuse an address not banned.
        ban.ran_out();
        ev.note(format!(
            "the ban of {banned} had run out by itself (bantime={} s)",
            jail.bantime
        ));
    } else {
        ban.lift()?;
    }
    if banned_now(ev, banned)? {
        bail!("{banned} is still banned after unbanip");
    }
    if fail2ban::nft_installed()
        && !fail2ban::ruleset_lines_naming(ev, IpAddr::V4(banned), false, ACTION_TIMEOUT)?
            .is_empty()
    {
        bail!("the nftables ruleset still holds {banned} after unbanip");
    }
    for target in targets {
        if let Err(e) = net.try_connect(banned, *target, CONNECT_TIMEOUT)? {
            bail!("{banned} still cannot connect to {target} after unbanip ({e})");
        }
    }
    ev.ok(format!(
        "after unbanip {banned} is no longer listed, not in the ruleset, and connects again"
    ));
    Ok(())
}

/// An ssh login from `from`, in the test network, to the device's sshd.
fn route(net: &PeerNamespace, sshd: &DeviceSshd, from: Ipv4Addr) -> Route {
    Route {
        netns: Some(net.name().to_owned()),
        from: Some(IpAddr::V4(from)),
        to: Some(IpAddr::V4(*sshd.target().ip())),
    }
}

fn banned_now(ev: &Evidence, address: Ipv4Addr) -> anyhow::Result<bool> {
    Ok(fail2ban::status(ev, JAIL)?.is_some_and(|s| s.is_banned(IpAddr::V4(address))))
}
