//! The sshd processes the device runs, each with the configuration it
//! really runs with: its command line's `-f FILE`, `-o OPTION`, `-h KEY`
//! and `-p PORT` (from a unit's ExecStart, Debian's `SSHD_OPTS` in
//! /etc/default/ssh, or a start by hand) on top of its file. A second sshd
//! with a file of its own is a door like the first; `sshd -T` of the
//! system configuration shows nothing of it.

use crate::facts::services::{
    listening_socket_inodes, services, tcp_listeners, Listener, Transport,
};
use crate::facts::wire_probe::{self, ssh_greeting};
use crate::runtime::process::{arguments_of, holds_socket, pids_named, started_by_this_run};
use anyhow::Result;
use std::path::PathBuf;

/// The system sshd's main configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/ssh/sshd_config";

/// What one sshd reads its configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunsWith {
    /// How the evidence names it: `sshd (pid N: COMMAND LINE)`, or the
    /// system configuration.
    pub label: String,
    /// What `sshd -T` must be given to read the same configuration.
    pub options: Vec<String>,
}

impl RunsWith {
    /// The system configuration, as a plain `sshd` reads it.
    pub fn system() -> Self {
        RunsWith {
            label: format!("the system's sshd configuration ({SYSTEM_CONFIG})"),
            options: Vec::new(),
        }
    }

    /// Its main file: `-f`'s value, else the system's.
    pub fn file(&self) -> PathBuf {
        self.options
            .windows(2)
            .rev()
            .find(|w| w[0] == "-f")
            .map_or_else(|| PathBuf::from(SYSTEM_CONFIG), |w| PathBuf::from(&w[1]))
    }
}

/// A listening sshd process.
#[derive(Debug, Clone)]
pub struct Instance {
    pub runs_with: RunsWith,
    pub listeners: Vec<Listener>,
}

/// An SSH server that is not OpenSSH's sshd (dropbear, tinysshd, wolfsshd,
/// one behind inetd): a door like sshd's, with its own password checking.
#[derive(Debug, Clone)]
pub struct OtherSshServer {
    /// `dropbear (pid N: COMMAND LINE), says SSH-2.0-dropbear_2022.83`.
    pub label: String,
    pub listeners: Vec<Listener>,
}

/// Every TCP listener not held by an sshd (nor by this run) that greets
/// like an SSH server, grouped by the process that holds it. Every such
/// listener is asked at once (threads), so the silent ones cost one
/// [`wire_probe::WAIT`] in all.
pub fn other_ssh_servers() -> Result<Vec<OtherSshServer>> {
    let candidates: Vec<_> = services()?
        .into_iter()
        .filter(|s| s.transport == Transport::Tcp)
        .filter(|s| {
            !s.owners.iter().any(|o| {
                matches!(o.comm.as_str(), "sshd" | "sshd-session")
                    || o.pid == std::process::id() as i32
                    || started_by_this_run(nix::unistd::Pid::from_raw(o.pid))
            })
        })
        .collect();
    let greetings: Vec<Option<String>> = std::thread::scope(|scope| {
        let asks: Vec<_> = candidates
            .iter()
            .map(|s| scope.spawn(move || ssh_greeting(wire_probe::target_of(s)).ok().flatten()))
            .collect();
        asks.into_iter().map(|a| a.join().ok().flatten()).collect()
    });
    let mut found: Vec<OtherSshServer> = Vec::new();
    for (service, greeting) in candidates.iter().zip(greetings) {
        let Some(greeting) = greeting else { continue };
        let holder = service.owners.first().map_or_else(
            || "a process /proc does not show".to_owned(),
            |o| {
                format!(
                    "{} (pid {}: {})",
                    o.comm,
                    o.pid,
                    arguments_of(nix::unistd::Pid::from_raw(o.pid)).join(" ")
                )
            },
        );
        let label = format!("{holder}, says {greeting}");
        let listener = Listener {
            address: service.address.to_string(),
            port: service.port,
        };
        match found.iter_mut().find(|f| f.label == label) {
            Some(server) => server.listeners.push(listener),
            None => found.push(OtherSshServer {
                label,
                listeners: vec![listener],
            }),
        }
    }
    Ok(found)
}

/// Every process named `sshd` that holds listening TCP sockets, with them
/// and its configuration; not the private sshd a test case of this run
/// started. None for a socket-activated sshd (systemd holds the socket) or
/// one that does not run.
pub fn running() -> Result<Vec<Instance>> {
    let all = tcp_listeners()?;
    Ok(pids_named("sshd")
        .into_iter()
        .filter(|pid| !started_by_this_run(*pid))
        .filter_map(|pid| {
            let held: Vec<Listener> = all
                .iter()
                .filter(|l| {
                    let inodes = listening_socket_inodes(pid, l.port);
                    !inodes.is_empty() && holds_socket(pid, &inodes)
                })
                .cloned()
                .collect();
            let args = sshd_arguments(arguments_of(pid));
            (!held.is_empty()).then(|| Instance {
                runs_with: RunsWith {
                    label: format!("sshd (pid {pid}: {})", args.join(" ")),
                    options: config_options(&args),
                },
                listeners: held,
            })
        })
        .collect())
}

/// The configurations the device's sshd runs with: every listening
/// process's (the same one once), or the system's when none listens.
pub fn configurations() -> Result<Vec<RunsWith>> {
    let mut found: Vec<RunsWith> = Vec::new();
    for instance in running()? {
        if !found
            .iter()
            .any(|r| r.options == instance.runs_with.options)
        {
            found.push(instance.runs_with);
        }
    }
    if found.is_empty() {
        found.push(RunsWith::system());
    }
    Ok(found)
}

/// An sshd's arguments. A listener retitles itself (`sshd: /usr/sbin/sshd
/// -D -f FILE [listener] 0 of 10-100 startups`): its arguments are then the
/// words between the prefix and `[listener]`.
fn sshd_arguments(cmdline: Vec<String>) -> Vec<String> {
    match cmdline
        .first()
        .and_then(|title| title.strip_prefix("sshd: "))
    {
        Some(title) if cmdline.len() == 1 => title
            .split_whitespace()
            .take_while(|w| !w.starts_with('['))
            .map(str::to_owned)
            .collect(),
        _ => cmdline,
    }
}

/// The options of an sshd command line that decide the configuration it
/// runs with, as `sshd -T` takes them: `-f FILE`, `-o OPTION`, `-h KEY`,
/// `-p PORT`, each also accepted written joined (`-fFILE`) or after other
/// flags (`-Df FILE`). Flags without a value are left out.
fn config_options(args: &[String]) -> Vec<String> {
    // sshd's getopt string: these take a value.
    const WITH_VALUE: &str = "CEefghkopu";
    const KEPT: &str = "fhop";
    let mut options = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        let Some(flags) = arg.strip_prefix('-') else {
            continue;
        };
        if let Some((i, flag)) = flags.char_indices().find(|(_, c)| WITH_VALUE.contains(*c)) {
            let attached = &flags[i + flag.len_utf8()..];
            let value = match attached {
                "" => rest.next().cloned(),
                joined => Some(joined.to_owned()),
            };
            if let (Some(value), true) = (value, KEPT.contains(flag)) {
                options.push(format!("-{flag}"));
                options.push(value);
            }
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_options_of_an_sshd_command_line() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            config_options(&args(
                "/usr/sbin/sshd -D -f /etc/ssh/maint.conf -o PermitEmptyPasswords=yes -e"
            )),
            args("-f /etc/ssh/maint.conf -o PermitEmptyPasswords=yes")
        );
        assert_eq!(
            config_options(&args("sshd -Dp2222 -h/etc/ssh/k -E /var/log/x")),
            args("-p 2222 -h /etc/ssh/k")
        );
        assert!(config_options(&args("/usr/sbin/sshd -D")).is_empty());
        assert!(config_options(&args(
            "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"
        ))
        .is_empty());
    }

    #[test]
    fn the_main_file_is_the_last_f() {
        let runs = |o: &[&str]| RunsWith {
            label: String::new(),
            options: o.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert_eq!(runs(&[]).file(), PathBuf::from(SYSTEM_CONFIG));
        assert_eq!(
            runs(&["-o", "Port=2", "-f", "/a", "-f", "/b"]).file(),
            PathBuf::from("/b")
        );
    }
}
