//! TC_CR1.5_1 — CR1.5 authenticator management: no plain-text authenticators.
//!
//! Proves: no login service that carries passwords in clear text is
//! installed (telnetd, rlogind/rshd/rexecd, FTP servers: Debian packages and
//! their programs) or listening (TCP 21, 23, 512, 513, 514, read from
//! /proc/net/tcp{,6}, whose reading is shown to work on a socket of the
//! test's own); the system sshd's effective configuration (`sshd -T`, read
//! only) offers no `none` cipher and sshd refuses to be given one; a
//! connection to a private sshd with the system's policy negotiates a real
//! cipher. A violation found is reported even when a later step cannot run.
//! Negative control: profile `telnetd-listening` (inetutils-telnetd
//! installed, inetd listening on port 23).

use anyhow::ensure;
use harness::case::Findings;
use harness::command::{find_program, run as run_cmd, run_ok, sh};
use harness::services::{installed_package, tcp_listeners};
use harness::ssh::negotiated_ciphers;
use harness::sshd::SSHD;
use harness::sshd_match::sshd_test_mode;
use harness::user::unused_name;
use harness::{Case, Evidence, PrivateSshd};
use std::net::TcpListener;
use std::path::Path;

pub const CASE: Case = Case::met(
    "TC_CR1.5_1",
    "CR1.5",
    "Authenticator management (no plain-text authenticators)",
    "no telnet, rsh/rlogin/rexec or FTP server is installed or listening; sshd offers no none cipher and ssh connections are encrypted",
    run,
);

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

/// ftp, telnet, rexec, rlogin, rsh.
const PLAIN_TEXT_PORTS: [(u16, &str); 5] = [
    (21, "ftp"),
    (23, "telnet"),
    (512, "rexec"),
    (513, "rlogin"),
    (514, "rsh"),
];

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

    ev.step("nothing listens on the plain-text login ports");
    findings.step(listening_plain_text_ports(ev));

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

/// What listens on a plain-text login port, shown to see a socket of the
/// test's own first.
fn listening_plain_text_ports(ev: &Evidence) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    // Positive half: a socket of our own must show up, or an empty list
    // would only mean the reading is broken.
    let probe = TcpListener::bind("127.0.0.1:0")?;
    let probe_port = probe.local_addr()?.port();
    let listeners = tcp_listeners()?;
    drop(probe);
    ensure!(
        listeners.iter().any(|l| l.port == probe_port),
        "the test's own listening socket (port {probe_port}) is missing from /proc/net/tcp: cannot tell what listens"
    );
    ev.note(format!(
        "listening TCP sockets: {}",
        listeners
            .iter()
            .map(|l| format!("{}:{}", l.address, l.port))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut open_ports = 0;
    for (port, service) in PLAIN_TEXT_PORTS {
        for l in listeners.iter().filter(|l| l.port == port) {
            found.push(format!(
                "{service} port {port} is listening on {}",
                l.address
            ));
            open_ports += 1;
        }
    }
    if open_ports == 0 {
        ev.ok(format!(
            "the reading sees the test's own socket on port {probe_port}; nothing listens on 21, 23, 512, 513 or 514"
        ));
    }
    Ok(found)
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
