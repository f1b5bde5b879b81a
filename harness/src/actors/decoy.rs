//! Listeners of the test's own that the checks must find, so that finding
//! nothing elsewhere proves something.

use anyhow::{Context, Result};
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A listener of the test's own on loopback that opens every connection
/// the way telnetd does (IAC DO TERMINAL-TYPE) and closes it: the probe
/// must find it, held by this process, and call it telnet, or finding no
/// telnet elsewhere would prove nothing. It stops when dropped.
pub struct TelnetDecoy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TelnetDecoy {
    pub fn start() -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the test's own listener")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(&[0xff, 0xfd, 0x18]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(TelnetDecoy {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TelnetDecoy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::services::{Owner, Service, Transport};
    use crate::facts::wire_probe::{probe, Pace, Protocol};
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn the_probe_calls_the_decoy_telnet() {
        let decoy = TelnetDecoy::start().unwrap();
        let own = Service {
            transport: Transport::Tcp,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: decoy.port,
            inode: 0,
            owners: vec![Owner {
                pid: 1,
                comm: "probe-test".into(),
                exe: "/usr/sbin/probe-test".into(),
            }],
        };
        assert_eq!(
            probe(&own, "fr1-x", Pace::default()).unwrap().protocol,
            Protocol::Telnet
        );
    }
}
