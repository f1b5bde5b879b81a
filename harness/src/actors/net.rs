//! Loopback networking for the servers a test case starts itself.
//!
//! - [`free_port`]: pick a loopback port (the private sshd's);
//! - [`IsolatedServer`]: a short-lived server (OCSP responder, OpenSSL's
//!   mock CMP server, a TLS server) in a network namespace of its own that
//!   has nothing but a loopback interface. OpenSSL 3.0's `-port` servers
//!   bind every address of the host (`[::]:PORT`), and a test must not put
//!   a certificate-issuing server on a device's real network, not even for
//!   a second. In its own namespace the server is reachable only by the
//!   clients the test starts inside that namespace ([`IsolatedServer::client`]),
//!   never shows up among the host's listening sockets, and its namespace
//!   vanishes with it.

use crate::actors::server::{ServerProcess, Startup};
use crate::runtime::command::command_line;
use crate::Evidence;
use anyhow::{bail, Context, Result};
use nix::libc;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The loopback address every test server and client uses.
pub const LOOPBACK: &str = "127.0.0.1";

/// The port an [`IsolatedServer`] listens on. Any port is free in a
/// namespace that was created for one server, so there is nothing to probe
/// and no race with other programs.
pub const ISOLATED_PORT: u16 = 8080;

/// How long a server may take to listen (an armhf board under load is slow).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nobody listens on right now on [`LOOPBACK`]. A server may still
/// lose it to someone else before it binds; callers retry then.
pub fn free_port() -> Result<u16> {
    let probe = TcpListener::bind((LOOPBACK, 0))
        .with_context(|| format!("cannot bind {LOOPBACK}:0 (is the loopback interface up?)"))?;
    Ok(probe.local_addr()?.port())
}

/// A server process in a network namespace of its own (loopback only).
/// Dropping it kills it and everything it started, and puts its output
/// into the evidence.
pub struct IsolatedServer {
    label: String,
    server: ServerProcess,
    /// Kept open: some OpenSSL servers (s_server) stop at end of input.
    _stdin: Option<ChildStdin>,
    port: u16,
    log: PathBuf,
    ev: Evidence,
}

impl IsolatedServer {
    /// Start `cmd` (which must listen on [`ISOLATED_PORT`]) in a new network
    /// namespace whose loopback interface is up, its output going to `log`,
    /// and wait until it listens.
    pub fn start(ev: &Evidence, label: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let port = ISOLATED_PORT;
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::from(
                log_file.try_clone().context("duplicating the log handle")?,
            ))
            .stderr(Stdio::from(log_file));
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Should the suite be killed without unwinding, the server
                // does not outlive it (the journal replay would stop it too).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                loopback_up()
            });
        }
        ev.step(format!(
            "start {label} in a private network namespace (loopback only): $ {}",
            command_line(&cmd)
        ));
        let mut process = ServerProcess::spawn(ev, label, &mut cmd)
            .context("a private network namespace needs CAP_SYS_ADMIN")?;
        let mut server = IsolatedServer {
            label: label.to_owned(),
            _stdin: process.child_mut().stdin.take(),
            server: process,
            port,
            log: log.to_path_buf(),
            ev: ev.clone(),
        };
        let started = Instant::now();
        match server.server.wait_listening(port, START_TIMEOUT)? {
            Startup::Listening => {}
            Startup::Exited(status) => bail!(
                "{label} exited ({status}) before it listened; its output:\n{}",
                server.output().trim_end()
            ),
            Startup::TimedOut => bail!(
                "{label} (pid {}) did not listen within {} s; its output:\n{}",
                server.server.pid(),
                START_TIMEOUT.as_secs(),
                server.output().trim_end()
            ),
        }
        ev.note(format!(
            "{label} (pid {}) listens on port {port} of its private loopback after {:.3} s",
            server.server.pid(),
            started.elapsed().as_secs_f64()
        ));
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`, as seen from inside the namespace.
    pub fn url(&self) -> String {
        format!("http://{LOOPBACK}:{}", self.port)
    }

    /// `127.0.0.1:PORT`, as seen from inside the namespace.
    pub fn address(&self) -> String {
        format!("{LOOPBACK}:{}", self.port)
    }

    /// A command that runs in the server's network namespace, so it can
    /// reach the server on [`LOOPBACK`].
    pub fn client(&mut self, program: impl AsRef<std::ffi::OsStr>) -> Result<Command> {
        // The namespace file must belong to our server, not to a process
        // that reused its PID.
        if !self.server.running()? {
            bail!(
                "{} is no longer running; its output:\n{}",
                self.label,
                self.output().trim_end()
            );
        }
        let netns = File::open(format!("/proc/{}/ns/net", self.server.pid()))
            .with_context(|| format!("opening the network namespace of {}", self.label))?;
        let mut cmd = Command::new(program);
        // SAFETY: setns is a plain system call; `netns` is moved into the
        // closure and stays open until the command is dropped.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for IsolatedServer {
    fn drop(&mut self) {
        // Its network namespace goes with its last process.
        self.server.stop();
        let out = self.output();
        let mut block = format!("{} output:", self.label);
        for line in out.lines() {
            let _ = write!(block, "\n  | {line}");
        }
        if out.trim().is_empty() {
            block.push_str(" (empty)");
        }
        self.ev.note(block);
    }
}

/// Bring up `lo` in the current (new) network namespace, where it starts
/// down. Runs between fork and exec: system calls only, no allocation.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain system calls on a zeroed, properly sized ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::server::holds_listening_socket;
    use nix::unistd::Pid;

    #[test]
    fn a_free_port_is_on_loopback_and_bindable() {
        let port = free_port().unwrap();
        assert!(TcpListener::bind((LOOPBACK, port)).is_ok());
    }

    #[test]
    fn our_own_listener_is_seen_and_an_unused_port_is_not() {
        let l = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let me = Pid::this();
        assert!(holds_listening_socket(me, port));
        drop(l);
        assert!(!holds_listening_socket(me, port));
    }
}
