//! The device's own sshd: the one the system runs (`ssh.service`, or
//! whatever started it), found by the sockets it listens on. The suite never
//! starts, edits, restarts or stops it: a test connects to it from a test
//! address, as a remote client would, so its real ports, PAM stack,
//! `AuthenticationMethods` and `Match` blocks apply, and its log lines go
//! where the device's own log readers (fail2ban's jail) look for them.

use crate::actors::netns::{PeerNamespace, MAX_CLIENTS};
use crate::actors::private_dir::PrivateDir;
use crate::actors::sshd_match::sshd_test_mode;
use crate::facts::host_keys;
use crate::facts::services::{tcp_listeners, Listener};
use crate::facts::sshd_instances::{self, Instance, RunsWith};
use crate::flows::dialogue::Attempt;
use crate::flows::ssh::{ssh_prompts_via, Route, SshServer};
use crate::runtime::command::{run, run_ok};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct DeviceSshd {
    /// Where a remote client reaches it: each port it listens on, at the
    /// address it listens on, or at `via` where it listens on all.
    targets: Vec<SocketAddrV4>,
    known_hosts: PathBuf,
    _dir: PrivateDir,
}

impl DeviceSshd {
    /// The running sshd, as a client on a link whose host end is `via`
    /// reaches it, and a `known_hosts` file that trusts exactly its host
    /// keys (its configuration's `HostKey` files) there. An error when the
    /// device runs no sshd a remote client could reach.
    pub fn find(ev: &Evidence, via: Ipv4Addr) -> Result<Self> {
        Self::find_doors(ev, via, Doors::Sshd)
    }

    /// [`DeviceSshd::find`], and with [`Doors::EverySshServer`] every other
    /// SSH server the device runs too (dropbear, …: any TCP listener that
    /// greets like one), its host keys taken with `ssh-keyscan` at the
    /// address the client reaches it (they are in no file the suite reads).
    pub fn find_doors(ev: &Evidence, via: Ipv4Addr, doors: Doors) -> Result<Self> {
        ev.step(
            "find the device's own sshd: every sshd process that listens, with its own command line and configuration, and the TCP sockets it holds (read only)",
        );
        let mut targets = Vec::new();
        let mut known_hosts_text = String::new();
        for instance in instances(ev)? {
            let (reached, unreachable) = remote_targets(&instance.listeners, via);
            for l in &unreachable {
                ev.note(format!(
                    "{} also listens on {}:{}, which a remote IPv4 client cannot reach (loopback or IPv6 only): not part of this test",
                    instance.runs_with.label, l.address, l.port
                ));
            }
            if reached.is_empty() {
                continue;
            }
            let label = &instance.runs_with.label;
            let config = run_ok(
                ev,
                sshd_test_mode()?.args(&instance.runs_with.options),
                None,
            )
            .with_context(|| format!("reading the configuration of {label} (sshd -T)"))?
            .stdout;
            known_hosts_text.push_str(&known_hosts_lines(&config, &reached)?);
            ev.note(format!(
                "{label}: a remote client reaches it at {}",
                list(&reached)
            ));
            for t in reached {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
        if targets.is_empty() {
            bail!("the device's sshd listens on no address a remote client can reach");
        }
        if doors == Doors::EverySshServer {
            known_hosts_text.push_str(&other_ssh_servers(ev, via, &mut targets)?);
        }
        targets.sort_by_key(|t| (t.port(), *t.ip()));
        let dir = PrivateDir::create(ev, "fr1-device-sshd-", "known_hosts of the device's sshd")?;
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, known_hosts_text)
            .with_context(|| format!("writing {}", known_hosts.display()))?;
        ev.note(format!(
            "the device's sshd, as a remote client reaches it: {}; its host keys are trusted there for this case only",
            list(&targets)
        ));
        Ok(DeviceSshd {
            targets,
            known_hosts,
            _dir: dir,
        })
    }

    /// Every address and port a remote client reaches it at.
    pub fn targets(&self) -> &[SocketAddrV4] {
        &self.targets
    }

    /// The first of them: where a test logs in.
    pub fn target(&self) -> SocketAddrV4 {
        self.targets[0]
    }
}

impl SshServer for DeviceSshd {
    fn port(&self) -> u16 {
        self.target().port()
    }

    fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }
}

/// Which SSH servers a remote login goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doors {
    /// Every sshd instance.
    Sshd,
    /// Every sshd instance and every other SSH server (dropbear, …).
    EverySshServer,
}

/// Every SSH server the device runs beside sshd, at each address a remote
/// client reaches it (added to `targets`); its host keys as known_hosts
/// lines. An error when one is found whose host key cannot be taken: a
/// door the suite cannot drive.
fn other_ssh_servers(
    ev: &Evidence,
    via: Ipv4Addr,
    targets: &mut Vec<SocketAddrV4>,
) -> Result<String> {
    ev.note("every TCP listener not held by sshd asked what it says first (SSH servers speak first; nothing is sent)");
    let mut known_hosts = String::new();
    let servers = sshd_instances::other_ssh_servers()?;
    if servers.is_empty() {
        ev.ok("no SSH server other than sshd listens");
    }
    for server in servers {
        let (reached, unreachable) = remote_targets(&server.listeners, via);
        for l in &unreachable {
            ev.note(format!(
                "{} also listens on {}:{}, which a remote IPv4 client cannot reach: not part of this test",
                server.label, l.address, l.port
            ));
        }
        let new: Vec<SocketAddrV4> = reached
            .into_iter()
            .filter(|t| !targets.contains(t))
            .collect();
        for target in new {
            let keys = run(
                ev,
                Command::new("ssh-keyscan").args([
                    "-T",
                    "10",
                    "-p",
                    &target.port().to_string(),
                    &target.ip().to_string(),
                ]),
                None,
            )?;
            if keys.stdout.trim().is_empty() {
                bail!(
                    "not demonstrated: a door the suite cannot drive: {} at {target} (ssh-keyscan got no host key: {})",
                    server.label,
                    keys.stderr.trim()
                );
            }
            known_hosts.push_str(&keys.stdout);
            ev.note(format!(
                "another SSH server: {} at {target}; its host keys taken with ssh-keyscan, trusted for this case only",
                server.label
            ));
            targets.push(target);
        }
    }
    targets.sort_by_key(|t| (t.port(), *t.ip()));
    Ok(known_hosts)
}

/// Logins to the device's own sshd from a test network of the case's own,
/// each from the next of the network's addresses: failures never add up
/// per address, so neither fail2ban's `maxretry` nor OpenSSH's
/// `PerSourcePenalties` react to a case that is not about them, and the
/// device's sshd decides every attempt with its real configuration.
pub struct RemoteLogins {
    sshd: DeviceSshd,
    net: PeerNamespace,
    next: AtomicUsize,
}

impl RemoteLogins {
    /// The test network and the device's sshd as a client there reaches it.
    pub fn open(ev: &Evidence) -> Result<Self> {
        Self::open_doors(ev, Doors::Sshd)
    }

    /// [`RemoteLogins::open`] to the SSH servers `doors` says.
    pub fn open_doors(ev: &Evidence, doors: Doors) -> Result<Self> {
        let net = PeerNamespace::with_clients(ev, MAX_CLIENTS)?;
        let sshd = DeviceSshd::find_doors(ev, net.host_address(), doors)?;
        Ok(RemoteLogins {
            sshd,
            net,
            next: AtomicUsize::new(0),
        })
    }

    /// `ssh USER@DEVICE`, typing `answers` at the server's prompts in turn
    /// (see [`ssh_prompts_via`]), from the next test address, to the first
    /// address and port the device's sshd listens on.
    pub fn prompts(&self, ev: &Evidence, user: &str, answers: &[&str]) -> Result<Attempt> {
        self.prompts_at(ev, self.sshd.target(), user, answers)
    }

    /// [`RemoteLogins::prompts`] to `target`, one of [`RemoteLogins::targets`].
    pub fn prompts_at(
        &self,
        ev: &Evidence,
        target: SocketAddrV4,
        user: &str,
        answers: &[&str],
    ) -> Result<Attempt> {
        let addresses = self.net.client_addresses();
        let from = addresses[self.next.fetch_add(1, Ordering::Relaxed) % addresses.len()];
        let route = Route {
            netns: Some(self.net.name().to_owned()),
            from: Some(IpAddr::V4(from)),
            to: Some(IpAddr::V4(*target.ip())),
        };
        let at = Listening {
            port: target.port(),
            known_hosts: &self.sshd.known_hosts,
        };
        ssh_prompts_via(ev, &at, &route, user, answers)
    }

    /// Every address and port of every sshd instance a remote client
    /// reaches, the one [`RemoteLogins::prompts`] uses first.
    pub fn targets(&self) -> &[SocketAddrV4] {
        self.sshd.targets()
    }

    /// [`RemoteLogins::prompts`] with one answer: the password.
    pub fn password(&self, ev: &Evidence, user: &str, password: &str) -> Result<Attempt> {
        self.prompts(ev, user, &[password])
    }

    /// `the device's sshd at A:P`, for the evidence.
    pub fn describe(&self) -> String {
        format!("the device's sshd at {}", self.sshd.target())
    }
}

/// The device's sshd at one of its ports, for the ssh client.
struct Listening<'a> {
    port: u16,
    known_hosts: &'a Path,
}

impl SshServer for Listening<'_> {
    fn port(&self) -> u16 {
        self.port
    }

    fn known_hosts(&self) -> &Path {
        self.known_hosts
    }
}

/// Where a remote IPv4 client, on a link whose host end is `via`, reaches
/// each listener: a wildcard listener at `via`, a specific IPv4 address at
/// itself (routed through `via`). Loopback and IPv6-only listeners are not
/// reachable that way (the second list).
fn remote_targets(listeners: &[Listener], via: Ipv4Addr) -> (Vec<SocketAddrV4>, Vec<Listener>) {
    let mut targets = Vec::new();
    let mut unreachable = Vec::new();
    for l in listeners {
        let address = match l.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if a.is_unspecified() => Some(via),
            Ok(IpAddr::V6(a)) if a.is_unspecified() => Some(via),
            Ok(IpAddr::V4(a)) if !a.is_loopback() => Some(a),
            _ => None,
        };
        match address {
            Some(a) => {
                let t = SocketAddrV4::new(a, l.port);
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
            None => unreachable.push(l.clone()),
        }
    }
    targets.sort_by_key(|t| (t.port(), *t.ip()));
    (targets, unreachable)
}

/// Every sshd process that holds listening sockets, each with its own
/// listeners. Where none holds one (a socket-activated sshd: systemd holds
/// the socket), the listeners on the ports the configuration names
/// (`sshd -T`).
fn instances(ev: &Evidence) -> Result<Vec<Instance>> {
    let running = sshd_instances::running()?;
    if !running.is_empty() {
        return Ok(running);
    }
    let all = tcp_listeners()?;
    let config = run_ok(ev, &mut sshd_test_mode()?, None)?.stdout;
    let ports = configured_ports(&config);
    let activated: Vec<Listener> = all
        .into_iter()
        .filter(|l| ports.contains(&l.port))
        .collect();
    if activated.is_empty() {
        bail!(
            "the device runs no sshd: no sshd process listens, and nothing listens on the port(s) its configuration names ({ports:?})"
        );
    }
    ev.note("no sshd process holds a listening socket: the listeners on sshd's configured ports are taken as the device's sshd (socket activation)");
    Ok(vec![Instance {
        runs_with: RunsWith {
            label: "the socket-activated sshd".to_owned(),
            options: Vec::new(),
        },
        listeners: activated,
    }])
}

/// `a:22, b:2222` for the evidence.
pub fn list(targets: &[SocketAddrV4]) -> String {
    targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `port` values of `sshd -T` output.
fn configured_ports(config: &str) -> Vec<u16> {
    config
        .lines()
        .filter_map(|l| l.strip_prefix("port ")?.trim().parse().ok())
        .collect()
}

/// known_hosts lines for every host key of `sshd -T` output (`hostkey
/// PATH`, public half at PATH.pub), at each target. Port 22 is written
/// without brackets: ssh looks it up that way.
fn known_hosts_lines(config: &str, targets: &[SocketAddrV4]) -> Result<String> {
    let mut text = String::new();
    for key in host_keys::named_in(config) {
        let public = format!("{}.pub", key.display());
        let Ok(line) = std::fs::read_to_string(&public) else {
            continue;
        };
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        for t in targets {
            let host = if t.port() == 22 {
                t.ip().to_string()
            } else {
                format!("[{}]:{}", t.ip(), t.port())
            };
            let _ = writeln!(text, "{host} {kind} {blob}");
        }
    }
    if text.is_empty() {
        bail!("none of the device's sshd host keys has a readable public half (hostkey lines of sshd -T)");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(address: &str, port: u16) -> Listener {
        Listener {
            address: address.into(),
            port,
        }
    }

    #[test]
    fn a_remote_client_reaches_wildcards_at_its_link_and_never_loopback() {
        let via = Ipv4Addr::new(192, 0, 2, 1);
        let (targets, unreachable) = remote_targets(
            &[
                listener("0.0.0.0", 22),
                listener("::", 22),
                listener("127.0.0.1", 2200),
                listener("10.1.2.3", 2222),
                listener("fe80::1", 2223),
            ],
            via,
        );
        assert_eq!(
            targets,
            vec![
                SocketAddrV4::new(via, 22),
                SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 2222)
            ]
        );
        assert_eq!(unreachable.len(), 2);
    }

    #[test]
    fn known_hosts_bracket_every_port_but_22() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("ssh_host_ed25519_key");
        std::fs::write(
            dir.path().join("ssh_host_ed25519_key.pub"),
            "ssh-ed25519 AAAAC3Nz root@x\n",
        )
        .unwrap();
        let config = format!("port 22\nhostkey {}\nhostkey /nonexistent\n", key.display());
        let via = Ipv4Addr::new(192, 0, 2, 1);
        let text = known_hosts_lines(
            &config,
            &[SocketAddrV4::new(via, 22), SocketAddrV4::new(via, 2222)],
        )
        .unwrap();
        assert_eq!(
            text,
            "192.0.2.1 ssh-ed25519 AAAAC3Nz\n[192.0.2.1]:2222 ssh-ed25519 AAAAC3Nz\n"
        );
    }

    #[test]
    fn ports_come_from_the_effective_configuration() {
        assert_eq!(
            configured_ports("port 22\nport 2222\nlistenaddress 0.0.0.0:22\n"),
            vec![22, 2222]
        );
    }
}
