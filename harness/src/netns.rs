//! A "remote host" on the same machine: a network namespace of the test's
//! own, joined to this host by a veth pair.
//!
//! Loopback addresses cannot leave their namespace, so a client that must
//! look remote to this host (to be banned by address, say) needs its own
//! namespace and link. [`PeerNamespace`] creates both, with addresses from
//! TEST-NET-1 (192.0.2.0/24, RFC 5737: documentation only, never routed).
//! A free /29 is picked: the host side gets `.1`, the namespace `.2` and
//! `.3`, so a test can compare two client addresses. Traffic stays on the
//! veth pair between the two namespaces of this machine. Dropping it deletes
//! the namespace, which also deletes both ends of the pair.

use crate::command::{run, run_ok, sh};
use crate::journal::{self, Undo};
use crate::password::random_token;
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use nix::sys::time::TimeVal;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where `ip netns` keeps its namespaces. The first `ip netns add` creates
/// it and mounts it onto itself (a shared mount), and nothing removes it.
const NETNS_DIR: &str = "/run/netns";
/// TEST-NET-1; /29 blocks of it are handed out.
const NET: [u8; 3] = [192, 0, 2];
const PREFIX: u8 = 29;

pub struct PeerNamespace {
    name: String,
    host_link: String,
    host_address: Ipv4Addr,
    client_addresses: [Ipv4Addr; 2],
    /// NETNS_DIR did not exist before: remove it (and its mount) again.
    made_netns_dir: bool,
    journal: journal::Entry,
    ev: Evidence,
}

impl PeerNamespace {
    /// Create the namespace, the veth pair and the addresses, and bring the
    /// links up.
    pub fn create(ev: &Evidence) -> Result<Self> {
        if crate::command::find_program("ip").is_none() {
            return crate::case::skip("the ip program is not installed (package iproute2)");
        }
        let token = random_token(6)?;
        let name = format!("fr1-{token}");
        // Interface names are at most 15 characters.
        let host_link = format!("fr1h-{token}");
        let peer_link = format!("fr1n-{token}");
        let block = free_block(ev)?;
        let host_address = Ipv4Addr::new(NET[0], NET[1], NET[2], block + 1);
        let client_addresses = [
            Ipv4Addr::new(NET[0], NET[1], NET[2], block + 2),
            Ipv4Addr::new(NET[0], NET[1], NET[2], block + 3),
        ];
        ev.step(format!(
            "create network namespace {name} joined by veth {host_link} (this host, {host_address}/{PREFIX}) \
             <-> {peer_link} (namespace, {} and {})",
            client_addresses[0], client_addresses[1]
        ));
        let made_netns_dir = !Path::new(NETNS_DIR).exists();
        // Journaled first: an interrupted run deletes the namespace, and
        // with it both ends of the veth pair.
        let journal = journal::record(&Undo::DeleteNetns { name: name.clone() })?;
        if let Err(e) = sh(ev, "ip", &["netns", "add", &name]) {
            journal.done();
            return Err(e);
        }
        // From here on, dropping `peer` removes whatever was created.
        let peer = PeerNamespace {
            name,
            host_link,
            host_address,
            client_addresses,
            made_netns_dir,
            journal,
            ev: ev.clone(),
        };
        let ns = peer.name.as_str();
        sh(
            ev,
            "ip",
            &[
                "link",
                "add",
                &peer.host_link,
                "type",
                "veth",
                "peer",
                "name",
                &peer_link,
                "netns",
                ns,
            ],
        )?;
        sh(
            ev,
            "ip",
            &[
                "addr",
                "add",
                &format!("{host_address}/{PREFIX}"),
                "dev",
                &peer.host_link,
            ],
        )?;
        sh(ev, "ip", &["link", "set", &peer.host_link, "up"])?;
        for a in client_addresses {
            sh(
                ev,
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{a}/{PREFIX}"),
                    "dev",
                    &peer_link,
                ],
            )?;
        }
        sh(ev, "ip", &["-n", ns, "link", "set", &peer_link, "up"])?;
        sh(ev, "ip", &["-n", ns, "link", "set", "lo", "up"])?;
        Ok(peer)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// This host's address on the veth pair.
    pub fn host_address(&self) -> Ipv4Addr {
        self.host_address
    }

    /// The /29 both sides are in, e.g. `192.0.2.8/29`.
    pub fn subnet(&self) -> String {
        let o = self.host_address.octets();
        format!("{}.{}.{}.{}/{PREFIX}", o[0], o[1], o[2], o[3] - 1)
    }

    /// The namespace's two addresses; the first is its default source.
    pub fn client_addresses(&self) -> [Ipv4Addr; 2] {
        self.client_addresses
    }

    /// Open a TCP connection from inside the namespace, from `source`, to
    /// `target` (within `timeout`: a ban that drops instead of rejecting
    /// shows as a timeout). The connection is closed again at once.
    pub fn try_connect(
        &self,
        source: Ipv4Addr,
        target: SocketAddrV4,
        timeout: Duration,
    ) -> Result<std::io::Result<()>> {
        let path = format!("{NETNS_DIR}/{}", self.name);
        let ns = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // setns changes the namespace of the calling thread only: do it in
        // a thread of its own, which ends with the connection attempt.
        let handle = std::thread::spawn(move || -> Result<std::io::Result<()>> {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .context("entering the network namespace")?;
            Ok(connect_from(source, target, timeout))
        });
        match handle.join() {
            Ok(r) => r,
            Err(_) => bail!("the connection thread panicked"),
        }
    }
}

fn connect_from(source: Ipv4Addr, target: SocketAddrV4, timeout: Duration) -> std::io::Result<()> {
    let fd = socket::socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // connect() honours the send timeout on Linux.
    let tv = TimeVal::new(
        timeout.as_secs() as nix::libc::time_t,
        timeout.subsec_micros() as nix::libc::suseconds_t,
    );
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(source, 0)),
    )?;
    socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(target),
    )?;
    drop(TcpStream::from(fd));
    Ok(())
}

impl Drop for PeerNamespace {
    fn drop(&mut self) {
        // Deleting the namespace destroys the veth end inside it, and with
        // it the other end; the explicit delete covers a half-made pair.
        match run(
            &self.ev,
            Command::new("ip").args(["netns", "delete", &self.name]),
            None,
        ) {
            Ok(r) if r.success => self
                .ev
                .cleanup(format!("removed network namespace {}", self.name)),
            Ok(r) => self.ev.cleanup(format!(
                "FAILED to remove network namespace {}: {}",
                self.name,
                r.all_output().trim()
            )),
            Err(e) => self.ev.cleanup(format!(
                "FAILED to remove network namespace {}: {e:#}",
                self.name
            )),
        }
        let link = std::path::Path::new("/sys/class/net").join(&self.host_link);
        if link.exists() {
            let _ = run(
                &self.ev,
                Command::new("ip").args(["link", "delete", &self.host_link]),
                None,
            );
        }
        if std::path::Path::new("/sys/class/net")
            .join(&self.host_link)
            .exists()
        {
            self.ev
                .cleanup(format!("FAILED to remove veth {}", self.host_link));
        } else {
            self.ev.cleanup(format!("veth {} is gone", self.host_link));
        }
        if !Path::new(NETNS_DIR).join(&self.name).exists() {
            self.journal.done();
        }
        if self.made_netns_dir {
            remove_netns_dir(&self.ev);
        }
    }
}

/// Undo what the first `ip netns add` did to NETNS_DIR, if no namespace is
/// left in it (another one may have been added meanwhile: then it stays).
fn remove_netns_dir(ev: &Evidence) {
    let empty = std::fs::read_dir(NETNS_DIR).is_ok_and(|mut d| d.next().is_none());
    if !empty {
        return;
    }
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(4) == Some(NETNS_DIR))
    });
    if mounted {
        let _ = run(ev, Command::new("umount").arg(NETNS_DIR), None);
    }
    match std::fs::remove_dir(NETNS_DIR) {
        Ok(()) => ev.cleanup(format!("removed {NETNS_DIR} (created by ip netns add)")),
        Err(e) => ev.cleanup(format!("left {NETNS_DIR} in place: {e}")),
    }
}

/// A /29 of TEST-NET-1 that no address or route of this host touches
/// (the last octet of its network address).
fn free_block(ev: &Evidence) -> Result<u8> {
    let addrs = run_ok(
        ev,
        Command::new("ip").args(["-4", "-o", "addr", "show"]),
        None,
    )?
    .stdout;
    let routes = run_ok(
        ev,
        Command::new("ip").args(["-4", "route", "show", "table", "all"]),
        None,
    )?
    .stdout;
    let used = format!("{addrs}\n{routes}");
    let prefix = format!("{}.{}.{}.", NET[0], NET[1], NET[2]);
    if used.lines().any(|l| {
        l.split_whitespace()
            .any(|w| w.starts_with(&format!("{}.{}.{}.0/", NET[0], NET[1], NET[2])))
    }) {
        bail!("this host routes {prefix}0/24 itself; not using it for a test network");
    }
    let start = crate::password::random_bytes(1)?[0] % 32;
    for i in 0..32u8 {
        let block = ((start + i) % 32) * 8;
        let taken = (block..block + 8).any(|last| {
            let a = format!("{prefix}{last}");
            used.split(|c: char| c.is_whitespace() || c == '/')
                .any(|w| w == a)
        });
        if !taken {
            return Ok(block);
        }
    }
    bail!("no free /29 left in {prefix}0/24")
}
