//! TC_CR1.5_1 — CR1.5 authenticator management: no plain-text authenticators.
//!
//! Proves: no login service that carries passwords in clear text is
//! listening, told by behaviour: every listening TCP socket and every bound
//! UDP socket (/proc/net/{tcp,udp}{,6}) is listed with the processes that
//! hold it, and every TCP listener is probed on the wire (telnet option
//! negotiation, FTP answering `USER` with 331, POP3, IMAP without
//! LOGINDISABLED, SMTP AUTH without TLS, VNC, r-services by their program,
//! any answer ending in a login or password prompt, an HTTP server's pages
//! reachable from `/` asking for Basic or holding a password form that
//! posts over plain HTTP, an MQTT broker wanting credentials on a plain
//! connection; SSH and TLS are encrypted), whatever its port, with waits
//! derived from the device's measured round trip; an SNMP agent is judged
//! by the v1/v2c communities its configuration accepts; a listener
//! of the test's own that speaks like telnetd must be found with the test's
//! PID and flagged, or the reading and the probe prove nothing. No such
//! server is installed either (Debian packages and their programs). The
//! system sshd's effective configuration (`sshd -T`, read only) offers no
//! `none` cipher and sshd refuses to be given one; a connection to a
//! private sshd with the system's policy negotiates a real cipher. A
//! violation found is reported even when a later step cannot run.
//! Negative controls: profiles `telnetd-listening` (inetutils-telnetd
//! installed, inetd listening on port 23), `busybox-telnetd-other-port`
//! (busybox's telnetd on port 2323, no telnetd package),
//! `plain-login-prompt-other-port` (a console greeting with a login prompt
//! on port 2601), `http-basic-below-root` (Basic asked for at /config/
//! only), `http-password-form` (a login form one redirect from /),
//! `mqtt-broker-password-in-clear` (mosquitto wanting a password on plain
//! port 1883) and `snmpd-v2c-community` (snmpd with a v2c community).

use anyhow::{anyhow, ensure, Context};
use harness::actors::decoy::TelnetDecoy;
use harness::actors::sshd_match::sshd_test_mode;
use harness::actors::sshd_match::SSHD;
use harness::actors::user::unused_name;
use harness::facts::services::{installed_package, services, Service, Transport};
use harness::facts::snmpd;
use harness::facts::wire_probe::{probe, target_of, Pace};
use harness::flows::ssh::negotiated_ciphers;
use harness::runtime::case::Findings;
use harness::runtime::command::{find_program, run as run_cmd, run_ok, sh};
use harness::runtime::deadline;
use harness::{Case, Control, Evidence, PrivateSshd};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

pub const CASE: Case = Case::met(
    "TC_CR1.5_1",
    "CR1.5",
    "Authenticator management (no plain-text authenticators)",
    "no plain-text login service is installed or listening: every TCP listener, on any port, is probed on the wire and none speaks telnet, FTP with a password, POP3, IMAP/SMTP/HTTP authentication or an HTTP password form without TLS, MQTT with credentials in clear, VNC or an r-service, nor answers with a login prompt; sshd offers no none cipher and ssh connections are encrypted",
    run,
)
.fails_under(&[
    Control::Profile("telnetd-listening"),
    Control::Profile("busybox-telnetd-other-port"),
    Control::Profile("plain-login-prompt-other-port"),
    Control::Profile("http-basic-below-root"),
    Control::Profile("http-password-form"),
    Control::Profile("mqtt-broker-password-in-clear"),
    Control::Profile("snmpd-v2c-community"),
]);

/// Debian packages of servers that take a password in clear text.
const PLAIN_TEXT_PACKAGES: [&str; 14] = [
    "telnetd",
    "inetutils-telnetd",
    "telnetd-ssl",
    "busybox-syslogd-telnetd",
    "rsh-server",
    "rsh-redone-server",
    "inetutils-ftpd",
    "ftpd",
    "ftpd-ssl",
    "vsftpd",
    "proftpd-basic",
    "proftpd-core",
    "pure-ftpd",
    "tnftpd",
];

/// Their programs, for images that were not assembled with dpkg.
const PLAIN_TEXT_PROGRAMS: [&str; 13] = [
    "/usr/sbin/in.telnetd",
    "/usr/sbin/telnetd",
    "/usr/sbin/in.rlogind",
    "/usr/sbin/in.rshd",
    "/usr/sbin/in.rexecd",
    "/usr/sbin/rlogind",
    "/usr/sbin/rshd",
    "/usr/sbin/rexecd",
    "/usr/sbin/in.ftpd",
    "/usr/sbin/ftpd",
    "/usr/sbin/vsftpd",
    "/usr/sbin/proftpd",
    "/usr/sbin/pure-ftpd",
];

/// The probes of all listeners together stop after this long, or ten of
/// the pace's waits per listener if that is longer (an HTTP server's pages
/// take several requests); the rest are then "not demonstrated".
const PROBE_BUDGET: Duration = Duration::from_secs(60);

fn run(ev: &Evidence) -> anyhow::Result<()> {
    let mut findings = Findings::default();
    ev.step("no plain-text login server is installed (dpkg and the programs)");
    findings.step(installed_servers(ev));
    if findings.is_clean() {
        ev.ok(format!(
            "none of {} packages and {} programs is present",
            PLAIN_TEXT_PACKAGES.len(),
            PLAIN_TEXT_PROGRAMS.len()
        ));
    }

    ev.step("every listening socket, with its process; every TCP listener probed on the wire");
    if let Err(e) = services_on_the_wire(ev, &mut findings) {
        findings.step(Err(e));
    }

    if Path::new(SSHD).is_file() {
        if let Err(e) = check_sshd(ev, &mut findings) {
            findings.step(Err(e));
        }
    } else {
        ev.note("sshd is not installed (openssh-server): no ssh server to check");
    }
    findings.verdict("plain-text authentication is possible")
}

/// The plain-text login servers installed, as packages or programs.
fn installed_servers(ev: &Evidence) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for pkg in PLAIN_TEXT_PACKAGES {
        if let Some(version) = installed_package(ev, pkg)? {
            found.push(format!("package {pkg} {version} is installed"));
        }
    }
    for program in PLAIN_TEXT_PROGRAMS.iter().filter(|p| Path::new(p).exists()) {
        found.push(format!("{program} is present"));
    }
    Ok(found)
}

/// Every listening TCP and bound UDP socket with its processes, and what
/// each TCP listener says on the wire; shown first to see, and recognise,
/// a telnet-like listener and a UDP socket of the test's own.
fn services_on_the_wire(ev: &Evidence, found: &mut Findings) -> anyhow::Result<()> {
    let decoy = TelnetDecoy::start()?;
    let own_udp = UdpSocket::bind("127.0.0.1:0").context("binding the test's own UDP socket")?;
    let own_udp_port = own_udp.local_addr()?.port();
    let all = services()?;
    drop(own_udp);
    for s in &all {
        ev.note(format!("{} held by {}", s.endpoint(), s.held_by()));
    }
    let own_tcp = reading_finds_own_sockets(&all, decoy.port, own_udp_port)?;
    let unknown_user = unused_name()?;
    let pace = Pace::measure(target_of(own_tcp))?;
    ev.note(format!("probe pace: {pace}"));
    let control = probe(own_tcp, &unknown_user, pace)?;
    ensure!(
        control.protocol.cleartext_login().is_some(),
        "the probe does not recognise the test's own telnet-like listener on port {} (it said {}: {}): cannot tell what the services are",
        decoy.port,
        control.said,
        control.protocol
    );
    ev.ok(format!(
        "the reading finds the test's own sockets (tcp 127.0.0.1:{}, udp 127.0.0.1:{own_udp_port}) held by pid {}, and the probe calls the telnet-like one {}",
        decoy.port,
        std::process::id(),
        control.protocol
    ));

    let others = all
        .iter()
        .filter(|s| s.transport == Transport::Tcp && s.inode != own_tcp.inode);
    let not_probed = probe_listeners(ev, others, &unknown_user, pace, found);
    for s in all
        .iter()
        .filter(|s| s.transport == Transport::Udp && is_snmp(s))
    {
        found.step(snmp_communities(ev, s));
    }
    if !not_probed.is_empty() {
        found.step(Err(anyhow!(
            "TCP listeners not probed (each must be, within {} s in all at this pace): {}",
            budget(pace, all.len()).as_secs(),
            not_probed.join("; ")
        )));
    }
    Ok(())
}

/// Positive half: the test's own sockets are found with its own PID, or an
/// empty or ownerless list would only mean the reading is broken. The
/// test's own TCP listener.
fn reading_finds_own_sockets(
    all: &[Service],
    tcp_port: u16,
    udp_port: u16,
) -> anyhow::Result<&Service> {
    let me = std::process::id() as i32;
    let own = |transport: Transport, port: u16| {
        all.iter().find(|s| {
            s.transport == transport && s.port == port && s.owners.iter().any(|o| o.pid == me)
        })
    };
    let own_tcp = own(Transport::Tcp, tcp_port).with_context(|| {
        format!("the test's own listener (tcp 127.0.0.1:{tcp_port}, pid {me}) is missing from /proc/net/tcp or /proc/{me}/fd: cannot tell what listens")
    })?;
    own(Transport::Udp, udp_port).with_context(|| {
        format!("the test's own UDP socket (udp 127.0.0.1:{udp_port}, pid {me}) is missing from /proc/net/udp or /proc/{me}/fd: cannot tell what is bound")
    })?;
    Ok(own_tcp)
}

/// What each TCP listener says on the wire, within PROBE_BUDGET in all: a
/// clear-text login is a violation. The listeners not probed (out of time,
/// or the probe failed), with why.
fn probe_listeners<'a>(
    ev: &Evidence,
    listeners: impl Iterator<Item = &'a Service> + Clone,
    unknown_user: &str,
    pace: Pace,
    found: &mut Findings,
) -> Vec<String> {
    let started = Instant::now();
    let budget = budget(pace, listeners.clone().count());
    let mut not_probed = Vec::new();
    for s in listeners {
        if started.elapsed() > budget || deadline::stopped() {
            not_probed.push(s.endpoint());
            continue;
        }
        let service = format!("{} ({})", s.endpoint(), s.held_by());
        match probe(s, unknown_user, pace) {
            Ok(p) => match p.protocol.cleartext_login() {
                Some(why) => {
                    let violation = format!("{service} {why}; it said: {}", p.said);
                    ev.note(format!("FOUND {violation}"));
                    found.violation(violation);
                }
                None => ev.ok(format!(
                    "{service} probed at {}: {}; it said: {}",
                    p.target, p.protocol, p.said
                )),
            },
            // A listener that closed since it was read (another case's
            // private server ending) is gone, not hidden.
            Err(e) if !still_listening(s) => {
                ev.note(format!("{service} closed before it was probed ({e:#})"));
            }
            Err(e) => not_probed.push(format!("{service}: {e:#}")),
        }
    }
    not_probed
}

/// The time the probes of `listeners` listeners may take in all.
fn budget(pace: Pace, listeners: usize) -> Duration {
    PROBE_BUDGET.max(
        pace.wait
            .saturating_mul(10u32.saturating_mul(u32::try_from(listeners).unwrap_or(u32::MAX))),
    )
}

/// Does the listening socket still exist?
fn still_listening(s: &Service) -> bool {
    services().is_ok_and(|now| now.iter().any(|n| n.inode == s.inode))
}

/// An SNMP agent accepts no v1/v2c community (a community string is a
/// password sent in clear with every request). Told from net-snmp's
/// configuration: a probe cannot tell without sending a real community.
fn snmp_communities(ev: &Evidence, s: &Service) -> anyhow::Result<Vec<String>> {
    let agent = format!("{} ({})", s.endpoint(), s.held_by());
    let Some(snmpd) = s.owners.iter().find(|o| o.comm == "snmpd") else {
        return Err(anyhow!(
            "{agent} looks like an SNMP agent but is not net-snmp's snmpd: whether it accepts SNMPv1/v2c communities (passwords in clear) cannot be told without sending one"
        ));
    };
    let cmdline: Vec<String> = std::fs::read(format!("/proc/{}/cmdline", snmpd.pid))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let files = snmpd::config_files(&cmdline);
    let (communities, unreadable) = snmpd::communities(&files);
    ensure!(
        unreadable.is_empty(),
        "{agent}: snmpd's configuration cannot be read: {}",
        unreadable.join("; ")
    );
    if communities.is_empty() {
        ev.ok(format!(
            "{agent}: no SNMPv1/v2c community in {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "{agent} accepts SNMPv1/v2c communities, passwords sent in clear with every request: {}",
        communities
            .iter()
            .map(|c| format!("{}:{}: {}", c.file.display(), c.line, c.masked))
            .collect::<Vec<_>>()
            .join("; ")
    )])
}

fn is_snmp(s: &Service) -> bool {
    s.port == 161 || s.owners.iter().any(|o| o.comm == "snmpd")
}

/// The system sshd offers no `none` cipher, and a real connection is
/// encrypted.
fn check_sshd(ev: &Evidence, found: &mut Findings) -> anyhow::Result<()> {
    // Started first: it also provides sshd's privilege-separation
    // directory, which `sshd -T` needs on an image where ssh is not running.
    let sshd = PrivateSshd::start(ev)?;

    ev.step("the system sshd's effective configuration (sshd -T, read only)");
    let effective = run_ok(ev, &mut sshd_test_mode()?, None)?.stdout;
    let ciphers = effective
        .lines()
        .find_map(|l| l.strip_prefix("ciphers "))
        .unwrap_or_default()
        .to_owned();
    ensure!(!ciphers.is_empty(), "sshd -T shows no ciphers line");
    if ciphers.split(',').any(|c| c == "none") {
        found.violation(format!(
            "the system sshd offers the none cipher ({ciphers})"
        ));
    } else {
        ev.ok(format!("ciphers offered by the system sshd: {ciphers}"));
    }

    ev.step("sshd refuses a none cipher even when given one (test mode, nothing is started)");
    let forced = run_cmd(ev, sshd_test_mode()?.args(["-o", "Ciphers=none"]), None)?;
    if forced.success
        && forced.stdout.lines().any(|l| {
            l.strip_prefix("ciphers ")
                .is_some_and(|c| c.split(',').any(|c| c == "none"))
        })
    {
        found.violation("sshd accepts Ciphers=none".to_owned());
    } else {
        ev.ok(format!(
            "sshd -T -o Ciphers=none is refused: {}",
            forced.all_output().trim()
        ));
    }
    if find_program("ssh").is_none() {
        ev.note("the ssh client is not installed (openssh-client): no connection to look at");
        return Ok(());
    }
    let client = sh(ev, "ssh", &["-Q", "cipher"])?.stdout;
    if client.lines().any(|c| c.trim() == "none") {
        found.violation("the ssh client supports the none cipher".to_owned());
    }

    ev.step("positive half: a connection to a private sshd with the system's policy is encrypted");
    let (up, down) = negotiated_ciphers(ev, &sshd, &unused_name()?)?;
    for (direction, cipher) in [("client->server", &up), ("server->client", &down)] {
        ensure!(
            cipher != "none" && ciphers.split(',').any(|c| c == cipher.as_str()),
            "the connection negotiated {cipher} {direction}, which is not one of the system's ciphers"
        );
    }
    ev.ok(format!(
        "negotiated ciphers: {up} (client->server), {down} (server->client)"
    ));
    Ok(())
}
