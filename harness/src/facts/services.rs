//! What the system offers: installed Debian packages (dpkg), listening TCP
//! and bound UDP sockets, read from /proc/net/{tcp,tcp6,udp,udp6} so that no
//! `ss`/`netstat` is needed on the target, and the processes that hold them
//! (socket inodes matched against /proc/PID/fd).

use crate::runtime::command::{find_program, run};
use crate::Evidence;
use anyhow::{Context, Result};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `127.0.0.1`, `::`, …
    pub address: String,
    pub port: u16,
}

/// The kernel's state number for LISTEN in /proc/net/tcp.
const TCP_LISTEN: &str = "0A";

/// Every listening TCP socket (IPv4 and IPv6) in this network namespace.
pub fn tcp_listeners() -> Result<Vec<Listener>> {
    Ok(listeners_of(tcp_rows()?))
}

/// Every socket of /proc/net/tcp and /proc/net/tcp6 (this network
/// namespace).
fn tcp_rows() -> Result<Vec<SocketRow>> {
    rows_of(Transport::Tcp)
}

/// Every socket of /proc/net/PROTO and /proc/net/PROTO6 (this network
/// namespace).
fn rows_of(transport: Transport) -> Result<Vec<SocketRow>> {
    let mut all = Vec::new();
    let proto = transport.to_string();
    for v6 in [false, true] {
        let file = format!("/proc/net/{proto}{}", if v6 { "6" } else { "" });
        match std::fs::read_to_string(&file) {
            Ok(text) => all.extend(parse_rows(&text, v6)),
            // No IPv6 in this kernel: no socket there.
            Err(e) if v6 && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {file}")),
        }
    }
    Ok(all)
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    /// /proc/PID/comm: the program's name (`sshd`, `busybox`, …).
    pub comm: String,
    /// /proc/PID/exe, or `?` when the kernel does not say.
    pub exe: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} {} ({})", self.pid, self.comm, self.exe)
    }
}

/// A socket that accepts traffic from others: a listening TCP socket or a
/// bound, unconnected UDP socket, with the processes that hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub transport: Transport,
    pub address: IpAddr,
    pub port: u16,
    pub inode: u64,
    /// Empty when no process holds it any more (or /proc hides it).
    pub owners: Vec<Owner>,
}

impl Service {
    /// `tcp 0.0.0.0:22`, `udp [::]:161`.
    pub fn endpoint(&self) -> String {
        match self.address {
            IpAddr::V4(a) => format!("{} {a}:{}", self.transport, self.port),
            IpAddr::V6(a) => format!("{} [{a}]:{}", self.transport, self.port),
        }
    }

    /// The processes holding it, for the evidence.
    pub fn held_by(&self) -> String {
        if self.owners.is_empty() {
            return "no process found".to_owned();
        }
        self.owners
            .iter()
            .map(Owner::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The kernel's state number of an unconnected UDP socket (TCP_CLOSE):
/// it takes datagrams from anyone. A connected one (01) is a client's.
const UDP_UNCONNECTED: &str = "07";

/// Every listening TCP socket and every bound, unconnected UDP socket of
/// this network namespace, each with the processes holding it.
pub fn services() -> Result<Vec<Service>> {
    let owners = socket_owners();
    let mut all = Vec::new();
    for (transport, state) in [
        (Transport::Tcp, TCP_LISTEN),
        (Transport::Udp, UDP_UNCONNECTED),
    ] {
        for row in rows_of(transport)?.into_iter().filter(|r| r.state == state) {
            all.push(Service {
                transport,
                address: row.local,
                port: row.local_port,
                inode: row.inode,
                owners: owners.get(&row.inode).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(all)
}

/// Socket inode -> the processes with a file descriptor on it, from the
/// `socket:[INODE]` links under /proc/PID/fd. A process that ends while
/// it is read is left out.
fn socket_owners() -> BTreeMap<u64, Vec<Owner>> {
    let mut owners: BTreeMap<u64, Vec<Owner>> = BTreeMap::new();
    let pids = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok());
    for pid in pids {
        let inodes: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter_map(|target| socket_inode(target.to_str()?))
            .collect();
        if inodes.is_empty() {
            continue;
        }
        let owner = Owner {
            pid,
            comm: std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end().to_owned())
                .unwrap_or_else(|_| "?".to_owned()),
            exe: std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".to_owned()),
        };
        for inode in inodes {
            let held = owners.entry(inode).or_default();
            if !held.contains(&owner) {
                held.push(owner.clone());
            }
        }
    }
    owners
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn listeners_of(rows: Vec<SocketRow>) -> Vec<Listener> {
    rows.into_iter()
        .filter(|r| r.state == TCP_LISTEN)
        .map(|r| Listener {
            address: r.local.to_string(),
            port: r.local_port,
        })
        .collect()
}

/// The inodes of the TCP sockets in this network namespace that are
/// connected to (or connecting with) a peer at one of `peers`: the
/// server side of a connection a client at that address opened.
pub fn sockets_with_peer(peers: &[IpAddr]) -> Result<Vec<u64>> {
    Ok(connected_to(tcp_rows()?, peers))
}

/// The inodes of the `rows` that are not listeners and have a peer in
/// `peers`.
fn connected_to(rows: Vec<SocketRow>, peers: &[IpAddr]) -> Vec<u64> {
    rows.into_iter()
        .filter(|r| r.state != TCP_LISTEN && peers.contains(&r.remote))
        .map(|r| r.inode)
        .collect()
}

/// The inodes of the TCP sockets listening on `port` in the network
/// namespace of process `pid` (/proc/PID/net/tcp{,6}).
pub fn listening_socket_inodes(pid: Pid, port: u16) -> Vec<u64> {
    [("tcp", false), ("tcp6", true)]
        .iter()
        .filter_map(|(t, v6)| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok()?;
            Some(parse_rows(&text, *v6))
        })
        .flatten()
        .filter(|r| r.state == TCP_LISTEN && r.local_port == port)
        .map(|r| r.inode)
        .collect()
}

/// One socket of /proc/net/{tcp,udp}{,6}.
struct SocketRow {
    local: IpAddr,
    local_port: u16,
    /// An IPv4 peer of an IPv6 socket (`::ffff:a.b.c.d`) as IPv4.
    remote: IpAddr,
    state: String,
    inode: u64,
}

/// The rows of /proc/net/{tcp,udp}{,6}: `sl local rem st tx:rx tr:tm retrnsmt
/// uid timeout inode ...`.
fn parse_rows(text: &str, v6: bool) -> Vec<SocketRow> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, local_port) = f.get(1)?.split_once(':')?;
            let (remote, _) = f.get(2)?.split_once(':')?;
            Some(SocketRow {
                local: decode_address(local, v6)?,
                local_port: u16::from_str_radix(local_port, 16).ok()?,
                remote: decode_address(remote, v6)?,
                state: (*f.get(3)?).to_owned(),
                // A short row (as in the tests) has no inode.
                inode: f.get(9).and_then(|i| i.parse().ok()).unwrap_or(0),
            })
        })
        .collect()
}

/// /proc/net/tcp prints addresses as 32-bit words in host byte order.
fn decode_address(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        (true, 16) => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            let a = Ipv6Addr::from(b);
            Some(match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(a),
            })
        }
        _ => None,
    }
}

/// The installed version of Debian package `name`, or `None` when it is not
/// installed (unknown, removed, or only its configuration files left).
/// `Ok(None)` also when the system has no dpkg at all: callers check the
/// programs themselves as well.
pub fn installed_package(ev: &Evidence, name: &str) -> Result<Option<String>> {
    if find_program("dpkg-query").is_none() {
        return Ok(None);
    }
    let ran = run(
        ev,
        Command::new("dpkg-query").args(["-W", "-f", "${db:Status-Abbrev}${Version}", name]),
        None,
    )?;
    Ok(parse_dpkg_status(&ran.stdout))
}

/// `ii 2:2.4-2` → installed at 2:2.4-2; `rc `, `un ` → not installed.
fn parse_dpkg_status(out: &str) -> Option<String> {
    let (status, version) = out.split_at_checked(3)?;
    (status.starts_with("ii") || status.starts_with("hi")).then(|| version.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_proc() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0017 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:9C41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n\
   2: 0100007F:9C41 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n";
        let l = listeners_of(parse_rows(tcp, false));
        // Little-endian hosts print 127.0.0.1 as 0100007F.
        let localhost = if cfg!(target_endian = "little") {
            "127.0.0.1"
        } else {
            "1.0.0.127"
        };
        assert_eq!(
            l,
            [
                Listener {
                    address: "0.0.0.0".into(),
                    port: 23
                },
                Listener {
                    address: localhost.into(),
                    port: 40001
                }
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(
            listeners_of(parse_rows(tcp6, true)),
            [Listener {
                address: "::".into(),
                port: 22
            }]
        );
    }

    #[test]
    fn the_server_side_of_a_connection_is_found_by_its_peer() {
        // 198.18.0.10:22 <- 198.18.0.11:40000 (v4), and the same peer on a
        // v6 socket (::ffff:198.18.0.11); a listener and another peer.
        let word = |a: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(a));
        let host = word([198, 18, 0, 10]);
        let peer = word([198, 18, 0, 11]);
        let other = word([198, 18, 0, 12]);
        let tcp = format!(
            "header\n\
   0: {host}:0016 00000000:0000 0A 0:0 0:0 0 0 0 100\n\
   1: {host}:0016 {peer}:9C40 01 0:0 0:0 0 0 0 101\n\
   2: {host}:0016 {other}:9C40 01 0:0 0:0 0 0 0 102\n"
        );
        let mapped = format!("0000000000000000{}{peer}", word([0, 0, 0xff, 0xff]));
        let tcp6 = format!(
            "header\n   0: 00000000000000000000000000000000:0016 {mapped}:9C41 01 0:0 0:0 0 0 0 103\n"
        );
        let peers = [IpAddr::V4(Ipv4Addr::new(198, 18, 0, 11))];
        assert_eq!(connected_to(parse_rows(&tcp, false), &peers), [101]);
        assert_eq!(connected_to(parse_rows(&tcp6, true), &peers), [103]);
    }

    #[test]
    fn socket_links_name_their_inode() {
        assert_eq!(socket_inode("socket:[4242]"), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn the_test_processs_own_sockets_are_found_with_its_pid() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let all = services().unwrap();
        let me = std::process::id() as i32;
        for (transport, port) in [
            (Transport::Tcp, tcp.local_addr().unwrap().port()),
            (Transport::Udp, udp.local_addr().unwrap().port()),
        ] {
            let found = all
                .iter()
                .find(|s| s.transport == transport && s.port == port)
                .unwrap_or_else(|| panic!("{transport} {port} not found"));
            assert!(found.owners.iter().any(|o| o.pid == me), "{found:?}");
        }
    }

    #[test]
    fn only_installed_packages_count() {
        assert_eq!(parse_dpkg_status("ii 2:2.4-2"), Some("2:2.4-2".to_owned()));
        assert_eq!(parse_dpkg_status("rc 1.0"), None);
        assert_eq!(parse_dpkg_status("un "), None);
        assert_eq!(parse_dpkg_status(""), None);
    }
}
