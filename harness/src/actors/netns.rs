//! A "remote host" on the same machine: a network namespace of the test's
//! own, joined to this host by a veth pair.
//!
//! Loopback addresses cannot leave their namespace, so a client that must
//! look remote to this host (to be banned by address, say) needs its own
//! namespace and link. [`PeerNamespace`] creates both, with addresses from
//! the benchmarking network 198.18.0.0/15 (RFC 2544, RFC 5735: never routed
//! on the internet). A free /28 is picked at random: the host side gets
//! its first address, the namespace the next ones (up to
//! [`MAX_CLIENTS`]), so a test can compare two client addresses, or send
//! each attempt from an address of its own. Traffic stays on the veth pair
//! between the two namespaces of this machine. Dropping it ends the connections its
//! addresses left open on this host (a client cut off by a ban never says
//! goodbye) and deletes the namespace, which also deletes both ends of the
//! pair.
//!
//! Why a /15 and random blocks: failed logins from a test address count
//! toward fail2ban's `maxretry` on the device for `findtime` (10 min by
//! default), also those of an earlier, interrupted run. Among 8192 blocks
//! a run practically never reuses an address another run failed from
//! minutes before (TEST-NET-1's 16 made that likely).

use crate::facts::services::sockets_with_peer;
use crate::runtime::command::{run, run_ok, sh, succeeds_quietly};
use crate::runtime::journal::{self, Undo};
use crate::runtime::password::random_token;
use crate::runtime::process::end_processes_holding;
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use nix::sys::time::TimeVal;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where `ip netns` keeps its namespaces. The first `ip netns add` creates
/// it and mounts it onto itself (a shared mount), and nothing removes it.
const NETNS_DIR: &str = "/run/netns";
/// RFC 2544's benchmarking network; /28 blocks of it are handed out.
const POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 18, 0, 0), 15);
const PREFIX: u8 = 28;
/// A /28 has 16 addresses: the network's, this host's, the broadcast and
/// 13 for the namespace.
pub const MAX_CLIENTS: usize = 13;

pub struct PeerNamespace {
    name: String,
    host_link: String,
    host_address: Ipv4Addr,
    client_addresses: Vec<Ipv4Addr>,
    /// NETNS_DIR did not exist before: remove it (and its mount) again.
    made_netns_dir: bool,
    journal: journal::Entry,
    ev: Evidence,
}

impl PeerNamespace {
    /// Create the namespace with two client addresses, the veth pair, and
    /// bring the links up.
    pub fn create(ev: &Evidence) -> Result<Self> {
        Self::with_clients(ev, 2)
    }

    /// [`PeerNamespace::create`] with `clients` addresses in the namespace
    /// (at most [`MAX_CLIENTS`]): one per attempt, for a test whose
    /// failures must not add up per address (fail2ban's `maxretry`,
    /// OpenSSH's `PerSourcePenalties`).
    pub fn with_clients(ev: &Evidence, clients: usize) -> Result<Self> {
        if !(1..=MAX_CLIENTS).contains(&clients) {
            bail!("a test network has 1 to {MAX_CLIENTS} client addresses, not {clients}");
        }
        if crate::runtime::command::find_program("ip").is_none() {
            return crate::runtime::case::skip(
                "the ip program is not installed (package iproute2)",
            );
        }
        let token = random_token(6)?;
        let name = format!("fr1-{token}");
        let host_link = host_link_of(&name);
        let peer_link = format!("fr1n-{token}");
        let block = u32::from(free_block(ev)?);
        let host_address = Ipv4Addr::from(block + 1);
        let client_addresses: Vec<Ipv4Addr> = (0..clients as u32)
            .map(|i| Ipv4Addr::from(block + 2 + i))
            .collect();
        ev.step(format!(
            "create network namespace {name} joined by veth {host_link} (this host, {host_address}/{PREFIX}) \
             <-> {peer_link} (namespace, {})",
            client_addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let made_netns_dir = !Path::new(NETNS_DIR).exists();
        // Journaled first: an interrupted run deletes the namespace, and
        // with it both ends of the veth pair.
        let journal = journal::record(&Undo::DeleteNetns {
            name: name.clone(),
            peers: client_addresses.iter().map(|a| IpAddr::V4(*a)).collect(),
        })?;
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
        peer.add_veth_pair(ev, &peer_link)?;
        peer.configure_namespace(ev, &peer_link)?;
        Ok(peer)
    }

    /// The veth pair, its far end moved into the namespace, and this
    /// host's end addressed and up.
    fn add_veth_pair(&self, ev: &Evidence, peer_link: &str) -> Result<()> {
        sh(
            ev,
            "ip",
            &[
                "link",
                "add",
                &self.host_link,
                "type",
                "veth",
                "peer",
                "name",
                peer_link,
                "netns",
                &self.name,
            ],
        )?;
        sh(
            ev,
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/{PREFIX}", self.host_address),
                "dev",
                &self.host_link,
            ],
        )?;
        sh(ev, "ip", &["link", "set", &self.host_link, "up"])?;
        Ok(())
    }

    /// The client addresses on the namespace's end of the pair, its links
    /// up, and its route to this host.
    fn configure_namespace(&self, ev: &Evidence, peer_link: &str) -> Result<()> {
        let ns = self.name.as_str();
        for a in &self.client_addresses {
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
                    peer_link,
                ],
            )?;
        }
        sh(ev, "ip", &["-n", ns, "link", "set", peer_link, "up"])?;
        sh(ev, "ip", &["-n", ns, "link", "set", "lo", "up"])?;
        // Any address of this host is reached through its end of the pair,
        // as a remote host would route to it (a service that listens on
        // one address of the device only).
        sh(
            ev,
            "ip",
            &[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &self.host_address.to_string(),
            ],
        )?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// This host's address on the veth pair.
    pub fn host_address(&self) -> Ipv4Addr {
        self.host_address
    }

    /// The /28 both sides are in, e.g. `198.18.7.16/28`.
    pub fn subnet(&self) -> String {
        let o = self.host_address.octets();
        format!("{}.{}.{}.{}/{PREFIX}", o[0], o[1], o[2], o[3] - 1)
    }

    /// The namespace's addresses; the first is its default source.
    pub fn client_addresses(&self) -> &[Ipv4Addr] {
        &self.client_addresses
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
        let peers: Vec<IpAddr> = self
            .client_addresses
            .iter()
            .map(|a| IpAddr::V4(*a))
            .collect();
        for ended in end_connections_from(&peers) {
            self.ev.cleanup(format!(
                "ended {ended}: it served a connection from the test network, whose client had gone"
            ));
        }
        if !Path::new(NETNS_DIR).join(&self.name).exists() {
            self.journal.done();
        }
        if self.made_netns_dir {
            remove_netns_dir(&self.ev);
        }
    }
}

/// This host's end of the veth pair of namespace `name` (`fr1-TOKEN` →
/// `fr1h-TOKEN`; interface names are at most 15 characters). The journal's
/// replay deletes it by this name: a namespace that a leftover process
/// still holds outlives `ip netns delete`, and the pair with it.
pub fn host_link_of(name: &str) -> String {
    format!("fr1h-{}", name.strip_prefix("fr1-").unwrap_or(name))
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

/// A /28 of [`POOL`], picked at random, that no address or route of this
/// host overlaps (its network address).
fn free_block(ev: &Evidence) -> Result<Ipv4Addr> {
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
    let used = networks_named(&format!("{addrs}\n{routes}"));
    let blocks = 1u32 << (PREFIX - POOL.1);
    for _ in 0..64 {
        let r = crate::runtime::password::random_bytes(4)?;
        let n = u32::from_ne_bytes([r[0], r[1], r[2], r[3]]) % blocks;
        let block = (u32::from(POOL.0) + (n << (32 - PREFIX)), PREFIX);
        if !used.iter().any(|u| overlap(*u, block)) {
            return Ok(Ipv4Addr::from(block.0));
        }
    }
    bail!(
        "no free /{PREFIX} found in {}/{}: this host's addresses or routes cover it",
        POOL.0,
        POOL.1
    )
}

/// Every IPv4 network (`a.b.c.d/len`) or address (as a /32) named in `ip`
/// output, but the default route's 0.0.0.0/0.
fn networks_named(text: &str) -> Vec<(u32, u8)> {
    text.split_whitespace()
        .filter_map(|w| {
            let (a, len) = match w.split_once('/') {
                Some((a, len)) => (a, len.parse::<u8>().ok()?),
                None => (w, 32),
            };
            let a: Ipv4Addr = a.parse().ok()?;
            (len > 0 && len <= 32).then_some((u32::from(a), len))
        })
        .collect()
}

/// Do two networks (address, prefix length) share an address?
fn overlap(a: (u32, u8), b: (u32, u8)) -> bool {
    let shorter = a.1.min(b.1);
    let mask = if shorter == 0 {
        0
    } else {
        u32::MAX << (32 - shorter)
    };
    a.0 & mask == b.0 & mask
}

/// End the processes (other than this one) that serve a TCP connection
/// from one of `peers` (see [`end_processes_holding`]): a client that went
/// away with its namespace never told the server.
fn end_connections_from(peers: &[IpAddr]) -> Vec<String> {
    sockets_with_peer(peers)
        .map(|inodes| end_processes_holding(&inodes))
        .unwrap_or_default()
}

/// The journal's undo of [`Undo::DeleteNetns`] after a killed run: the
/// namespace, this host's end of its veth pair (a process of the killed
/// run, an ssh client, may still hold the namespace and with it the pair),
/// and the connections its addresses left open here. Says what it did.
pub(crate) fn delete_leftover(name: &str, peers: &[IpAddr]) -> Result<Option<String>> {
    let mut did = Vec::new();
    if Path::new("/run/netns").join(name).exists()
        && succeeds_quietly(Command::new("ip").args(["netns", "delete", name]))
    {
        did.push(format!("deleted network namespace {name}"));
    }
    let link = host_link_of(name);
    if Path::new("/sys/class/net").join(&link).exists()
        && succeeds_quietly(Command::new("ip").args(["link", "delete", &link]))
    {
        did.push(format!("deleted veth {link}"));
    }
    for ended in end_connections_from(peers) {
        did.push(format!("ended {ended}, which served a connection from it"));
    }
    Ok((!did.is_empty()).then(|| did.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_free_unless_an_address_or_route_touches_it() {
        let block = (u32::from(Ipv4Addr::new(198, 18, 7, 16)), PREFIX);
        let used = networks_named(
            "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n\
             default via 10.0.0.1 dev eth0\n\
             198.18.7.32/28 dev fr1h-x proto kernel scope link src 198.18.7.33",
        );
        assert!(!used.iter().any(|u| overlap(*u, block)), "{used:?}");
        for touching in [
            "198.18.7.17",
            "198.18.0.0/16",
            "198.16.0.0/12",
            "198.18.7.24/30",
        ] {
            let used = networks_named(touching);
            assert!(used.iter().any(|u| overlap(*u, block)), "{touching}");
        }
    }
}
