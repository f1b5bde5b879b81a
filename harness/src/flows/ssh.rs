//! The ssh client flows, driven on a pseudo-terminal against a
//! [`PrivateSshd`] or the device's own sshd.
//!
//! - [`ssh_prompts_via`]: a person typing their password (and e.g. a
//!   verification code) at ssh's prompts (keyboard-interactive through PAM,
//!   or sshd's password method);
//! - [`ssh_key`]: a publickey (or certificate) login, no prompt at all.
//!
//! Like [`crate::flows::login`], each returns an [`Attempt`], and a shell counts only
//! when the remote `id -un` printed the user. The client is isolated from
//! root's own ssh set-up: `-F /dev/null`, no agent, no default identities,
//! and the private server's host key as the only trusted one
//! (StrictHostKeyChecking=yes), so it never reads or writes root's ~/.ssh.
//! A connection or host-key failure is an error, never a "refusal": a
//! refusal must be the server's decision.

use crate::actors::sshd::{PrivateSshd, HOST};
use crate::flows::dialogue::{converse_within, finish, whoami_of, Ends, ShellSign, QUESTION};
use crate::flows::dialogue::{Attempt, AuthOutcome, Moments, WHOAMI, WHOAMI_OUTPUT};
use crate::flows::login::console_command;
use crate::flows::pty::{Terminal, DEFAULT_TIMEOUT};
use crate::runtime::case::skip;
use crate::runtime::command::find_program;
use crate::Evidence;
use anyhow::{bail, Result};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime};

/// The client's own verdict line (`user@host: Permission denied (methods).`),
/// or the server disconnecting after too many failed attempts. Narrower
/// than login's refusal texts on purpose: with `-v` the debug lines must not
/// be taken for a refusal.
const SSH_REFUSED: &str = r"Permission denied \([^)\r\n]*\)|Too many authentication failures";
/// Everything that means "ssh never got an answer from the server's
/// authentication": a connection, host-key, negotiation or client-side key
/// problem. Matched as whole lines so the reason is in the error.
const SSH_FAILURE: &str = r"(?m)^(?:ssh: |kex_exchange_identification|Host key verification failed|Connection (?:closed|reset|timed out) |Unable to negotiate|Received disconnect |command-line: |Load key |Warning: Identity file |@+ *WARNING)[^\r\n]*\r*\n";
/// How the client ends a dialogue: the remote command's output, the
/// server's refusal, or a failure that is no decision of the server.
const SSH: Ends = Ends {
    shell: ShellSign::Marker,
    refused: SSH_REFUSED,
    failure: Some(SSH_FAILURE),
};

/// Where a client connects from and to. The default is this host's own
/// network to the private sshd's 127.0.0.1; a test with its own network
/// namespace (a "remote" host on the same machine) runs the client in it
/// and connects to an address the private sshd also listens on.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// Run the client inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Connect from this local address (`ssh -b`).
    pub from: Option<IpAddr>,
    /// Connect to this address instead of [`HOST`].
    pub to: Option<IpAddr>,
}

impl Route {
    fn destination(&self) -> String {
        self.to.map_or_else(|| HOST.to_owned(), |a| a.to_string())
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(ns) = &self.netns {
            s.push_str(&format!(" from network namespace {ns}"));
        }
        if let Some(a) = self.from {
            s.push_str(&format!(" (source address {a})"));
        }
        s
    }
}

/// A server the client flows connect to: a [`PrivateSshd`], or the
/// device's own ([`crate::flows::device_sshd::DeviceSshd`]).
pub trait SshServer {
    /// The port the client connects to.
    fn port(&self) -> u16;
    /// A `known_hosts` file that trusts exactly this server's host keys.
    fn known_hosts(&self) -> &Path;
}

impl SshServer for PrivateSshd {
    fn port(&self) -> u16 {
        PrivateSshd::port(self)
    }

    fn known_hosts(&self) -> &Path {
        PrivateSshd::known_hosts(self)
    }
}

/// Options every flow uses: only this server, only its host key, nothing
/// from root's ssh configuration, agent or key files.
fn base_command(sshd: &dyn SshServer, route: &Route) -> Result<Command> {
    if find_program("ssh").is_none() {
        return skip("the ssh client is not installed (package openssh-client)");
    }
    // console_command clears the environment: no SSH_AUTH_SOCK, no
    // SSH_ASKPASS, messages in English.
    let mut cmd = match &route.netns {
        Some(ns) => {
            let mut c = console_command("ip");
            c.args(["netns", "exec", ns, "ssh"]);
            c
        }
        None => console_command("ssh"),
    };
    if let Some(from) = route.from {
        cmd.args(["-b", &from.to_string()]);
    }
    let known_hosts = sshd
        .known_hosts()
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the known_hosts path is not valid UTF-8"))?;
    cmd.args(["-F", "/dev/null", "-p", &sshd.port().to_string()])
        .args([
            "-o",
            &format!("UserKnownHostsFile={known_hosts}"),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "IdentityAgent=none",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ControlPath=none",
        ]);
    Ok(cmd)
}

/// `ssh user@HOST 'echo FR1-$(id -un)-END'` on a PTY along `route`, to
/// `sshd` (a private sshd, or the device's own: see
/// `device_sshd::RemoteLogins`), typing `answers` at the server's prompts
/// in turn (the password, then e.g. a TOTP code).
///
/// Outcomes: the marker → `Shell`; `Permission denied (…)` → `Refused`; a
/// password-change dialogue → `ChangeRequired`. A prompt beyond the last
/// answer (a second method, or a second factor) ends the attempt as
/// `Refused`: the answers given were not enough. Every wrong attempt counts
/// in the image's faillock tally.
pub fn ssh_prompts_via(
    ev: &Evidence,
    sshd: &dyn SshServer,
    route: &Route,
    user: &str,
    answers: &[&str],
) -> Result<Attempt> {
    ssh_prompts_within(ev, sshd, route, user, answers, DEFAULT_TIMEOUT)
}

/// [`ssh_prompts_via`], giving up after `timeout` without an answer from
/// the server (an error, never a refusal): for attempts that a ban may cut
/// off half-way, whose client would otherwise wait for the full timeout.
pub fn ssh_prompts_within(
    ev: &Evidence,
    sshd: &dyn SshServer,
    route: &Route,
    user: &str,
    answers: &[&str],
    timeout: std::time::Duration,
) -> Result<Attempt> {
    let host = route.destination();
    let mut cmd = base_command(sshd, route)?;
    cmd.args([
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=keyboard-interactive,password",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "BatchMode=no",
    ])
    .arg(format!("{user}@{host}"))
    .arg(WHOAMI);
    let flow = format!(
        "ssh {user}@{host} -p {}{} (password typed at the prompt)",
        sshd.port(),
        route.describe()
    );
    converse_within(ev, flow, cmd, answers, &SSH, timeout)
}

/// `ssh -i identity_file user@127.0.0.1 'echo FR1-$(id -un)-END'`, publickey
/// only, on a PTY. `extra_opts` go before the destination (e.g.
/// `["-o", "CertificateFile=/tmp/…/id-cert.pub"]`).
///
/// Runs with `-v` and BatchMode=yes (nothing can be asked): a refusal counts
/// only when the server refused — the transcript must show that the client
/// offered a key, or the server's list of methods has no publickey. A key
/// the client could not load (bad permissions, wrong path) is an error, not
/// a refusal, so a "wrong key is refused" check cannot pass by accident.
pub fn ssh_key(
    ev: &Evidence,
    sshd: &PrivateSshd,
    user: &str,
    identity_file: &Path,
    extra_opts: &[&str],
) -> Result<Attempt> {
    let mut cmd = base_command(sshd, &Route::default())?;
    cmd.arg("-v")
        .arg("-i")
        .arg(identity_file)
        .args([
            "-o",
            "PubkeyAuthentication=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "BatchMode=yes",
        ])
        .args(extra_opts)
        .arg(format!("{user}@{HOST}"))
        .arg(WHOAMI);
    let flow = format!(
        "ssh -i {} {user}@{HOST} -p {} (publickey)",
        identity_file.display(),
        sshd.port()
    );
    let spawned = SystemTime::now();
    let mut term = Terminal::spawn(ev, &flow, cmd)?;
    let started = Instant::now();
    let m = term.expect_any(&[WHOAMI_OUTPUT, SSH_REFUSED, SSH_FAILURE, QUESTION])?;
    let answer_after = started.elapsed();
    let moments = Moments {
        started: spawned,
        answered: None,
        decided: SystemTime::now(),
    };
    let outcome = match m.which {
        0 => {
            let _ = term.wait_exit();
            AuthOutcome::Shell {
                user: whoami_of(&m.text),
            }
        }
        1 => {
            let offered = term.transcript().contains("Offering public key");
            let publickey_allowed = m.text.contains("publickey");
            if !offered && publickey_allowed {
                bail!(
                    "{flow}: refused, but the client never offered the key (it could not use {}); \
                     that is no decision of the server",
                    identity_file.display()
                );
            }
            AuthOutcome::Refused {
                message: m.text.trim().to_owned(),
            }
        }
        2 if m.text.contains("Too many authentication failures") => AuthOutcome::Refused {
            message: m.text.trim().to_owned(),
        },
        2 => bail!(
            "{flow}: ssh failed before the server decided: {}",
            m.text.trim()
        ),
        _ => bail!(
            "{flow}: unexpected prompt in a publickey login: {}",
            m.text.trim()
        ),
    };
    Ok(finish(ev, flow, term, "", outcome, answer_after, moments))
}

/// The ciphers a connection to `sshd` negotiates, as the client reports
/// them with `-v` (`kex: server->client cipher: … MAC: … compression: …`):
/// `(client->server, server->client)`. The client offers no credentials,
/// so the connection ends at authentication and nothing is counted against
/// any account; `user` needs no account at all.
pub fn negotiated_ciphers(
    ev: &Evidence,
    sshd: &PrivateSshd,
    user: &str,
) -> Result<(String, String)> {
    let mut cmd = base_command(sshd, &Route::default())?;
    cmd.arg("-v")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
        ])
        .arg(format!("{user}@{HOST}"))
        .arg("true");
    let ran = crate::runtime::command::run(ev, &mut cmd, None)?;
    let said = ran.all_output();
    let cipher = |direction: &str| {
        said.lines()
            .find_map(|l| {
                l.split_once(&format!("kex: {direction} cipher: "))
                    .and_then(|(_, rest)| rest.split_whitespace().next())
            })
            .map(str::to_owned)
    };
    match (cipher("client->server"), cipher("server->client")) {
        (Some(up), Some(down)) => Ok((up, down)),
        _ => bail!(
            "ssh -v to {HOST}:{} reported no negotiated cipher: {}",
            sshd.port(),
            said.trim()
        ),
    }
}

/// The attempt's terminal showed the server's password prompt, i.e. the
/// decision followed a typed answer. A server that lets a user in without
/// asking (pam_permit in the stack, an empty password allowed) fails this.
pub fn assert_prompted(attempt: &Attempt) -> Result<()> {
    let prompt = rexpect::reader::Regex::new(r"(?i)password[^\r\n]*: ?(\r?\n|$)")?;
    if !prompt.is_match(&attempt.transcript) {
        bail!(
            "{}: no password prompt was shown; the server decided without asking",
            attempt.flow
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rexpect::reader::Regex;

    #[test]
    fn refusals_failures_and_prompts_are_told_apart() {
        let refused = Regex::new(SSH_REFUSED).unwrap();
        let failure = Regex::new(SSH_FAILURE).unwrap();
        let prompt = Regex::new(QUESTION).unwrap();
        assert!(
            refused.is_match("fr1-ab12cd@127.0.0.1: Permission denied (keyboard-interactive).\r\n")
        );
        assert!(!refused.is_match("debug1: Authentications that can continue: publickey\r\n"));
        for line in [
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n",
            "Host key verification failed.\r\n",
            "x\r\nConnection closed by 127.0.0.1 port 40022\r\n",
            "Load key \"/tmp/k\": bad permissions\r\n",
        ] {
            assert!(failure.is_match(line), "{line}");
        }
        // Debug output mentioning a closed connection is not a failure line.
        assert!(!failure.is_match("debug1: channel 0: connection closed by peer\r\n"));
        for p in [
            "(fr1-ab@127.0.0.1) Password: ",
            "fr1-ab@127.0.0.1's password: ",
            "Verification code: ",
        ] {
            assert!(prompt.is_match(p), "{p}");
        }
        assert!(!prompt.is_match("(fr1-ab@127.0.0.1) Password: \r\n"));
    }

    /// ssh writes CR LF and the PTY turns LF into CR LF again: the lines
    /// end in CR CR LF. A client-side key problem printed before ssh's
    /// "Permission denied" must still be found first (found the hard way).
    #[test]
    fn a_key_the_client_cannot_load_is_a_failure_on_a_real_pty() {
        let ev = Evidence::new("t");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            r"printf 'debug1: Server accepts key: /k\r\n@@@@@@\r\n@   WARNING: UNPROTECTED PRIVATE KEY FILE!   @\r\n';
              printf 'Load key \042/k\042: bad permissions\r\nu@127.0.0.1: Permission denied (publickey).\r\n'",
        ]);
        let mut term = Terminal::spawn(&ev, "ssh", cmd).unwrap();
        let m = term
            .expect_any(&[WHOAMI_OUTPUT, SSH_REFUSED, SSH_FAILURE, QUESTION])
            .unwrap();
        assert_eq!(m.which, 2, "{m:?}");
        assert!(m.text.contains("UNPROTECTED"), "{m:?}");
    }
}
