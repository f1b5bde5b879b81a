//! What the system offers: installed Debian packages (dpkg) and listening
//! TCP sockets, read from /proc/net/tcp and /proc/net/tcp6 so that no
//! `ss`/`netstat` is needed on the target.

use crate::command::{find_program, run};
use crate::Evidence;
use anyhow::{Context, Result};
use std::net::{Ipv4Addr, Ipv6Addr};
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
    let mut all = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        match std::fs::read_to_string(file) {
            Ok(text) => all.extend(parse_proc_net_tcp(&text, v6)),
            // No IPv6 in this kernel: nothing can listen there.
            Err(e) if v6 && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {file}")),
        }
    }
    Ok(all)
}

fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            if state != TCP_LISTEN {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            Some(Listener {
                address: decode_address(addr, v6)?,
                port: u16::from_str_radix(port, 16).ok()?,
            })
        })
        .collect()
}

/// /proc/net/tcp prints addresses as 32-bit words in host byte order.
fn decode_address(hex: &str, v6: bool) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        (true, 16) => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(Ipv6Addr::from(b).to_string())
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
        let l = parse_proc_net_tcp(tcp, false);
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
            parse_proc_net_tcp(tcp6, true),
            [Listener {
                address: "::".into(),
                port: 22
            }]
        );
    }

    #[test]
    fn only_installed_packages_count() {
        assert_eq!(parse_dpkg_status("ii 2:2.4-2"), Some("2:2.4-2".to_owned()));
        assert_eq!(parse_dpkg_status("rc 1.0"), None);
        assert_eq!(parse_dpkg_status("un "), None);
        assert_eq!(parse_dpkg_status(""), None);
    }
}
