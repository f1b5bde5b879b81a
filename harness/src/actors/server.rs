//! A server process the harness started (the private sshd, an OCSP
//! responder): journaled as soon as it runs, stopped with every process it
//! started. Its undo after a killed run is the journal's
//! [`Undo::KillProcess`] or [`Undo::KillByCommandLine`] (see `crate::undo`).

use crate::runtime::journal::{self, Undo};
use crate::runtime::process::{kill_tree, start_time};
use crate::Evidence;
use anyhow::{Context, Result};
use nix::unistd::Pid;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A server the harness started (the private sshd, an OCSP responder):
/// journaled as soon as it runs, so a killed suite's replay stops it, and
/// stopped with every process it started when dropped.
pub struct ServerProcess {
    label: String,
    pid: Pid,
    child: Child,
    /// Already reaped: its PID may belong to someone else now.
    exited: bool,
    ev: Evidence,
    journal: journal::Entry,
}

/// How a server's start ended.
pub enum Startup {
    Listening,
    Exited(ExitStatus),
    TimedOut,
}

impl ServerProcess {
    /// Start `cmd`, then journal it by PID. Should journaling fail, the
    /// server is stopped again (by the drop) before the error returns. For
    /// servers that die with the suite (PR_SET_PDEATHSIG): a kill between
    /// the start and the entry takes them along.
    pub fn spawn(ev: &Evidence, label: &str, cmd: &mut Command) -> Result<Self> {
        let mut server = Self::start(ev, label, cmd, journal::Entry::none())?;
        let pid = server.pid.as_raw();
        server.journal = journal::record(&Undo::KillProcess {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        })?;
        Ok(server)
    }

    /// Journal `undo` (which must find the server without its PID, e.g. by
    /// its private configuration's path), then start `cmd`: nothing can fall
    /// between the two. For servers that must outlive a killed suite until
    /// the replay kills their whole tree.
    pub fn spawn_journaled(
        ev: &Evidence,
        label: &str,
        cmd: &mut Command,
        undo: &Undo,
    ) -> Result<Self> {
        let entry = journal::record(undo)?;
        Self::start(ev, label, cmd, entry).inspect_err(|_| entry.done())
    }

    fn start(
        ev: &Evidence,
        label: &str,
        cmd: &mut Command,
        journal: journal::Entry,
    ) -> Result<Self> {
        let child = cmd.spawn().with_context(|| format!("starting {label}"))?;
        Ok(ServerProcess {
            label: label.to_owned(),
            pid: Pid::from_raw(child.id() as i32),
            child,
            exited: false,
            ev: ev.clone(),
            journal,
        })
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The child, for its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Has the server exited? Reaps it if so.
    pub fn exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited {
            return Ok(None);
        }
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("waiting for {}", self.label))?;
        if status.is_some() {
            self.exited = true;
            self.journal.done();
        }
        Ok(status)
    }

    /// Is it still running (not exited, not reaped)?
    pub fn running(&mut self) -> Result<bool> {
        Ok(!self.exited && self.exit_status()?.is_none())
    }

    /// Wait until the server itself holds a listening socket on `port`.
    /// Checked through /proc rather than by connecting: a probe connection
    /// would be logged as a failed client (and counts against the source
    /// address in sshd's PerSourcePenalties, OpenSSH >= 9.8).
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<Startup> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status()? {
                return Ok(Startup::Exited(status));
            }
            if holds_listening_socket(self.pid, port) {
                return Ok(Startup::Listening);
            }
            if started.elapsed() > timeout {
                return Ok(Startup::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill the server and every process it started (a daemon's
    /// per-connection children call setsid(), so only the process tree
    /// finds them), then reap it.
    pub fn stop(&mut self) {
        if self.exited {
            return;
        }
        let killed = kill_tree(self.pid);
        let _ = self.child.wait();
        self.exited = true;
        self.journal.done();
        self.ev.cleanup(format!(
            "stopped {} (pid {}): {killed} process(es) killed",
            self.label, self.pid
        ));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Does `pid` hold a TCP socket listening on `port`? The socket inodes come
/// from the process's own network namespace (/proc/PID/net/tcp*). Checked
/// this way rather than by connecting: a probe connection would be a client
/// the server logs (and sshd penalises).
pub fn holds_listening_socket(pid: Pid, port: u16) -> bool {
    let inodes = crate::facts::services::listening_socket_inodes(pid, port);
    !inodes.is_empty() && crate::runtime::process::holds_socket(pid, &inodes)
}
