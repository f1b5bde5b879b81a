//! The host keys an sshd configuration names (`hostkey` lines of
//! `sshd -T`), each with its type and size as `ssh-keygen -l` reads it.
//!
//! A key's strength is a property of the file, not of the algorithm lists:
//! an RSA key of 1024 bits is offered under the modern `rsa-sha2-*`
//! signatures, so a check of the lists alone passes it.

use crate::runtime::command::{find_program, run};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One host key file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub path: PathBuf,
    /// `RSA`, `DSA`, `ECDSA`, `ED25519`, … as ssh-keygen names it.
    pub kind: String,
    pub bits: u32,
}

impl HostKey {
    /// `/etc/ssh/ssh_host_rsa_key (RSA, 3072 bits)`, for the evidence.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {} bits)",
            self.path.display(),
            self.kind,
            self.bits
        )
    }
}

/// The host key paths of an `sshd -T` output, in its order.
pub fn named_in(effective: &str) -> Vec<PathBuf> {
    effective
        .lines()
        .filter_map(|l| l.strip_prefix("hostkey "))
        .map(|p| PathBuf::from(p.trim()))
        .collect()
}

/// `requiredrsasize` of an `sshd -T` output (OpenSSH ≥ 9.1): sshd loads no
/// RSA key, host or user, smaller than this.
pub fn required_rsa_size(effective: &str) -> Option<u32> {
    effective
        .lines()
        .find_map(|l| l.strip_prefix("requiredrsasize "))
        .and_then(|v| v.trim().parse().ok())
}

/// `path` read with `ssh-keygen -l` (which derives the public half of an
/// unencrypted private key); `Ok(None)` when the file does not exist (sshd
/// skips a missing host key).
pub fn read(ev: &Evidence, path: &Path) -> Result<Option<HostKey>> {
    if !path.exists() {
        return Ok(None);
    }
    let Some(keygen) = find_program("ssh-keygen") else {
        bail!(
            "ssh-keygen is not installed (package openssh-client): host key sizes cannot be read"
        );
    };
    let ran = run(ev, Command::new(keygen).arg("-l").arg("-f").arg(path), None)?;
    if !ran.success {
        bail!(
            "ssh-keygen -l cannot read the host key {}: {}",
            path.display(),
            ran.stderr.trim()
        );
    }
    parse_fingerprint_line(&ran.stdout)
        .map(|(bits, kind)| {
            Some(HostKey {
                path: path.to_path_buf(),
                kind,
                bits,
            })
        })
        .with_context(|| {
            format!(
                "ssh-keygen -l printed no size and type for {}: {:?}",
                path.display(),
                ran.stdout.trim()
            )
        })
}

/// `3072 SHA256:… comment (RSA)` → (3072, "RSA"). The comment may hold
/// spaces and parentheses: the type is the last parenthesised word.
fn parse_fingerprint_line(out: &str) -> Option<(u32, String)> {
    let line = out.lines().find(|l| !l.trim().is_empty())?.trim();
    let bits = line.split_whitespace().next()?.parse().ok()?;
    let kind = line.strip_suffix(')')?.rsplit_once('(')?.1;
    (!kind.is_empty() && !kind.contains(' ')).then(|| (bits, kind.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_size_and_type_whatever_the_comment() {
        assert_eq!(
            parse_fingerprint_line("3072 SHA256:abc root@vm (RSA)\n"),
            Some((3072, "RSA".to_owned()))
        );
        assert_eq!(
            parse_fingerprint_line("1024 SHA256:abc key (old) for panels (DSA)"),
            Some((1024, "DSA".to_owned()))
        );
        assert_eq!(
            parse_fingerprint_line("256 SHA256:abc no comment (ED25519)"),
            Some((256, "ED25519".to_owned()))
        );
        assert_eq!(parse_fingerprint_line("not a key"), None);
        assert_eq!(parse_fingerprint_line(""), None);
    }

    #[test]
    fn host_keys_and_rsa_floor_from_sshd_t() {
        let t = "port 22\nhostkey /etc/ssh/ssh_host_rsa_key\nhostkey /etc/ssh/ssh_host_ed25519_key\nrequiredrsasize 2048\n";
        assert_eq!(
            named_in(t),
            vec![
                PathBuf::from("/etc/ssh/ssh_host_rsa_key"),
                PathBuf::from("/etc/ssh/ssh_host_ed25519_key")
            ]
        );
        assert_eq!(required_rsa_size(t), Some(2048));
        assert_eq!(required_rsa_size("port 22\n"), None);
    }
}
